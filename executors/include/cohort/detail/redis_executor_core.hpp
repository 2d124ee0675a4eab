// What RedisExecutor does out of line: its connections to Redis and the thread that runs their event
// loop, sends the submitted calls and completes the futures as results come back.
#pragma once

#include <memory>
#include <string>

#include "cohort/detail/pool_job.hpp"

namespace cohort {
struct RedisExecutorOptions;
}

namespace cohort::detail {

class RedisExecutorCore {
 public:
  /// Connects (see RedisExecutor's constructor) and starts the I/O thread.
  explicit RedisExecutorCore(RedisExecutorOptions options);
  /// close(false) and join(), if nothing did before.
  ~RedisExecutorCore();
  RedisExecutorCore(const RedisExecutorCore&) = delete;
  RedisExecutorCore& operator=(const RedisExecutorCore&) = delete;

  /// Queues the job for Redis. cohort::Error once closed: the job is left untouched then.
  void submit(PoolJob& job);
  /// Stops taking work. `cancel_queued`: the jobs no worker has taken are cancelled and their entries
  /// removed. Returns at once.
  void close(bool cancel_queued = false);
  /// Waits until every submitted job has completed, then ends the I/O thread and deletes this client's
  /// keys. After close().
  void join();

  /// No reuse of call buffers here: the calls are copied into Redis commands.
  std::string spare_call_buffer(std::size_t) { return {}; }
  const std::string& queue() const noexcept;

  struct State;  // defined in src/redis/redis_executor_core.cpp; shared with the I/O thread

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cohort::detail
