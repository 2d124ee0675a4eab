// A unit of work in an executor's queue, bound to the future it completes.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "cohort/detail/future_state.hpp"

namespace cohort::detail {

class WorkItem {
 public:
  virtual ~WorkItem() = default;
  /// Runs the work on a worker thread and completes its future; skips work whose future was cancelled.
  virtual void run() noexcept = 0;
  /// Cancels the future of work that will never run (shutdown with cancel_futures).
  virtual void cancel() noexcept = 0;
  /// Fails the future of work that will never run (a broken pool).
  virtual void fail(std::exception_ptr error) noexcept = 0;

  WorkItem* next = nullptr;  // intrusive FIFO link, owned by the queue
};

template <class R, class Fn>
class FutureWork final : public WorkItem {
 public:
  FutureWork(std::shared_ptr<FutureState<R>> state, Fn fn) : state_(std::move(state)), fn_(std::move(fn)) {}

  void run() noexcept override {
    if (!state_->set_running_or_notify_cancel()) return;
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(fn_);
        state_->set_value();
      } else {
        state_->set_value(std::invoke(fn_));
      }
    } catch (...) {
      state_->try_set_exception(std::current_exception());
    }
  }
  void cancel() noexcept override { state_->cancel(); }
  void fail(std::exception_ptr error) noexcept override { state_->try_set_exception(std::move(error)); }

 private:
  std::shared_ptr<FutureState<R>> state_;
  Fn fn_;
};

/// The result type of calling `F` with `Args`, as a Future holds it.
template <class F, class... Args>
using call_result_t = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>>;

}  // namespace cohort::detail
