// as_completed (Python: concurrent.futures.as_completed / asyncio.as_completed): the futures in the
// order they finish, by blocking iteration in a thread or by co_await async_next() in a coroutine.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <unordered_set>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/future.hpp"
#include "cohort/task.hpp"

namespace cohort {

namespace detail {

/// Indices of watched futures in the order they finish.
class CompletionQueue : public std::enable_shared_from_this<CompletionQueue> {
 public:
  explicit CompletionQueue(std::size_t total) : unyielded_(total) {}

  /// Reports `state` under `index` when it is done (at once if it already is).
  void watch(FutureStateBase& state, std::size_t index);
  /// The next finished index; nullopt once all were returned. TimeoutError past the deadline.
  std::optional<std::size_t> next(std::optional<Clock::time_point> deadline, Clock::duration timeout);
  task<std::optional<std::size_t>> async_next(std::optional<Clock::time_point> deadline, Clock::duration timeout);

 private:
  void push(std::size_t index);
  std::optional<std::size_t> pop_locked();
  [[noreturn]] void throw_unfinished(Clock::duration timeout);

  std::mutex mutex_;
  std::condition_variable ready_cv_;
  std::deque<std::size_t> ready_;
  std::size_t unyielded_;
  std::shared_ptr<FutureState<void>> waker_;  // set while a coroutine awaits the next index
};

}  // namespace detail

/// The futures given to as_completed, yielded as they finish (duplicates once). A timeout counts from
/// the call to as_completed; reaching it throws TimeoutError.
template <class T>
class AsCompleted {
 public:
  AsCompleted(std::vector<Future<T>> futures, std::optional<detail::Clock::duration> timeout)
      : futures_(std::move(futures)), timeout_(timeout.value_or(detail::Clock::duration::zero())) {
    if (timeout) deadline_ = detail::Clock::now() + *timeout;
    queue_ = std::make_shared<detail::CompletionQueue>(futures_.size());
    for (std::size_t i = 0; i < futures_.size(); ++i)
      queue_->watch(*futures_[i].shared_state(), i);
  }

  /// Blocks for the next finished future; nullopt when all were yielded.
  std::optional<Future<T>> next() {
    if (auto index = queue_->next(deadline_, timeout_)) return futures_[*index];
    return std::nullopt;
  }

  /// Awaits the next finished future without blocking the loop; nullopt when all were yielded.
  task<std::optional<Future<T>>> async_next() {
    auto index = co_await queue_->async_next(deadline_, timeout_);
    if (!index) co_return std::nullopt;
    co_return futures_[*index];
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) { ++*this; }
    Future<T>& operator*() { return *current_; }
    Future<T>* operator->() { return &*current_; }
    iterator& operator++() {
      current_ = owner_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.current_; }

   private:
    AsCompleted* owner_ = nullptr;
    std::optional<Future<T>> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::vector<Future<T>> futures_;
  detail::Clock::duration timeout_;
  std::optional<detail::Clock::time_point> deadline_;
  std::shared_ptr<detail::CompletionQueue> queue_;
};

namespace detail {

template <class Range>
auto unique_futures(const Range& futures) {
  using F = std::ranges::range_value_t<Range>;
  std::vector<F> unique;
  std::unordered_set<F> seen;
  for (const auto& future : futures)
    if (seen.insert(future).second) unique.push_back(future);
  return unique;
}

}  // namespace detail

/// Yields `futures` as they finish, without a time limit.
template <std::ranges::input_range Range>
auto as_completed(const Range& futures) {
  using F = std::ranges::range_value_t<Range>;
  return AsCompleted<typename F::value_type>(detail::unique_futures(futures), std::nullopt);
}

/// Yields `futures` as they finish; TimeoutError if some are unfinished `timeout` after this call.
template <std::ranges::input_range Range, class Rep, class Period>
auto as_completed(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
  using F = std::ranges::range_value_t<Range>;
  return AsCompleted<typename F::value_type>(detail::unique_futures(futures), detail::to_clock_duration(timeout));
}

}  // namespace cohort
