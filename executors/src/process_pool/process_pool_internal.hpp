// ProcessPoolCore::State, which the I/O thread (process_pool_io_thread.cpp), the workers' lifecycle
// (process_pool_workers.cpp) and the callers' side (process_pool_core.cpp) share.
//
// The I/O thread of a process pool. It owns the workers and every job from the moment it takes it from
// the submission list; user threads only queue jobs and ask it to close or terminate.
//
// Each worker holds a window of tasks ahead of it: about two milliseconds of work, as measured from its
// replies (one task while nothing is known, up to max_window tiny ones), so tiny tasks travel in large
// batches while long ones are never stuck behind each other on one worker while another is idle. A batch
// is written whole into the worker's ring only while it fits, so the thread never blocks on a busy worker.
//
// The thread polls its rings and the submission list for spin_before_sleep after the last thing it did,
// then sleeps in one poll() on the ring socket of every worker it waits for, every worker's pidfd and an
// eventfd for submissions. A worker's death is therefore seen at once, and at most every
// busy_check_period while the thread never sleeps.
//
// Whoever drives the workers holds `token`: the I/O thread, except while it sleeps. A thread about to
// wait for a single call on an idle pool (Pool::apply) takes the token instead, sends the task itself and
// polls for the reply, then sleeps on that worker's ring: the round trip involves two threads instead of
// three, and in a loop none of them has to be woken. When a submission or a command wakes the I/O thread
// meanwhile, it asks the caller for the token (yield_fd) and takes the task over; so it does when the
// worker dies.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cohort/connection.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/connection_set.hpp"
#include "cohort/detail/pool_protocol.hpp"
#include "cohort/detail/process_pool_core.hpp"
#include "cohort/detail/unique_fd.hpp"

namespace cohort::detail {

struct ProcessPoolCore::State {
  struct InFlight {
    PoolJob* job;
    Clock::time_point sent;
  };

  struct Worker {
    /// Each worker is given about this much work ahead of it.
    static constexpr double queued_work_ns = 2e6;
    static constexpr std::size_t max_window = 4096;

    std::unique_ptr<Process> process;
    Connection channel;
    std::optional<ReceiverPresence> presence;  // after channel: destroyed first
    std::deque<InFlight> in_flight;
    std::deque<std::size_t> batches;            // tasks of each batch sent and not fully answered
    std::size_t tasks_left = 0;                 // the max_tasks_per_child quota still open
    double task_ns = 0;                         // average time a task of this worker takes; 0: unknown
    Clock::time_point last_reply{};
    bool stopping = false;                      // sent the empty batch, or its quota is used up
    bool lost = false;                          // its stream failed: it is being killed

    std::size_t window() const noexcept {
      if (task_ns <= 0) return 1;
      return std::clamp<std::size_t>(static_cast<std::size_t>(queued_work_ns / task_ns) + 1, 1, max_window);
    }

    /// Whether the worker may be sent another batch: its window has room, and it has fewer than two
    /// batches unanswered (one running, one waiting), so that under load tasks gather into large batches
    /// instead of travelling one message each, while the worker never runs dry between two batches.
    bool takes_more() const noexcept {
      return !stopping && !lost && batches.size() < 2 && in_flight.size() < window();
    }

    /// The front task has been answered.
    void answered() {
      in_flight.pop_front();
      if (!batches.empty() && --batches.front() == 0) batches.pop_front();
    }
  };

  explicit State(ProcessPoolConfig c);

  const ProcessPoolConfig config;
  PoolWorkerOptions worker_options;
  UniqueFd wake_fd;   // the I/O thread's: submissions and commands
  UniqueFd yield_fd;  // a caller's that waits with the token: the I/O thread wants it

  // Shared with user threads, under `mutex`.
  mutable std::mutex mutex;
  std::vector<PoolJob*> incoming;
  std::atomic<std::size_t> incoming_count{0};  // a hint for the spinning I/O thread
  bool accepting = true;
  bool closing = false;
  bool cancel_queued = false;
  bool terminating = false;
  bool io_sleeping = false;
  std::exception_ptr broken;  // what submit throws once the pool broke
  std::vector<int> pids;
  std::atomic<bool> commands{false};  // close or terminate asked; read by the I/O thread without the lock

  std::thread io_thread;
  std::mutex join_mutex;

  // Held by whoever drives the workers (see the top of this file).
  std::mutex token;
  std::atomic<bool> busy{false};            // jobs pending or in flight: no caller may run its own
  std::atomic<int> callers_waiting{0};      // callers that want the token: an idle I/O thread sleeps at once

  // The token holder's own.
  std::vector<Worker> workers;
  std::deque<PoolJob*> pending;
  std::uint64_t next_id = 1;
  std::string batch;    // the batch being sent, reused
  std::string message;  // the reply being read, reused

  // Buffers of large calls that have run, for the next ones (spare_call_buffer).
  std::mutex bank_mutex;
  std::vector<std::string> call_bank;

  static void signal(const UniqueFd& event) noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(event.get(), &one, sizeof one);
  }
  void wake() const noexcept { signal(wake_fd); }
  /// Takes what was signalled on `event` (non-blocking: nothing, if nothing was).
  static void drain(const UniqueFd& event) noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(event.get(), &count, sizeof count);
  }

  // The I/O thread (process_pool_io_thread.cpp).
  void run(std::promise<void>& started) noexcept;
  void serve(std::unique_lock<std::mutex>& hold);
  bool has_work() const noexcept;
  bool take_incoming();
  /// True when the thread is done (terminated).
  bool handle_commands();
  /// With nothing pending or in flight (has_work() false): whether nothing more will come.
  bool finished();
  /// Takes up to `limit` replies of worker `index`.
  bool collect(std::size_t index, std::size_t limit);
  /// Hands pending jobs to workers, each time to the one with the fewest tasks in flight, so that a
  /// short task does not wait behind a long one while another worker is free.
  bool dispatch();
  /// Sends up to `wanted` pending jobs to `worker` in one message; false if none went.
  bool send_batch(Worker& worker, std::size_t wanted);
  /// Sleeps until a submission, a command, a reply or a worker's death; lets go of the token meanwhile.
  void sleep(std::unique_lock<std::mutex>& hold);
  /// Takes the token back after a sleep; a caller that holds it while it waits for its reply is asked to
  /// hand it over.
  void take_token(std::unique_lock<std::mutex>& hold);

  // The workers' lifecycle (process_pool_workers.cpp).
  Worker start_worker();
  void publish_pids();
  /// Looks for workers that ended (all of them, or those marked in `suspects`) and deals with each.
  void check_workers(const std::vector<char>* suspects);
  /// Worker `index` has ended with `exitcode`. False if the pool broke.
  bool worker_ended(std::size_t index, int exitcode);
  bool workers_intact();
  bool still_accepting();
  /// Forgets the (stopped) workers, then ends every job they held and every pending one with `end`.
  template <class End>
  void abandon_jobs(End end) noexcept;
  /// Fails every job with `error`, which later submits throw too, and stops all workers.
  void break_pool(std::exception_ptr error) noexcept;
  void terminate_now() noexcept;
  /// Signals every worker and waits until all have ended; SIGTERM is followed by SIGKILL after a grace.
  void stop_all_workers(int signal_number) noexcept;
  /// Waits for every worker to end, at most `grace` in all, then kills those still running.
  void join_workers(Clock::duration grace, bool warn_on_kill) noexcept;
  /// All work is done and no more will come: each worker gets the empty batch and exits.
  void stop_workers() noexcept;

  // A caller's own run of its task, and the bank of call buffers (process_pool_core.cpp).
  /// Pool::apply's way (see the top of this file): with the token, sends `job` to an idle worker and polls
  /// for its reply. False, with `job` untouched, when the pool is not idle or not accepting; true once the
  /// pool owns the job (done, or handed over to the I/O thread).
  bool run_here(PoolJob& job);
  /// Waits, with the token, for the reply of the one task in flight, on worker `index`: polls, then
  /// sleeps on that worker's ring. Returns early when the worker dies or is lost (the I/O thread, which
  /// watches the pidfds, deals with it) and when the I/O thread wants the token.
  void await_reply(std::size_t index);
  /// Keeps the buffer of a large call that has run for the next large call to be encoded in: its pages
  /// stay mapped, where a fresh buffer would be page-faulted in again (the allocator hands large
  /// blocks back to the kernel).
  void bank_call_buffer(std::string buffer) noexcept;
};

}  // namespace cohort::detail
