// ProcessPoolCore's callers' side: starting the pool, queueing jobs, closing and terminating it, a
// caller's own run of its task on an idle pool (Pool::apply), and the bank of call buffers.
#include "cohort/detail/process_pool_core.hpp"

#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "process_pool/process_pool_internal.hpp"

namespace cohort::detail {

namespace {

/// How long a caller running its task itself polls for the reply before it sleeps on the worker's ring.
constexpr auto caller_poll = spin_before_sleep;
/// Buffers of calls of this size are kept for reuse (bank_call_buffer), this many at most.
constexpr std::size_t min_banked_call = 64 * 1024;
constexpr std::size_t max_banked_call = 4 * 1024 * 1024;
constexpr std::size_t max_banked_calls = 8;

}  // namespace

ProcessPoolCore::State::State(ProcessPoolConfig c) : config(std::move(c)) {
  worker_options.initializer = config.initializer;
  worker_options.max_tasks = config.max_tasks_per_child;
  wake_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  yield_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd || !yield_fd) throw Error(fmt::format("process pool: eventfd failed: {}", std::strerror(errno)));
}

bool ProcessPoolCore::State::run_here(PoolJob& job) {
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

void ProcessPoolCore::State::await_reply(std::size_t index) {
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

void ProcessPoolCore::State::bank_call_buffer(std::string buffer) noexcept {
  if (buffer.capacity() < min_banked_call || buffer.capacity() > max_banked_call) return;
  std::lock_guard lock(bank_mutex);
  if (call_bank.size() < max_banked_calls) call_bank.push_back(std::move(buffer));
}

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
