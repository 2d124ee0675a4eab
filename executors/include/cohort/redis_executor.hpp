// RedisExecutor and redis_worker: the Futures of the process pools, with the work carried by a Redis
// server to workers on any machine (Python: a Celery or RQ queue, with concurrent.futures' API).
//
// A client submits calls into a Redis stream; workers (redis_worker, or any cohort program started with
// --cohort-redis-worker URL) take them through a consumer group, run them on a local process pool and
// push each result to the submitting client alone. A task is acknowledged only once its result is
// stored; one whose worker dies is claimed by another worker after `claim_after` and retried at most
// `max_retries` times, then its future fails with the reason. Every future completes exactly once.
//
// What can run: what a ProcessPoolExecutor runs. Workers must run the same build of the program, or the
// functions must be named with COHORT_REMOTE in both builds; a task that reaches another build fails
// with that reason. The calls are trusted as a pool's are: give the queue a Redis only your programs
// reach.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>

#include "cohort/detail/redis_executor_core.hpp"
#include "cohort/future.hpp"
#include "cohort/map_result.hpp"
#include "cohort/process.hpp"
#include "cohort/process_pool_executor.hpp"

namespace cohort {

struct RedisExecutorOptions {
  /// redis://[[user]:password@]host[:port][/db]
  std::string url;
  /// The queue's name: workers of the same name serve it.
  std::string queue = "cohort";
  /// How many times a task whose worker died is handed to another worker before its future fails.
  int max_retries = 2;
  /// For the first connection, and for a lost one to come back before pending futures fail.
  std::chrono::milliseconds connect_timeout{5000};
  /// How long a result waits in Redis for this client (a client that died leaves nothing for longer).
  std::chrono::seconds result_ttl{3600};
};

struct RedisWorkerOptions {
  std::string url;
  std::string queue = "cohort";
  /// Worker processes of the local pool; 0: cpu_count().
  std::size_t processes = 0;
  /// A task held this long by a worker that stopped heartbeating is taken by another worker.
  std::chrono::milliseconds claim_after{30000};
  /// For the first connection: an unreachable Redis fails redis_worker within it. Later losses are
  /// retried until the worker is stopped.
  std::chrono::milliseconds connect_timeout{5000};
  /// Tasks taken ahead of the free processes (0: 16 per process): more saves round trips to Redis on
  /// tiny tasks, fewer leaves less for another worker to claim when this one dies.
  std::size_t prefetch = 0;
  /// The local pool's start method; empty: get_start_method().
  std::optional<StartMethod> start_method = std::nullopt;
};

class RedisExecutor {
 public:
  /// Connects to Redis (cohort::Error naming the address if it cannot within connect_timeout;
  /// std::invalid_argument for a malformed URL).
  explicit RedisExecutor(RedisExecutorOptions options) : core_(std::move(options)) {}
  /// shutdown(true): waits for the submitted work.
  ~RedisExecutor() = default;
  RedisExecutor(const RedisExecutor&) = delete;
  RedisExecutor& operator=(const RedisExecutor&) = delete;

  /// Queues fn(args...) for a worker and returns its Future. Throws cohort::Error after shutdown.
  template <class F, class... Args>
  Future<detail::call_result_t<F, Args...>> submit(F&& fn, const Args&... args) {
    using R = detail::call_result_t<F, Args...>;
    return detail::submit_remote(core_, detail::RemoteTask<R>::make(detail::encode_remote_call(std::decay_t<F>(fn), args...)));
  }

  /// Calls fn on every element of `inputs`, `chunksize` elements per task; the results come lazily and
  /// in input order. All the work is queued at once, as in Python.
  template <class F, std::ranges::input_range Range>
  auto map(F&& fn, Range&& inputs, MapOptions options = {}) {
    return detail::map_remote(core_, std::forward<F>(fn), std::forward<Range>(inputs), options);
  }

  /// Stops accepting work. `wait`: block until every submitted task has its result. `cancel_futures`:
  /// cancel the tasks no worker has taken yet (they are removed from Redis). Safe to call more than once.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    core_.close(cancel_futures);
    if (wait) core_.join();
  }

  const std::string& queue() const noexcept { return core_.queue(); }

 private:
  detail::RedisExecutorCore core_;
};

/// Serves the queue: takes its tasks, runs them on a local process pool, stores their results. Returns
/// after SIGTERM or SIGINT, once the tasks it holds have finished and their results are stored.
/// cohort::Error naming the address if Redis cannot be reached within connect_timeout at start; a
/// connection lost later is retried with backoff while the local work goes on.
void redis_worker(RedisWorkerOptions options);

namespace detail {
/// Lets cohort::init run a worker for a program started with `--cohort-redis-worker URL` (and
/// optionally `--cohort-redis-queue NAME`, `--cohort-redis-processes N`): every program that includes
/// this header can be started as a worker of its own queues.
bool register_redis_worker_role() noexcept;
inline const bool redis_worker_role_registered = register_redis_worker_role();
}  // namespace detail

}  // namespace cohort
