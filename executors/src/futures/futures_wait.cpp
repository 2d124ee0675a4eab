// Waiting on many futures at once: as_completed's completion queue and wait()'s condition.
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include "cohort/as_completed.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/error.hpp"
#include "cohort/wait.hpp"

namespace cohort::detail {

void CompletionQueue::watch(FutureStateBase& state, std::size_t index) {
  state.on_done([self = shared_from_this(), index] { self->push(index); });
}

void CompletionQueue::push(std::size_t index) {
  std::shared_ptr<FutureState<void>> waker;
  {
    std::lock_guard lock(mutex_);
    ready_.push_back(index);
    waker = std::move(waker_);
    waker_.reset();
  }
  ready_cv_.notify_one();
  if (waker) waker->try_set_value();
}

std::optional<std::size_t> CompletionQueue::pop_locked() {
  const auto index = ready_.front();
  ready_.pop_front();
  --unyielded_;
  return index;
}

void CompletionQueue::throw_unfinished(Clock::duration timeout) {
  std::size_t unfinished = 0;
  {
    std::lock_guard lock(mutex_);
    unfinished = unyielded_ - ready_.size();
  }
  throw TimeoutError(fmt::format("as_completed: {} future(s) unfinished after {} ms", unfinished,
                                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
}

std::optional<std::size_t> CompletionQueue::next(std::optional<Clock::time_point> deadline, Clock::duration timeout) {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!ready_.empty()) return pop_locked();
    if (unyielded_ == 0) return std::nullopt;
    if (!deadline) {
      ready_cv_.wait(lock);
    } else if (ready_cv_.wait_until(lock, *deadline) == std::cv_status::timeout && ready_.empty()) {
      lock.unlock();
      throw_unfinished(timeout);
    }
  }
}

task<std::optional<std::size_t>> CompletionQueue::async_next(std::optional<Clock::time_point> deadline,
                                                             Clock::duration timeout) {
  auto keep_alive = shared_from_this();
  for (;;) {
    std::shared_ptr<FutureState<void>> waker;
    {
      std::lock_guard lock(mutex_);
      if (!ready_.empty()) co_return pop_locked();
      if (unyielded_ == 0) co_return std::nullopt;
      if (!waker_) waker_ = std::make_shared<FutureState<void>>();
      waker = waker_;
    }
    if (!co_await async_wait_done(waker, deadline)) throw_unfinished(timeout);
  }
}

void wait_for_states(const std::vector<std::shared_ptr<FutureStateBase>>& states,
                     std::optional<Clock::time_point> deadline, ReturnWhen when) {
  struct Waiter {
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t finished = 0;
    bool failed = false;
  };
  const auto satisfied = [&](const Waiter& w) {
    switch (when) {
      case ReturnWhen::first_completed: return w.finished > 0;
      case ReturnWhen::first_exception: return w.failed || w.finished == states.size();
      case ReturnWhen::all_completed: return w.finished == states.size();
    }
    return true;
  };
  // Python's FIRST_EXCEPTION counts futures that raised, not cancelled ones.
  const auto raised = [](const FutureStateBase& s) { return s.status() == FutureStatus::finished && s.failed(); };

  auto waiter = std::make_shared<Waiter>();
  std::vector<std::pair<FutureStateBase*, std::uint64_t>> registered;
  registered.reserve(states.size());
  for (const auto& state : states) {
    const auto id = state->on_done([waiter, raised, s = state.get()] {
      {
        std::lock_guard lock(waiter->mutex);
        ++waiter->finished;
        waiter->failed = waiter->failed || raised(*s);
      }
      waiter->cv.notify_all();
    });
    if (id != 0) registered.emplace_back(state.get(), id);
  }
  {
    std::unique_lock lock(waiter->mutex);
    if (deadline)
      waiter->cv.wait_until(lock, *deadline, [&] { return satisfied(*waiter); });
    else
      waiter->cv.wait(lock, [&] { return satisfied(*waiter); });
  }
  for (const auto& [state, id] : registered) state->remove_callback(id);
}

}  // namespace cohort::detail
