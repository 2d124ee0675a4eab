// The loop of a process pool's worker.
#include <cstdlib>
#include <exception>

#include "cohort/detail/pool_protocol.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

void run_pool_worker(Connection& channel, const PoolWorkerOptions& options) {
  if (options.initializer) {
    try {
      invoke(*options.initializer, nullptr);
    } catch (...) {
      PoolReply reply;
      reply.id = initializer_failed_id;
      reply.failure = describe_failure(std::current_exception());
      try {
        channel.send(reply);
      } catch (const std::exception&) {
        // The pool is gone: nobody to tell.
      }
      throw;  // the worker ends with exit code 1, its traceback printed
    }
  }
  std::size_t ran = 0;
  PoolReply reply;
  for (;;) {
    PoolTaskBatch batch;
    try {
      batch = channel.recv<PoolTaskBatch>();
    } catch (const EOFError&) {
      return;  // the pool is gone or let this worker go
    }
    if (batch.empty()) return;
    for (const auto& task : batch) {
      reply.id = task.id;
      reply.result.clear();
      try {
        invoke(task.call, &reply.result);
        reply.ok = true;
      } catch (...) {
        reply.ok = false;
        reply.result.clear();
        reply.failure = describe_failure(std::current_exception());
      }
      channel.send(reply);
      reply.failure = {};
    }
    ran += batch.size();
    if (options.max_tasks != 0 && ran >= options.max_tasks) return;
  }
}

void pool_worker_main(Connection& channel, const PoolWorkerOptions& options) { run_pool_worker(channel, options); }

}  // namespace cohort::detail
