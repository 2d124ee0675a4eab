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

PoolReplyView view_reply(std::string_view message) {
  const auto payload = open_frame(message, type_hash<PoolReply>, type_name<PoolReply>());
  PoolReplyView view;
  try {
    // cereal's binary layout of PoolReply: the id, the flag, the result's length and bytes, the failure.
    BinaryReader head(payload);
    std::uint64_t size = 0;
    head(view.id, view.ok, size);
    head.check_length(size);
    const std::size_t at = payload.size() - head.remaining();
    view.result = payload.substr(at, static_cast<std::size_t>(size));
    BinaryReader tail(payload.substr(at + static_cast<std::size_t>(size)));
    tail(view.failure);
    if (tail.remaining() != 0) throw_trailing_bytes(type_name<PoolReply>(), tail.remaining());
  } catch (const SerializationError&) {
    throw;
  } catch (...) {
    rethrow_as_serialization_error(type_name<PoolReply>(), true);
  }
  return view;
}

}  // namespace cohort::detail
