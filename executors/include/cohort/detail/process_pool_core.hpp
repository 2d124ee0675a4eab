// What ProcessPoolExecutor and Pool share: worker processes, each with a Pipe, and one I/O thread per
// pool that hands queued calls to workers in batches, completes futures as replies arrive, and watches
// the workers' pidfds so that a death is seen at once.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cohort/detail/pool_job.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/process.hpp"

namespace cohort::detail {

/// What a pool does when a worker dies while it holds tasks.
enum class WorkerLoss {
  /// ProcessPoolExecutor: every pending future fails with BrokenProcessPool, later submits throw.
  break_pool,
  /// Pool: the task that was running fails with ProcessError naming the signal, the tasks queued behind
  /// it go to other workers, and a new worker takes the dead one's place.
  replace_worker,
};

struct ProcessPoolConfig {
  std::size_t workers = 1;
  StartMethod start_method = StartMethod::fork;
  std::optional<CallFrame> initializer;
  std::size_t max_tasks_per_child = 0;
  WorkerLoss on_worker_loss = WorkerLoss::break_pool;
  /// Workers are named "<prefix>-<n>".
  std::string name_prefix = "PoolWorker";
  /// What submit() says once the pool was closed.
  std::string closed_message = "cannot schedule new futures after shutdown";
};

class ProcessPoolCore {
 public:
  /// Starts the workers and the I/O thread. ProcessError if a worker cannot be started.
  explicit ProcessPoolCore(ProcessPoolConfig config);
  /// Stops as shutdown(true, false) would, if nothing stopped the pool before.
  ~ProcessPoolCore();
  ProcessPoolCore(const ProcessPoolCore&) = delete;
  ProcessPoolCore& operator=(const ProcessPoolCore&) = delete;

  /// Queues the job. If the pool takes no more work, leaves the job untouched and throws (cohort::Error
  /// after close or shutdown, BrokenProcessPool once broken); the caller drops the job then.
  void submit(PoolJob& job);
  /// Queues all of `jobs` or, throwing as submit(job) does, none.
  void submit(std::span<PoolJob* const> jobs);
  /// submit() for a job whose caller waits for it at once: on an idle pool the calling thread sends it to
  /// a worker and polls for the reply itself, sparing the I/O thread's wake-ups (Pool::apply).
  void submit_waited(PoolJob& job);
  /// Stops taking work; queued work still runs, then the workers exit. `cancel_queued`: cancel the jobs
  /// no worker has started. Returns at once.
  void close(bool cancel_queued = false);
  /// Waits until the workers have exited and the I/O thread has ended (after close or terminate).
  void join();
  /// Stops taking work, kills the workers (SIGTERM, then SIGKILL after a moment) and cancels every job
  /// that has not finished. Waits until all of that is done.
  void terminate();

  /// An empty string with room for `size` bytes from a large call that has run, if the pool kept one
  /// (else an empty string): encoding the next large call there spares the page faults of a fresh buffer.
  std::string spare_call_buffer(std::size_t size);

  std::size_t workers() const noexcept;
  StartMethod start_method() const noexcept;
  /// Whether close() or terminate() was called, or the pool broke.
  bool accepting() const noexcept;
  /// The pids of the live workers (for tests and diagnostics).
  std::vector<int> worker_pids() const;

  struct State;  // defined in src/process_pool/process_pool_internal.hpp; shared with the I/O thread

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cohort::detail
