// The loop of a process pool's worker.
#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <exception>

#include "cohort/detail/connection_set.hpp"
#include "cohort/detail/pool_protocol.hpp"
#include "cohort/detail/throw_site.hpp"
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

/// Calls `run(id, frame, arguments)` for each task of a PoolTaskBatch message, reading the arguments in
/// place (a map's chunk may be megabytes). Returns how many tasks there were. SerializationError when the
/// message is not such a batch.
template <class Run>
std::size_t for_each_task(std::string_view message, Run run) {
  auto rest = open_frame(message, type_hash<PoolTaskBatch>, type_name<PoolTaskBatch>());
  std::uint64_t count = 0;
  std::uint64_t id = 0;
  CallFrame frame;
  std::string_view arguments;
  const auto next = [&](bool first) {
    // cereal's binary layout: the count, then per task its id and the CallFrame's fields, the arguments
    // last as a length and bytes.
    try {
      BinaryReader reader(rest);
      if (first) {
        reader(count);
        reader.check_length(count);
        if (count == 0) {
          rest.remove_prefix(rest.size() - reader.remaining());
          return;
        }
      }
      std::uint64_t size = 0;
      reader(id, frame.name, frame.entry, frame.has_target, frame.target, size);
      reader.check_length(size);
      const std::size_t at = rest.size() - reader.remaining();
      arguments = rest.substr(at, static_cast<std::size_t>(size));
      rest.remove_prefix(at + static_cast<std::size_t>(size));
    } catch (const SerializationError&) {
      throw;
    } catch (...) {
      rethrow_as_serialization_error(type_name<PoolTaskBatch>(), true);
    }
  };
  next(true);
  for (std::uint64_t i = 0; i < count; ++i) {
    if (i > 0) next(false);
    run(id, frame, arguments);
  }
  if (!rest.empty()) throw_trailing_bytes(type_name<PoolTaskBatch>(), rest.size());
  return static_cast<std::size_t>(count);
}

/// Runs one task and writes its reply, a PoolReply as cereal would, into `out`: the result is encoded
/// where it goes instead of being copied there.
void run_task(std::uint64_t id, const CallFrame& frame, std::string_view arguments, std::string& out) {
  out.clear();
  const auto header = begin_frame(out, type_hash<PoolReply>, type_name<PoolReply>());
  out.append(reinterpret_cast<const char*>(&id), sizeof id);
  const std::size_t ok_at = out.size();
  out.push_back(0);
  const std::size_t size_at = out.size();
  out.append(sizeof(std::uint64_t), '\0');
  const std::size_t result_at = out.size();
  RemoteFailure failure;
  try {
    invoke(frame, arguments, &out);
    out[ok_at] = 1;
  } catch (...) {
    out.resize(result_at);
    failure = describe_failure(std::current_exception());
  }
  const std::uint64_t size = out.size() - result_at;
  std::memcpy(out.data() + size_at, &size, sizeof size);
  {
    BinaryWriter archive(out);
    archive(failure);
  }
  end_frame(out, header);
}

}  // namespace

void run_pool_worker(Connection& channel, const PoolWorkerOptions& options) {
  keep_freed_memory();
  record_throw_sites();  // a task's RemoteError then carries the trace of where it was thrown
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
  std::string batch;
  std::string reply;
  for (;;) {
    try {
      receive_into(channel, batch);
    } catch (const EOFError&) {
      return;  // the pool is gone or let this worker go
    }
    const std::size_t count = for_each_task(batch, [&](std::uint64_t id, const CallFrame& frame, std::string_view arguments) {
      run_task(id, frame, arguments, reply);
      channel.send_bytes(reply);
    });
    if (count == 0) return;
    ran += count;
    if (options.max_tasks != 0 && ran >= options.max_tasks) return;
  }
}

void pool_worker_main(Connection& channel, const PoolWorkerOptions& options) { run_pool_worker(channel, options); }

std::exception_ptr exception_of(const RemoteFailure& failure) {
  try {
    rethrow_failure(failure);
  } catch (...) {
    return std::current_exception();
  }
}

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
