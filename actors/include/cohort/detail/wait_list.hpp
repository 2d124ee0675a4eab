// The waiters of a managed object hosted on a manager's loop (a queue's getters, a lock's acquirers):
// coroutines parked in arrival order until the object wakes them. Everything runs on the server's one
// loop thread, so the list needs no lock; a woken waiter checks its condition again before it goes on.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <list>
#include <memory>
#include <optional>

#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// The deadline of a managed method's `timeout` argument; a negative timeout means none.
inline std::optional<Clock::time_point> managed_deadline(std::chrono::nanoseconds timeout) {
  if (timeout < std::chrono::nanoseconds::zero()) return std::nullopt;
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
}

class WaitList {
 public:
  /// Parks until woken (true) or until the deadline (false). A cancelled wait (its client went away)
  /// throws CancelledError; a wake-up it had been given goes on to the next waiter, so none is lost.
  task<bool> wait(std::optional<Clock::time_point> deadline) {
    auto wake = std::make_shared<FutureState<void>>();
    const auto position = waiters_.insert(waiters_.end(), wake);
    std::exception_ptr error;
    try {
      co_await async_wait_done(wake, deadline);
    } catch (...) {
      error = std::current_exception();
    }
    // Woken and timed out in the same turn counts as woken: the waker has taken it off the list.
    const bool woken = wake->done();
    if (!woken) waiters_.erase(position);
    if (error) {
      if (woken) wake_one();
      std::rethrow_exception(error);
    }
    co_return woken;
  }

  /// Wakes the longest waiting; false if nobody waits.
  bool wake_one() {
    if (waiters_.empty()) return false;
    auto first = std::move(waiters_.front());
    waiters_.pop_front();
    first->try_set_value();
    return true;
  }
  /// Wakes up to `n`.
  void wake(std::size_t n) {
    while (n-- > 0 && wake_one()) {
    }
  }
  void wake_all() { wake(waiters_.size()); }

  std::size_t size() const noexcept { return waiters_.size(); }

 private:
  std::list<std::shared_ptr<FutureState<void>>> waiters_;
};

}  // namespace cohort::detail
