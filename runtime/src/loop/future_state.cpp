// Completion and blocking waits of the future state. Waiters sleep on the status word with a private
// futex; the completing thread only issues the wake syscall when a waiter announced itself.
#include "cohort/detail/future_state.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

#include <fmt/format.h>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort::detail {
namespace {

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const timespec* relative) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, relative, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

timespec to_timespec(Clock::duration d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

void throw_timeout(std::string_view what, Clock::duration waited) {
  throw TimeoutError(fmt::format("{}: timed out after {} ms", what,
                                 std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()));
}

void FutureStateBase::wait() const { wait_until(Clock::time_point::max()); }

bool FutureStateBase::wait_until(Clock::time_point deadline) const {
  for (;;) {
    auto word = word_.load(std::memory_order_acquire);
    if ((word & status_mask) >= static_cast<std::uint32_t>(FutureStatus::finished)) return true;
    if (!(word & waiters_bit)) {
      if (!word_.compare_exchange_weak(word, word | waiters_bit, std::memory_order_acq_rel)) continue;
      word |= waiters_bit;
    }
    if (deadline == Clock::time_point::max()) {
      futex_wait(word_, word, nullptr);
    } else {
      const auto now = Clock::now();
      if (now >= deadline) return false;
      const auto relative = to_timespec(deadline - now);
      futex_wait(word_, word, &relative);
    }
  }
}

bool FutureStateBase::cancel() {
  std::unique_lock lock(mutex_);
  const auto current = status();
  if (current == FutureStatus::cancelled) return true;
  if (current != FutureStatus::pending || finishing_locked()) return false;
  publish(lock, FutureStatus::cancelled);
  return true;
}

bool FutureStateBase::set_running_or_notify_cancel() noexcept {
  auto word = word_.load(std::memory_order_acquire);
  for (;;) {
    if (word & completing_bit) {  // a cancel() is publishing: its outcome decides
      wait_until_published();
      word = word_.load(std::memory_order_acquire);
      continue;
    }
    const auto current = static_cast<FutureStatus>(word & status_mask);
    if (current == FutureStatus::cancelled) return false;
    if (current != FutureStatus::pending) return true;
    const auto running = (word & ~status_mask) | static_cast<std::uint32_t>(FutureStatus::running);
    if (word_.compare_exchange_weak(word, running, std::memory_order_acq_rel)) return true;
  }
}

void FutureStateBase::set_exception(std::exception_ptr error) {
  if (!try_set_exception(std::move(error))) throw_already_done();
}

bool FutureStateBase::try_set_exception(std::exception_ptr error) noexcept {
  return try_finish([&] { error_ = std::move(error); });
}

bool FutureStateBase::mark_cancelled() noexcept {
  std::unique_lock lock(mutex_);
  if (finishing_locked()) return false;
  publish(lock, FutureStatus::cancelled);
  return true;
}

bool FutureStateBase::failed() const noexcept {
  const auto current = status();
  return current == FutureStatus::cancelled || (current == FutureStatus::finished && error_ != nullptr);
}

std::exception_ptr FutureStateBase::error() const {
  if (status() == FutureStatus::cancelled) return std::make_exception_ptr(CancelledError("the future was cancelled"));
  // error_ is written before the status word is published and never changes afterwards.
  return error_;
}

void FutureStateBase::rethrow_if_failed() const {
  if (status() == FutureStatus::cancelled) throw CancelledError("the future was cancelled");
  if (error_) std::rethrow_exception(error_);
}

std::uint64_t FutureStateBase::on_done(Callback fn) {
  {
    std::lock_guard lock(mutex_);
    if (!finishing_locked()) {
      const auto id = ++next_callback_id_;
      callbacks_.push_back({id, std::move(fn)});
      return id;
    }
  }
  wait_until_published();  // the callback must see the result
  try {
    fn();
  } catch (...) {
    report_callback_error(std::current_exception());
  }
  return 0;
}

bool FutureStateBase::remove_callback(std::uint64_t id) noexcept {
  std::lock_guard lock(mutex_);
  for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
    if (it->id == id) {
      callbacks_.erase(it);
      return true;
    }
  }
  return false;
}

void FutureStateBase::wait_until_published() const noexcept {
  while (!done()) cpu_relax();
}

void FutureStateBase::throw_already_done() { throw InvalidStateError("the future already has a result"); }

void FutureStateBase::publish(std::unique_lock<std::mutex>& lock, FutureStatus final_status) noexcept {
  // A waiter that sees the final status may destroy this state at once, mutex included. So the callbacks
  // are taken and the lock released first (the completing bit turns other completers and on_done away
  // meanwhile), and the status is the last thing written; a futex wake on the former address is harmless.
  auto callbacks = std::move(callbacks_);
  callbacks_.clear();
  word_.fetch_or(completing_bit, std::memory_order_relaxed);
  lock.unlock();
  const auto previous = word_.exchange(static_cast<std::uint32_t>(final_status), std::memory_order_acq_rel);
  if (previous & waiters_bit) futex_wake_all(word_);
  for (auto& registered : callbacks) {
    try {
      registered.fn();
    } catch (...) {
      report_callback_error(std::current_exception());
    }
  }
}

void report_callback_error(std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log_error(fmt::format("exception in a future's done-callback: {}", e.what()));
  } catch (...) {
    log_error("exception of unknown type in a future's done-callback");
  }
}

}  // namespace cohort::detail
