// A unit of work in an executor's queue, bound to the future it completes.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "cohort/detail/block_pool.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/mpsc_queue.hpp"
#include "cohort/detail/stored_call.hpp"

namespace cohort::detail {

/// Queued work. Each of the three calls consumes the item: it must not be touched afterwards.
class WorkItem : public MpscNode {
 public:
  /// Runs the work on a worker thread and completes its future; skips work whose future was cancelled.
  virtual void run() noexcept = 0;
  /// Cancels the future of work that will never run (shutdown with cancel_futures).
  virtual void cancel_queued() noexcept = 0;
  /// Fails the future of work that will never run (a broken pool).
  virtual void fail_queued(std::exception_ptr error) noexcept = 0;

 protected:
  ~WorkItem() = default;
};

/// The future's state and the work that completes it in one allocation, from the block pool. The queue's reference is `self_`; the callable is destroyed as soon as it
/// has run, so that captured arguments do not live as long as the future.
template <class R, class Fn>
class TaskState final : public FutureState<R>, public WorkItem {
 public:
  explicit TaskState(Fn fn) : fn_(std::move(fn)) {}

  /// Makes the state and the queue's reference to it; the returned pointer is what the Future holds.
  static std::shared_ptr<TaskState> make(Fn fn) {
    auto state = std::allocate_shared<TaskState>(PoolAllocator<TaskState>{}, std::move(fn));
    state->self_ = state;
    return state;
  }

  void run() noexcept override {
    const auto keep = std::move(self_);
    if (!this->set_running_or_notify_cancel()) return;
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(*fn_);
        fn_.reset();
        this->set_value();
      } else {
        auto result = std::invoke(*fn_);
        fn_.reset();
        this->set_value(std::move(result));
      }
    } catch (...) {
      fn_.reset();
      this->try_set_exception(std::current_exception());
    }
  }
  void cancel_queued() noexcept override {
    const auto keep = std::move(self_);
    fn_.reset();
    this->cancel();
  }
  void fail_queued(std::exception_ptr error) noexcept override {
    const auto keep = std::move(self_);
    fn_.reset();
    this->try_set_exception(std::move(error));
  }

 private:
  std::optional<Fn> fn_;
  std::shared_ptr<TaskState> self_;
};

/// The result type of calling `F` with `Args` stored for the call (see stored_call.hpp), as a Future
/// holds it.
template <class F, class... Args>
using call_result_t = stored_result_t<F, Args...>;

}  // namespace cohort::detail
