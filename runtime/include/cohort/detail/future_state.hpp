// The shared state behind Future/Promise/Task: a status word that blocking waiters sleep on (futex), a
// mutex that guards only the result and the callback list, and callbacks that run exactly once, on the
// completing thread, after the lock is released.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "cohort/detail/callback.hpp"
#include "cohort/detail/clock.hpp"

namespace cohort::detail {

enum class FutureStatus : std::uint32_t { pending = 0, running = 1, finished = 2, cancelled = 3 };

class FutureStateBase {
 public:
  using Callback = detail::Callback;

  FutureStateBase() = default;
  FutureStateBase(const FutureStateBase&) = delete;
  FutureStateBase& operator=(const FutureStateBase&) = delete;

  FutureStatus status() const noexcept { return static_cast<FutureStatus>(word_.load(std::memory_order_acquire) & status_mask); }
  bool done() const noexcept { return status() >= FutureStatus::finished; }
  /// Done with an error or cancelled.
  bool failed() const noexcept;

  void wait() const;
  /// False when the deadline passed first.
  bool wait_until(Clock::time_point deadline) const;

  /// pending -> cancelled. False once running or done.
  bool cancel();
  /// pending -> running, as an executor does before it runs the work. False if it was cancelled.
  bool set_running_or_notify_cancel() noexcept;
  /// Ends the future with an error; throws InvalidStateError if it was already done.
  void set_exception(std::exception_ptr error);
  /// Same, but reports instead of throwing whether it took effect.
  bool try_set_exception(std::exception_ptr error) noexcept;
  /// Ends the future as cancelled (a task that finished by CancelledError), unless already done.
  bool mark_cancelled() noexcept;

  /// The stored error once done; a CancelledError for a cancelled future; null on success.
  std::exception_ptr error() const;
  /// Throws what error() returns, if anything.
  void rethrow_if_failed() const;

  /// Runs `fn` once when the state is done, on the completing thread; at once (here) if already done.
  /// Returns an id for remove_callback, or 0 when it already ran.
  std::uint64_t on_done(Callback fn);
  /// Drops a callback that has not run yet; false if it ran or is running.
  bool remove_callback(std::uint64_t id) noexcept;

 protected:
  ~FutureStateBase() = default;

  /// Stores a result with `store()` under the lock and completes the state, unless already done.
  template <class Store>
  bool try_finish(Store&& store) {
    std::unique_lock lock(mutex_);
    if (finishing_locked()) return false;
    std::forward<Store>(store)();
    publish(lock, FutureStatus::finished);
    return true;
  }

  [[noreturn]] static void throw_already_done();

 private:
  static constexpr std::uint32_t status_mask = 0x3;
  static constexpr std::uint32_t waiters_bit = 0x4;
  /// Set under the lock while publish() finishes: the state is taken, but waiters do not see it done yet.
  static constexpr std::uint32_t completing_bit = 0x8;

  /// With the lock held: done, or being completed by another thread. One load: a completion publishing
  /// between two loads would clear the completing bit after the first saw the status still running.
  bool finishing_locked() const noexcept {
    const auto word = word_.load(std::memory_order_acquire);
    return (word & status_mask) >= static_cast<std::uint32_t>(FutureStatus::finished) || (word & completing_bit) != 0;
  }
  /// Until a completion in progress has published its status.
  void wait_until_published() const noexcept;

  /// Sets the final status, releases the lock, wakes blocked waiters and runs the callbacks.
  void publish(std::unique_lock<std::mutex>& lock, FutureStatus final_status) noexcept;

  struct Registered {
    std::uint64_t id = 0;
    Callback fn;
  };

  mutable std::mutex mutex_;
  mutable std::atomic<std::uint32_t> word_{0};
  std::exception_ptr error_;
  // The callbacks in the order they were added. A vector, not an inline slot: a million queued futures
  // with no callback must stay small (each byte here is a megabyte there).
  std::vector<Registered> callbacks_;
  std::uint64_t next_callback_id_ = 0;
};

template <class T>
class FutureState : public FutureStateBase {
 public:
  template <class U>
  void set_value(U&& value) {
    if (!try_set_value(std::forward<U>(value))) throw_already_done();
  }
  /// Same, but reports instead of throwing whether it took effect.
  template <class U>
  bool try_set_value(U&& value) {
    return try_finish([&] { value_.emplace(std::forward<U>(value)); });
  }
  const T& value() const noexcept { return *value_; }
  /// Moves the value out; only for a consumer that owns the state alone (gather, run_in_executor).
  T take() noexcept(std::is_nothrow_move_constructible_v<T>) { return std::move(*value_); }

 private:
  std::optional<T> value_;
};

template <>
class FutureState<void> : public FutureStateBase {
 public:
  void set_value() {
    if (!try_set_value()) throw_already_done();
  }
  bool try_set_value() noexcept {
    return try_finish([] {});
  }
  void value() const noexcept {}
  void take() const noexcept {}
};

/// Logs an exception escaping a done-callback; like Python, a failing callback never breaks the future.
void report_callback_error(std::exception_ptr error) noexcept;

}  // namespace cohort::detail
