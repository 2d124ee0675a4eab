// spawn / Task<T> (Python: asyncio.create_task): start a coroutine concurrently and keep a handle to it.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/future.hpp"
#include "cohort/runtime.hpp"
#include "cohort/task.hpp"

namespace cohort {

namespace detail {

struct TaskControl;

/// Where a task started from `executor` runs: the loop's own executor when a single thread runs the
/// loop (then `shared` is set: that executor serves every such task), else a new strand of the loop.
Executor task_executor(const Executor& executor, bool& shared);
std::shared_ptr<TaskControl> make_task_control(const Executor& executor);
/// A control whose task runs on `strand` itself, an executor made by task_executor (the one a socket
/// accepted for the task is bound to, say).
std::shared_ptr<TaskControl> make_task_control_on(Executor strand);
/// Starts `body` on the control's strand, bound to its cancellation signal; if cancel() came first, the
/// body never runs and `state` ends cancelled. `on_exit` runs once the coroutine has fully finished.
void start_task(const std::shared_ptr<TaskControl>& control, task<void> body,
                std::shared_ptr<FutureStateBase> state, std::function<void()> on_exit = {});
void request_cancel(const std::shared_ptr<TaskControl>& control);
/// Ends `state` with `error`, or as cancelled when `error` is a cancellation (CancelledError, or
/// Asio's operation_aborted from a cancelled operation).
void fail_task(FutureStateBase& state, std::exception_ptr error) noexcept;

/// Ends the state as cancelled if the coroutine frame is destroyed before finishing (its loop was
/// destroyed), so nobody waits forever on it.
struct CancelOnDestroy {
  std::shared_ptr<FutureStateBase> state;
  ~CancelOnDestroy() { state->mark_cancelled(); }
};

template <class T>
task<void> task_body(task<T> work, std::shared_ptr<FutureState<T>> state) {
  CancelOnDestroy guard{state};
  std::exception_ptr error;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(work);
      state->set_value();
    } else {
      state->set_value(co_await std::move(work));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) fail_task(*state, error);
}

template <class T>
struct StartedTask {
  std::shared_ptr<FutureState<T>> state;
  std::shared_ptr<TaskControl> control;
};

template <class T>
StartedTask<T> start(const Executor& executor, task<T> work) {
  auto state = std::make_shared<FutureState<T>>();
  auto control = make_task_control(executor);
  start_task(control, task_body(std::move(work), state), state);
  return {std::move(state), std::move(control)};
}

}  // namespace detail

/// A running coroutine started by spawn(). Dropping the handle does not stop the coroutine.
template <class T>
class Task {
 public:
  Task(Future<T> future, std::shared_ptr<detail::TaskControl> control)
      : future_(std::move(future)), control_(std::move(control)) {}

  /// Awaits the coroutine's result; rethrows its exception, CancelledError if it was cancelled.
  task<T> async_get() const { return future_.async_get(); }
  /// Asks the coroutine to stop at its next suspension point (it sees CancelledError there). Returns
  /// false if it had already finished.
  bool cancel() const {
    if (future_.done()) return false;
    detail::request_cancel(control_);
    return true;
  }
  bool done() const { return future_.done(); }
  bool cancelled() const { return future_.cancelled(); }
  /// The result as a Future, for threads (get()) and for as_completed / wait.
  const Future<T>& future() const noexcept { return future_; }

 private:
  Future<T> future_;
  std::shared_ptr<detail::TaskControl> control_;
};

/// Starts `work` on `executor`'s event loop, concurrently with the caller.
template <class T>
Task<T> spawn(const Executor& executor, task<T> work) {
  auto [state, control] = detail::start(executor, std::move(work));
  return Task<T>(Future<T>(std::move(state)), std::move(control));
}

/// Starts `work` on the event loop running this thread (from inside a coroutine of a Runtime).
template <class T>
Task<T> spawn(task<T> work) {
  return spawn(detail::current_executor(), std::move(work));
}

}  // namespace cohort
