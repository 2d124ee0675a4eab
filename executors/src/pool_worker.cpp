// The loop of a process pool's worker.
#include <malloc.h>

#include <cstdlib>
#include <exception>

#include "cohort/detail/pool_protocol.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

namespace {

/// A worker allocates and frees about the same buffers batch after batch. By default glibc hands freed
/// memory above 128 KiB back to the kernel and serves large blocks by mmap until it has seen them freed,
/// so a fresh worker pays page faults for every batch; keeping up to 64 MiB and serving blocks below
/// 32 MiB from the heap makes the second batch as cheap as the hundredth.
void keep_freed_memory() noexcept {
  ::mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

}  // namespace

void run_pool_worker(Connection& channel, const PoolWorkerOptions& options) {
  keep_freed_memory();
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
