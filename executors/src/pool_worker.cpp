// The loop of a process pool's worker.
#include <exception>

#include "cohort/detail/pool_protocol.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

void run_pool_worker(Connection& channel, const PoolWorkerOptions& options) {
  if (options.initializer) invoke(*options.initializer, nullptr);
  std::size_t ran = 0;
  for (;;) {
    PoolTaskBatch batch;
    try {
      batch = channel.recv<PoolTaskBatch>();
    } catch (const EOFError&) {
      return;  // the pool is gone or let this worker go
    }
    if (batch.empty()) return;
    PoolReplyBatch replies(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& reply = replies[i];
      reply.id = batch[i].id;
      try {
        invoke(batch[i].call, &reply.result);
        reply.ok = true;
      } catch (...) {
        reply.result.clear();
        reply.failure = describe_failure(std::current_exception());
      }
    }
    ran += batch.size();
    channel.send(replies);
    if (options.max_tasks != 0 && ran >= options.max_tasks) return;
  }
}

}  // namespace cohort::detail
