// Future<T> and Promise<T> (Python: concurrent.futures.Future). A Future is a cheap, copyable, hashable
// handle to a shared result that threads wait on with get() and coroutines with co_await async_get().
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/error.hpp"
#include "cohort/task.hpp"

namespace cohort {

template <class T>
class Future {
 public:
  using value_type = T;

  /// An empty handle: valid() is false and every other call throws InvalidStateError.
  Future() noexcept = default;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) noexcept : state_(std::move(state)) {}

  bool valid() const noexcept { return state_ != nullptr; }

  /// Waits for the result (Python: result()). Rethrows the work's exception; CancelledError if cancelled.
  T get() const {
    checked().wait();
    return value();
  }
  /// Same, throwing TimeoutError when `timeout` passes first.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) const {
    if (!checked().wait_until(detail::deadline_after(timeout)))
      detail::throw_timeout("Future.get", detail::to_clock_duration(timeout));
    return value();
  }

  void wait() const { checked().wait(); }
  /// True if the future is done within `timeout`.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return checked().wait_until(detail::deadline_after(timeout));
  }

  bool done() const { return checked().done(); }
  bool running() const { return checked().status() == detail::FutureStatus::running; }
  bool cancelled() const { return checked().status() == detail::FutureStatus::cancelled; }
  /// Cancels work that has not started; true if the future is (now) cancelled.
  bool cancel() const { return checked().cancel(); }

  /// Waits, then returns the work's exception, or null on success. CancelledError if cancelled.
  std::exception_ptr exception() const {
    checked().wait();
    return exception_of_done();
  }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    if (!checked().wait_until(detail::deadline_after(timeout)))
      detail::throw_timeout("Future.exception", detail::to_clock_duration(timeout));
    return exception_of_done();
  }

  /// Calls `fn(future)` or `fn()` once the future is done (`future` is an lvalue handle to this future, so
  /// `[](auto& f)`, `[](const auto& f)`, `[](const Future<T>& f)` and `[](Future<T> f)` all work): on the
  /// completing thread, or at once here if it already is. Runs exactly once and never while cohort holds
  /// a lock; exceptions are logged.
  template <class F>
  void add_done_callback(F fn) const {
    if constexpr (std::is_invocable_v<F&, Future&>) {
      std::weak_ptr<detail::FutureState<T>> weak = state_;
      checked().on_done([weak = std::move(weak), fn = std::move(fn)]() mutable {
        // The state is alive: it is the one running this callback. The callback is called with the kind
        // of argument it was checked with, an lvalue, so `[](auto& f)` binds here as it did in the check.
        Future future(weak.lock());
        fn(future);
      });
    } else {
      static_assert(std::is_invocable_v<F&>,
                    "Future::add_done_callback: the callback must be callable as fn(future) with a Future<T>& "
                    "(say [](const cohort::Future<T>& f) or [](auto& f)) or as fn()");
      if constexpr (std::is_invocable_v<F&>) checked().on_done(std::move(fn));
    }
  }

  /// Awaits the result from a coroutine without blocking the loop: `T v = co_await fut.async_get();`.
  /// Cancelling the awaiting coroutine stops the wait (CancelledError), not the work behind the future.
  task<T> async_get() const { return await_state(state_); }

  friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_ == b.state_; }

  /// The shared state; for cohort's own executors and combinators.
  const std::shared_ptr<detail::FutureState<T>>& shared_state() const noexcept { return state_; }

 private:
  detail::FutureState<T>& checked() const {
    if (!state_) throw InvalidStateError("Future: the future has no state");
    return *state_;
  }
  T value() const {
    state_->rethrow_if_failed();
    return state_->value();
  }
  // A static coroutine holding its own reference: a task from async_get() may outlive this handle.
  static task<T> await_state(std::shared_ptr<detail::FutureState<T>> state) {
    if (!state) throw InvalidStateError("Future.async_get: the future has no state");
    if (!state->done()) co_await detail::async_wait_done(state);
    state->rethrow_if_failed();
    co_return state->value();
  }
  std::exception_ptr exception_of_done() const {
    if (state_->status() == detail::FutureStatus::cancelled) throw CancelledError("the future was cancelled");
    return state_->error();
  }

  std::shared_ptr<detail::FutureState<T>> state_;
};

/// The producing side of a Future (Python: the executor's hold on a Future; std::promise).
/// Destroying a Promise that never set a result fails its futures with BrokenPromise.
template <class T>
class Promise {
 public:
  Promise() : state_(std::make_shared<detail::FutureState<T>>()) {}
  Promise(Promise&& other) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { abandon(); }

  Future<T> get_future() const { return Future<T>(checked_state()); }

  template <class U = T>
    requires(!std::is_void_v<T>)
  void set_value(U&& value) {
    checked_state()->set_value(std::forward<U>(value));
  }
  void set_value()
    requires std::is_void_v<T>
  {
    checked_state()->set_value();
  }
  void set_exception(std::exception_ptr error) { checked_state()->set_exception(std::move(error)); }
  /// Marks the work as started, so cancel() no longer succeeds; false if the future was cancelled first.
  bool set_running_or_notify_cancel() { return checked_state()->set_running_or_notify_cancel(); }

 private:
  const std::shared_ptr<detail::FutureState<T>>& checked_state() const {
    if (!state_) throw InvalidStateError("Promise: moved from");
    return state_;
  }
  void abandon() noexcept {
    if (state_ && !state_->done())
      state_->try_set_exception(std::make_exception_ptr(BrokenPromise("the promise was destroyed without a result")));
  }

  std::shared_ptr<detail::FutureState<T>> state_;
};

}  // namespace cohort

template <class T>
struct std::hash<cohort::Future<T>> {
  std::size_t operator()(const cohort::Future<T>& future) const noexcept {
    return std::hash<const void*>{}(future.shared_state().get());
  }
};
