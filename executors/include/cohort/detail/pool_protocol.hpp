// What a process pool and each of its workers say to each other over the worker's Pipe: calls of the
// remote-call protocol (detail/remote_call.hpp) going out, results or failures (detail/remote_failure.hpp)
// coming back, both in batches so that many tiny tasks cost one message each way.
#pragma once

#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
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

/// Tasks for one worker; an empty batch asks it to exit.
using PoolTaskBatch = std::vector<PoolTask>;
using PoolReplyBatch = std::vector<PoolReply>;

struct PoolWorkerOptions {
  std::optional<CallFrame> initializer;  // run once before the first task
  std::size_t max_tasks = 0;             // exit after this many tasks (0: never)

  template <class Archive>
  void serialize(Archive& archive) {
    archive(initializer, max_tasks);
  }
};

/// The body of a worker process. Runs the initializer (an exception from it ends the worker with exit
/// code 1, which the pool sees), then receives batches, runs their calls in order and sends back one
/// batch of replies for each, until the pool sends an empty batch or its end is closed everywhere, or
/// max_tasks calls have run (the worker replies, then exits; the pool starts another). A forked worker
/// holds a copy of the pool's end too, so a pool stops its workers with the empty batch. A call that
/// throws, or whose result cannot be serialized, gets a failure reply; the worker goes on.
void run_pool_worker(Connection& channel, const PoolWorkerOptions& options);

}  // namespace cohort::detail
