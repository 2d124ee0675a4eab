// The I/O thread's loop: it takes submissions, hands batches to workers, collects their replies and
// sleeps when there is nothing to do (process_pool_internal.hpp tells how the pool fits together).
#include <poll.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <vector>

#include <fmt/format.h>

#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "process_pool/process_pool_internal.hpp"

namespace cohort::detail {

namespace {

using namespace std::chrono_literals;

constexpr auto busy_check_period = 10ms;
/// A batch stops growing here (a single larger task still goes alone).
constexpr std::size_t max_batch_bytes = 64 * 1024;

void append_u64(std::string& out, std::uint64_t value) { out.append(reinterpret_cast<const char*>(&value), sizeof value); }

}  // namespace

void ProcessPoolCore::State::run(std::promise<void>& started) noexcept {
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

void ProcessPoolCore::State::serve(std::unique_lock<std::mutex>& hold) {
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

bool ProcessPoolCore::State::has_work() const noexcept {
  if (!pending.empty()) return true;
  for (const auto& worker : workers)
    if (!worker.in_flight.empty()) return true;
  return false;
}

bool ProcessPoolCore::State::take_incoming() {
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

bool ProcessPoolCore::State::handle_commands() {
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

bool ProcessPoolCore::State::finished() {
  if (incoming_count.load(std::memory_order_relaxed) != 0) return false;
  std::lock_guard lock(mutex);
  return closing && incoming.empty();
}

bool ProcessPoolCore::State::collect(std::size_t index, std::size_t limit) {
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

bool ProcessPoolCore::State::dispatch() {
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

bool ProcessPoolCore::State::send_batch(Worker& worker, std::size_t wanted) {
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

void ProcessPoolCore::State::sleep(std::unique_lock<std::mutex>& hold) {
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

void ProcessPoolCore::State::take_token(std::unique_lock<std::mutex>& hold) {
  if (!hold.try_lock()) {
    signal(yield_fd);
    hold.lock();
  }
  drain(yield_fd);  // a request nobody saw
}

}  // namespace cohort::detail
