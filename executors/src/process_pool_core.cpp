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
#include "cohort/detail/process_pool_core.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cohort/connection.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/connection_set.hpp"
#include "cohort/detail/pool_protocol.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/spin_wait.hpp"
#include "cohort/detail/unique_fd.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort::detail {

namespace {

using namespace std::chrono_literals;

constexpr auto busy_check_period = 10ms;
/// How long a caller running its task itself polls for the reply before it sleeps on the worker's ring.
constexpr auto caller_poll = spin_before_sleep;
/// Each worker is given about this much work ahead of it.
constexpr double queued_work_ns = 2e6;
constexpr std::size_t max_window = 4096;
/// A batch stops growing here (a single larger task still goes alone).
constexpr std::size_t max_batch_bytes = 64 * 1024;
/// Buffers of calls of this size are kept for reuse (bank_call_buffer), this many at most.
constexpr std::size_t min_banked_call = 64 * 1024;
constexpr std::size_t max_banked_call = 4 * 1024 * 1024;
constexpr std::size_t max_banked_calls = 8;
/// How long terminate() gives workers between SIGTERM and SIGKILL, and close() gives them to exit.
constexpr auto terminate_grace = 200ms;
constexpr auto exit_grace = 5s;

std::atomic<unsigned> worker_counter{0};

struct InFlight {
  PoolJob* job;
  Clock::time_point sent;
};

struct Worker {
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

std::exception_ptr exception_of(const RemoteFailure& failure) {
  try {
    rethrow_failure(failure);
  } catch (...) {
    return std::current_exception();
  }
}

/// "was killed by signal 9 (SIGKILL)" or "exited with code 3".
std::string describe_exit(int exitcode) {
  if (exitcode < 0) {
    const char* abbreviation = ::sigabbrev_np(-exitcode);
    return fmt::format("was killed by signal {} (SIG{})", -exitcode, abbreviation ? abbreviation : "?");
  }
  return fmt::format("exited with code {}", exitcode);
}

void append_u64(std::string& out, std::uint64_t value) { out.append(reinterpret_cast<const char*>(&value), sizeof value); }

}  // namespace

struct ProcessPoolCore::State {
  explicit State(ProcessPoolConfig c) : config(std::move(c)) {
    worker_options.initializer = config.initializer;
    worker_options.max_tasks = config.max_tasks_per_child;
    wake_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    yield_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_fd || !yield_fd) throw Error(fmt::format("process pool: eventfd failed: {}", std::strerror(errno)));
  }

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

  // ---- the I/O thread ----

  void run(std::promise<void>& started) noexcept {
    ::pthread_setname_np(::pthread_self(), "cohort-pool");
    std::unique_lock hold(token);
    try {
      for (std::size_t i = 0; i < config.workers; ++i) workers.push_back(start_worker());
      publish_pids();
    } catch (...) {
      const auto error = std::current_exception();
      stop_all_workers(SIGKILL);
      started.set_exception(error);
      return;
    }
    started.set_value();
    try {
      serve(hold);
    } catch (...) {
      // Nothing above should throw; if it did, no job may be left waiting for ever.
      break_pool(std::current_exception());
    }
  }

  Worker start_worker() {
    auto [pool_end, worker_end] = Pipe();
    ProcessOptions options{.name = fmt::format("{}-{}", config.name_prefix, ++worker_counter),
                           .daemon = true,
                           .start_method = config.start_method};
    auto process = std::make_unique<Process>(std::move(options), &pool_worker_main, std::move(worker_end), worker_options);
    process->start();
    Worker worker;
    worker.process = std::move(process);
    worker.channel = std::move(pool_end);
    worker.presence.emplace(worker.channel);
    worker.tasks_left = config.max_tasks_per_child == 0 ? SIZE_MAX : config.max_tasks_per_child;
    return worker;
  }

  void publish_pids() {
    std::vector<int> now;
    for (auto& worker : workers) now.push_back(worker.process->pid());
    std::lock_guard lock(mutex);
    pids = std::move(now);
  }

  void serve(std::unique_lock<std::mutex>& hold) {
    auto last_progress = Clock::now();
    auto last_check = last_progress;
    for (;;) {
      bool progress = take_incoming();
      if (commands.load(std::memory_order_acquire) && handle_commands()) return;
      for (std::size_t i = 0; i < workers.size(); ++i) progress |= collect(i, 256);
      progress |= dispatch();
      const bool working = has_work();
      if (!working && finished()) {
        stop_workers();
        return;
      }
      busy.store(working, std::memory_order_relaxed);
      const auto now = Clock::now();
      if (progress) {
        last_progress = now;
        if (now - last_check >= busy_check_period) {
          last_check = now;
          check_workers(nullptr);
        }
        continue;
      }
      const bool caller_waits = !working && callers_waiting.load(std::memory_order_relaxed) > 0;
      if (now - last_progress < spin_before_sleep && !caller_waits) {
        // While workers hold tasks, a worker waiting for a CPU is more useful than this thread's polling.
        working ? (void)sched_yield() : cpu_relax();
        continue;
      }
      sleep(hold);
      last_check = last_progress = Clock::now();
    }
  }

  bool has_work() const noexcept {
    if (!pending.empty()) return true;
    for (const auto& worker : workers)
      if (!worker.in_flight.empty()) return true;
    return false;
  }

  /// Pool::apply's way (see the top of this file): with the token, sends `job` to an idle worker and polls
  /// for its reply. False, with `job` untouched, when the pool is not idle or not accepting; true once the
  /// pool owns the job (done, or handed over to the I/O thread).
  bool run_here(PoolJob& job) {
    if (busy.load(std::memory_order_relaxed)) return false;
    std::unique_lock hold(token, std::defer_lock);
    callers_waiting.fetch_add(1, std::memory_order_relaxed);
    const bool taken = spin_until([&] { return hold.try_lock(); }, caller_poll);
    callers_waiting.fetch_sub(1, std::memory_order_relaxed);
    if (!taken) return false;
    {
      std::lock_guard lock(mutex);
      if (!accepting || !incoming.empty() || commands.load(std::memory_order_relaxed)) return false;
    }
    if (has_work()) return false;
    const auto idle = std::find_if(workers.begin(), workers.end(), [](const Worker& w) { return w.takes_more(); });
    if (idle == workers.end()) return false;
    const std::size_t index = static_cast<std::size_t>(idle - workers.begin());
    pending.push_back(&job);
    send_batch(*idle, 1);
    await_reply(index);
    const bool left = has_work();
    busy.store(left, std::memory_order_relaxed);
    hold.unlock();
    if (left) wake();
    return true;
  }

  bool take_incoming() {
    if (incoming_count.load(std::memory_order_relaxed) == 0) return false;
    std::vector<PoolJob*> taken;
    {
      std::lock_guard lock(mutex);
      taken.swap(incoming);
      incoming_count.store(0, std::memory_order_relaxed);
    }
    pending.insert(pending.end(), taken.begin(), taken.end());
    return !taken.empty();
  }

  /// True when the thread is done (terminated).
  bool handle_commands() {
    bool terminate = false;
    bool cancel = false;
    {
      std::lock_guard lock(mutex);
      terminate = terminating;
      cancel = std::exchange(cancel_queued, false);
      commands.store(false, std::memory_order_relaxed);
    }
    take_incoming();
    if (terminate) {
      terminate_now();
      return true;
    }
    if (cancel) {
      for (auto* job : pending) job->cancel();
      pending.clear();
    }
    return false;
  }

  /// With nothing pending or in flight (has_work() false): whether nothing more will come.
  bool finished() {
    if (incoming_count.load(std::memory_order_relaxed) != 0) return false;
    std::lock_guard lock(mutex);
    return closing && incoming.empty();
  }

  /// Takes up to `limit` replies of worker `index`.
  bool collect(std::size_t index, std::size_t limit) {
    auto& worker = workers[index];
    if (worker.lost) return false;
    bool any = false;
    try {
      while (limit-- > 0 && message_waiting(worker.channel)) {
        receive_into(worker.channel, message);
        const auto reply = view_reply(message);
        any = true;
        if (reply.id == initializer_failed_id) {
          const auto cause = fmt::format("A process in the initializer failed: {} (pid {}) raised {}: {}",
                                         worker.process->name(), worker.process->pid(), reply.failure.type,
                                         reply.failure.message);
          break_pool(std::make_exception_ptr(BrokenProcessPool(cause)));
          return true;
        }
        if (worker.in_flight.empty() || worker.in_flight.front().job->id != reply.id)
          throw SerializationError(fmt::format("reply to task {}, which {} was not running", reply.id,
                                               worker.process->name()));
        const auto [job, sent] = worker.in_flight.front();
        worker.answered();
        const auto now = Clock::now();
        const double sample = static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - std::max(sent, worker.last_reply)).count());
        worker.task_ns = worker.task_ns <= 0 ? sample : 0.8 * worker.task_ns + 0.2 * sample;
        worker.last_reply = now;
        bank_call_buffer(job->take_call());
        if (reply.ok)
          job->succeed(reply.result);
        else
          job->fail(exception_of(reply.failure));
      }
    } catch (const std::exception& e) {
      // A truncated or corrupt stream: the worker died while writing, or cannot be trusted. Its end is
      // handled as a death once the process is gone.
      log_debug(fmt::format("process pool: {}: {}; stopping it", worker.process->name(), e.what()));
      worker.lost = true;
      worker.process->kill();
      return true;
    }
    return any;
  }

  /// Keeps the buffer of a large call that has run for the next large call to be encoded in: its pages
  /// stay mapped, where a fresh buffer would be page-faulted in again (the allocator hands large
  /// blocks back to the kernel).
  void bank_call_buffer(std::string buffer) noexcept {
    if (buffer.capacity() < min_banked_call || buffer.capacity() > max_banked_call) return;
    std::lock_guard lock(bank_mutex);
    if (call_bank.size() < max_banked_calls) call_bank.push_back(std::move(buffer));
  }

  /// Hands pending jobs to workers, each time to the one with the fewest tasks in flight, so that a
  /// short task does not wait behind a long one while another worker is free.
  bool dispatch() {
    if (pending.empty() || workers.empty()) return false;
    std::vector<char> full(workers.size());
    const auto takes_more = [&](std::size_t i) { return !full[i] && workers[i].takes_more(); };
    bool any = false;
    while (!pending.empty()) {
      std::size_t open = 0;
      std::size_t best = workers.size();
      for (std::size_t i = 0; i < workers.size(); ++i) {
        if (!takes_more(i)) continue;
        ++open;
        if (best == workers.size() || workers[i].in_flight.size() < workers[best].in_flight.size()) best = i;
      }
      if (open == 0) break;
      auto& worker = workers[best];
      // A fair share of what is pending, so that one worker does not take it all while others idle.
      const std::size_t share = (pending.size() + open - 1) / open;
      const std::size_t wanted = std::min({worker.window() - worker.in_flight.size(), worker.tasks_left, share});
      if (send_batch(worker, wanted))
        any = true;
      else
        full[best] = 1;
    }
    return any;
  }

  /// Sends up to `wanted` pending jobs to `worker` in one message; false if none went.
  bool send_batch(Worker& worker, std::size_t wanted) {
    // While the worker has tasks it may be writing replies that only this thread drains; a send that
    // waited for room could then wait for ever. Send only what fits, unless the worker is idle.
    const std::uint64_t room = worker.in_flight.empty() ? UINT64_MAX : send_room(worker.channel);
    batch.clear();
    const auto header = begin_frame(batch, type_hash<PoolTaskBatch>, type_name<PoolTaskBatch>());
    const std::size_t count_at = batch.size();
    append_u64(batch, 0);
    const std::size_t first = worker.in_flight.size();
    std::uint64_t count = 0;
    std::string_view tail;  // a large call that goes alone, written into the ring from where it is
    const auto now = Clock::now();
    while (count < wanted && !pending.empty()) {
      PoolJob* job = pending.front();
      const std::size_t size = sizeof(std::uint64_t) + job->call().size();
      if (count > 0 && batch.size() + size > max_batch_bytes) break;
      if (batch.size() + size + sizeof(MessageHeader) > room) break;
      pending.pop_front();
      if (!job->started) {
        if (!job->start()) continue;  // cancelled while it waited: consumed
        job->started = true;
      }
      job->id = next_id++;
      append_u64(batch, job->id);
      worker.in_flight.push_back(InFlight{job, now});
      ++count;
      if (count == 1 && job->call().size() >= max_batch_bytes) {
        tail = job->call();
        break;
      }
      batch.append(job->call());
    }
    if (count == 0) return false;
    std::memcpy(batch.data() + count_at, &count, sizeof count);
    try {
      end_frame(batch, header, tail.size());
      tail.empty() ? worker.channel.send_bytes(batch) : send_joined(worker.channel, batch, tail);
    } catch (const SerializationError&) {
      // Too large for any worker (max_message_size): only a single job can be, and it fails alone.
      const auto error = std::current_exception();
      for (std::size_t i = first; i < worker.in_flight.size(); ++i) worker.in_flight[i].job->fail(error);
      worker.in_flight.resize(first);
      return true;
    } catch (const std::exception& e) {
      // The worker is gone: these never reached it. They go back to the front, to whoever is next.
      log_debug(fmt::format("process pool: cannot send to {}: {}", worker.process->name(), e.what()));
      for (std::size_t i = worker.in_flight.size(); i > first; --i) pending.push_front(worker.in_flight[i - 1].job);
      worker.in_flight.resize(first);
      worker.lost = true;
      worker.process->kill();
      return false;
    }
    worker.batches.push_back(count);
    if (worker.tasks_left != SIZE_MAX) {
      worker.tasks_left -= count;
      if (worker.tasks_left == 0) worker.stopping = true;  // it exits after its last reply
    }
    return true;
  }

  /// Waits, with the token, for the reply of the one task in flight, on worker `index`: polls, then
  /// sleeps on that worker's ring. Returns early when the worker dies or is lost (the I/O thread, which
  /// watches the pidfds, deals with it) and when the I/O thread wants the token.
  void await_reply(std::size_t index) {
    const auto gone = [&] { return index >= workers.size() || workers[index].lost; };
    const auto answered = [&] {
      if (gone()) return true;
      collect(index, 1);
      return gone() || workers[index].in_flight.empty();
    };
    // A worker woken by the task usually runs on this thread's CPU (the kernel places a thread woken by
    // a socket next to its waker): polling would only keep it off. A worker that was polling runs on
    // another CPU and answers a tiny task within microseconds.
    const bool woken = receiver_sleeping(workers[index].channel);
    if (spin_until(answered, woken ? Clock::duration::zero() : caller_poll)) return;
    std::array<pollfd, 2> fds{pollfd{.fd = yield_fd.get(), .events = POLLIN, .revents = 0},
                              pollfd{.fd = watch_fd(*workers[index].process), .events = POLLIN, .revents = 0}};
    const std::array<const Connection*, 1> ends{&workers[index].channel};
    std::array<char, 1> closed{};
    for (;;) {
      wait_for_any(ends, fds, -1, closed);
      if (answered() || fds[0].revents != 0 || fds[1].revents != 0 || closed[0]) return;
    }
  }

  /// Sleeps until a submission, a command, a reply or a worker's death; lets go of the token meanwhile.
  void sleep(std::unique_lock<std::mutex>& hold) {
    {
      std::lock_guard lock(mutex);
      if (!incoming.empty() || commands.load(std::memory_order_relaxed)) return;
      io_sleeping = true;
    }
    // Only the rings of workers that hold tasks: an idle worker sends nothing but its death, which its
    // pidfd tells, and a caller running its own task on it must not have the worker wake this thread.
    std::vector<const Connection*> ends;
    std::vector<pollfd> fds;
    fds.push_back(pollfd{.fd = wake_fd.get(), .events = POLLIN, .revents = 0});
    for (auto& worker : workers) {
      if (!worker.lost && !worker.in_flight.empty()) ends.push_back(&worker.channel);
      fds.push_back(pollfd{.fd = watch_fd(*worker.process), .events = POLLIN, .revents = 0});
    }
    std::vector<char> closed(ends.size());
    hold.unlock();
    try {
      wait_for_any(ends, fds, -1, closed);
    } catch (...) {
      hold.lock();
      throw;
    }
    take_token(hold);
    {
      std::lock_guard lock(mutex);
      io_sleeping = false;
    }
    if (fds[0].revents != 0) drain(wake_fd);
    // A closed channel means its worker is gone or going; its pidfd may not say so yet (or at all, when
    // someone else reaped it), so then every worker is looked at.
    const bool channel_closed = std::find(closed.begin(), closed.end(), 1) != closed.end();
    std::vector<char> suspects(workers.size());
    bool any = channel_closed;
    for (std::size_t i = 0; i < workers.size(); ++i)
      if (fds[i + 1].revents != 0) suspects[i] = any = true;
    if (any) check_workers(channel_closed ? nullptr : &suspects);
  }

  /// Takes the token back after a sleep; a caller that holds it while it waits for its reply is asked to
  /// hand it over.
  void take_token(std::unique_lock<std::mutex>& hold) {
    if (!hold.try_lock()) {
      signal(yield_fd);
      hold.lock();
    }
    drain(yield_fd);  // a request nobody saw
  }

  /// Looks for workers that ended (all of them, or those marked in `suspects`) and deals with each.
  void check_workers(const std::vector<char>* suspects) {
    for (std::size_t i = 0; i < workers.size();) {
      std::optional<int> code;
      if (!suspects || (*suspects)[i] || workers[i].lost) code = workers[i].process->exitcode();
      if (!code) {
        ++i;
        continue;
      }
      const auto before = workers.size();
      if (!worker_ended(i, *code)) return;  // the pool broke
      suspects = nullptr;                   // indices may have moved: look at every worker from here
      if (workers.size() == before) ++i;    // replaced in place; the new one has not ended
    }
  }

  /// Worker `index` has ended with `exitcode`. False if the pool broke.
  bool worker_ended(std::size_t index, int exitcode) {
    // Replies it sent before it ended are still in its ring.
    collect(index, SIZE_MAX);
    if (!workers_intact()) return false;
    auto& worker = workers[index];
    if (!worker.in_flight.empty()) {
      const auto what = fmt::format("{} (pid {}) {}", worker.process->name(), worker.process->pid(), describe_exit(exitcode));
      if (config.on_worker_loss == WorkerLoss::break_pool) {
        break_pool(std::make_exception_ptr(BrokenProcessPool(fmt::format(
            "A process in the process pool was terminated abruptly while the future was running or pending: {}", what))));
        return false;
      }
      // The worker ran its tasks in order and replied after each: the first without a reply was running.
      auto running = worker.in_flight.front();
      worker.in_flight.pop_front();
      running.job->fail(std::make_exception_ptr(ProcessError(fmt::format("pool worker {} while running this task", what))));
      for (auto it = worker.in_flight.rbegin(); it != worker.in_flight.rend(); ++it) pending.push_front(it->job);
      worker.in_flight.clear();
      log_warning(fmt::format("process pool: worker {}; starting another", what));
    } else if (!worker.stopping) {
      log_warning(fmt::format("process pool: worker {} (pid {}) {} while idle; starting another", worker.process->name(),
                   worker.process->pid(), describe_exit(exitcode)));
    }
    const bool replace = !pending.empty() || incoming_count.load(std::memory_order_relaxed) != 0 || still_accepting();
    worker.process->join();
    if (replace) {
      try {
        workers[index] = start_worker();
      } catch (...) {
        break_pool(std::current_exception());
        return false;
      }
    } else {
      workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(index));
    }
    publish_pids();
    return true;
  }

  bool workers_intact() {
    std::lock_guard lock(mutex);
    return !broken;
  }

  bool still_accepting() {
    std::lock_guard lock(mutex);
    return accepting;
  }

  /// Fails every job with `error`, which later submits throw too, and stops all workers.
  void break_pool(std::exception_ptr error) noexcept {
    {
      std::lock_guard lock(mutex);
      accepting = false;
      closing = true;
      if (!broken) broken = error;
      error = broken;
    }
    log_error(fmt::format("process pool is broken: {}", describe_failure(error).message));
    take_incoming();
    stop_all_workers(SIGKILL);
    abandon_jobs([&](PoolJob* job) { job->fail(error); });
  }

  /// Forgets the (stopped) workers, then ends every job they held and every pending one with `end`.
  template <class End>
  void abandon_jobs(End end) noexcept {
    std::vector<PoolJob*> jobs;
    for (auto& worker : workers)
      for (auto& entry : worker.in_flight) jobs.push_back(entry.job);
    jobs.insert(jobs.end(), pending.begin(), pending.end());
    pending.clear();
    workers.clear();
    publish_pids();  // before any future completes: whoever sees one done sees the workers gone
    for (auto* job : jobs) end(job);
  }

  void terminate_now() noexcept {
    stop_all_workers(SIGTERM);
    abandon_jobs([](PoolJob* job) { job->cancel(); });
  }

  /// Signals every worker and waits until all have ended; SIGTERM is followed by SIGKILL after a grace.
  void stop_all_workers(int signal_number) noexcept {
    for (auto& worker : workers) {
      try {
        signal_number == SIGKILL ? worker.process->kill() : worker.process->terminate();
      } catch (const std::exception& e) {
        log_error(fmt::format("process pool: cannot signal {}: {}", worker.process->name(), e.what()));
      }
    }
    join_workers(terminate_grace, false);
  }

  /// Waits for every worker to end, at most `grace` in all, then kills those still running.
  void join_workers(Clock::duration grace, bool warn_on_kill) noexcept {
    const auto deadline = Clock::now() + grace;
    for (auto& worker : workers) {
      try {
        if (!worker.process->join(std::max(deadline - Clock::now(), Clock::duration::zero()))) {
          if (warn_on_kill) log_warning(fmt::format("process pool: {} did not exit; killing it", worker.process->name()));
          worker.process->kill();
          worker.process->join();
        }
      } catch (const std::exception& e) {
        log_error(fmt::format("process pool: cannot stop {}: {}", worker.process->name(), e.what()));
      }
    }
  }

  /// All work is done and no more will come: each worker gets the empty batch and exits.
  void stop_workers() noexcept {
    for (auto& worker : workers) {
      try {
        if (!worker.lost) worker.channel.send(PoolTaskBatch{});
      } catch (const std::exception&) {
        // Already gone; the join below sees it.
      }
    }
    join_workers(exit_grace, true);
    workers.clear();
    publish_pids();
  }
};

ProcessPoolCore::ProcessPoolCore(ProcessPoolConfig config) : state_(std::make_shared<State>(std::move(config))) {
  if (state_->config.workers == 0) throw std::invalid_argument("process pool: the number of workers must be at least 1");
  std::promise<void> started;
  auto ready = started.get_future();
  state_->io_thread = std::thread([state = state_, &started] { state->run(started); });
  try {
    ready.get();
  } catch (...) {
    state_->io_thread.join();
    throw;
  }
}

ProcessPoolCore::~ProcessPoolCore() {
  close(false);
  join();
}

void ProcessPoolCore::submit(PoolJob& job) {
  PoolJob* const one[] = {&job};
  submit(one);
}

void ProcessPoolCore::submit(std::span<PoolJob* const> jobs) {
  auto& s = *state_;
  bool wake = false;
  {
    std::lock_guard lock(s.mutex);
    if (!s.accepting) {
      if (s.broken) std::rethrow_exception(s.broken);
      throw Error(s.config.closed_message);
    }
    s.incoming.insert(s.incoming.end(), jobs.begin(), jobs.end());
    s.incoming_count.store(s.incoming.size(), std::memory_order_relaxed);
    wake = std::exchange(s.io_sleeping, false);
  }
  if (wake) s.wake();
}

void ProcessPoolCore::submit_waited(PoolJob& job) {
  if (!state_->run_here(job)) submit(job);
}

void ProcessPoolCore::close(bool cancel_queued) {
  auto& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    s.accepting = false;
    s.closing = true;
    s.cancel_queued = s.cancel_queued || cancel_queued;
    s.commands.store(true, std::memory_order_release);
  }
  s.wake();
}

void ProcessPoolCore::join() {
  auto& s = *state_;
  std::lock_guard lock(s.join_mutex);
  if (!s.io_thread.joinable()) return;
  if (s.io_thread.get_id() == std::this_thread::get_id()) {
    // A done-callback on the I/O thread let go of the pool: the thread finishes on its own.
    s.io_thread.detach();
    return;
  }
  s.io_thread.join();
}

void ProcessPoolCore::terminate() {
  auto& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    s.accepting = false;
    s.closing = true;
    s.terminating = true;
    s.commands.store(true, std::memory_order_release);
  }
  s.wake();
  join();
}

std::string ProcessPoolCore::spare_call_buffer(std::size_t size) {
  auto& s = *state_;
  if (size < min_banked_call) return {};
  std::lock_guard lock(s.bank_mutex);
  const auto fits = std::find_if(s.call_bank.begin(), s.call_bank.end(),
                                 [&](const std::string& buffer) { return buffer.capacity() >= size; });
  if (fits == s.call_bank.end()) return {};
  auto buffer = std::move(*fits);
  s.call_bank.erase(fits);
  buffer.clear();
  return buffer;
}

std::size_t ProcessPoolCore::workers() const noexcept { return state_->config.workers; }

StartMethod ProcessPoolCore::start_method() const noexcept { return state_->config.start_method; }

bool ProcessPoolCore::accepting() const noexcept {
  std::lock_guard lock(state_->mutex);
  return state_->accepting;
}

std::vector<int> ProcessPoolCore::worker_pids() const {
  std::lock_guard lock(state_->mutex);
  return state_->pids;
}

}  // namespace cohort::detail
