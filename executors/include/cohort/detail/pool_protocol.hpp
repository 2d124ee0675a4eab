// What a process pool and each of its workers say to each other over the worker's Pipe: calls of the
// remote-call protocol (detail/remote_call.hpp) going out in batches, so that many tiny tasks cost one
// message, and one reply per task coming back (its result or its failure, detail/remote_failure.hpp) as
// soon as the task ends. A reply into the shared ring costs no system call while the pool is awake, and
// replying task by task tells the pool exactly which task was running if the worker dies.
#pragma once

#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/connection.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/detail/remote_failure.hpp"

namespace cohort::detail {

struct PoolTask {
  std::uint64_t id = 0;
  CallFrame call;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, call);
  }
};

struct PoolReply {
  std::uint64_t id = 0;
  bool ok = false;
  std::string result;     // the returned value as a codec frame (empty for void); when ok
  RemoteFailure failure;  // when not ok

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, ok, result, failure);
  }
};

/// A reply as the pool reads it: in place, the result a view into the received message.
struct PoolReplyView {
  std::uint64_t id = 0;
  bool ok = false;
  std::string_view result;
  RemoteFailure failure;
};

/// Decodes a message written by send(PoolReply) without copying the result out of it (a map's chunk of
/// results may be megabytes). SerializationError when it is not such a message.
PoolReplyView view_reply(std::string_view message);

/// The exception a failed reply stands for, to complete a job's future with (rethrow_failure's, caught).
std::exception_ptr exception_of(const RemoteFailure& failure);

/// Tasks for one worker; an empty batch asks it to exit.
using PoolTaskBatch = std::vector<PoolTask>;

/// The id of the reply a worker sends when its initializer threw, before it exits.
inline constexpr std::uint64_t initializer_failed_id = ~std::uint64_t{0};

struct PoolWorkerOptions {
  std::optional<CallFrame> initializer;  // run once before the first task
  std::size_t max_tasks = 0;             // exit after this many tasks (0: never)

  template <class Archive>
  void serialize(Archive& archive) {
    archive(initializer, max_tasks);
  }
};

/// The body of a worker process. Runs the initializer (if it throws, the worker sends its failure with
/// initializer_failed_id and exits with code 1), then receives batches and runs their calls in order,
/// replying after each, until the pool sends an empty batch or its end is closed everywhere, or
/// max_tasks calls have run (the worker replies, then exits; the pool starts another). A forked worker
/// holds a copy of the pool's end too, so a pool stops its workers with the empty batch. A call that
/// throws, or whose result cannot be serialized, gets a failure reply; the worker goes on.
void run_pool_worker(Connection& channel, const PoolWorkerOptions& options);

/// run_pool_worker as a Process target.
void pool_worker_main(Connection& channel, const PoolWorkerOptions& options);

}  // namespace cohort::detail
