// gather (Python: asyncio.gather / TaskGroup): run coroutines concurrently and collect their results.
#pragma once

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "cohort/error.hpp"
#include "cohort/spawn.hpp"
#include "cohort/task.hpp"

namespace cohort {

namespace detail {

/// Waits until every state is done. When one fails, or the awaiting coroutine is cancelled, every task
/// is cancelled (not awaited) and that error is rethrown.
task<void> await_all(std::vector<std::shared_ptr<FutureStateBase>> states,
                     std::vector<std::shared_ptr<TaskControl>> controls);

template <class T>
using gather_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
gather_value_t<T> take_result(FutureState<T>& state) {
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    return state.take();
  }
}

/// What a gather of a vector of tasks shares with its children: where each child runs, its cancellation
/// signal, and how many still run. Each child is co_spawned as it is, its completion handler storing
/// the result in place: no future, control block, wrapping coroutine or done-callback per child.
class GatherJoin : public std::enable_shared_from_this<GatherJoin> {
 public:
  GatherJoin(const Executor& executor, std::size_t count);
  GatherJoin(const GatherJoin&) = delete;
  GatherJoin& operator=(const GatherJoin&) = delete;

  /// True when every child runs on one executor (a Runtime with one thread): then one post starts
  /// them all, and one post cancels them all.
  bool shared_executor() const noexcept { return strands_ == nullptr; }
  const Executor& executor_of(std::size_t i) const noexcept { return strands_ ? strands_[i] : executor_; }
  /// The slot of child i's signal; only touched on child i's executor.
  boost::asio::cancellation_slot slot_of(std::size_t i) noexcept { return signals_[i].slot(); }
  /// Whether the children have been told to stop: one that has not started yet is not started.
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

  /// A child has ended (on its executor); `error` is null when it succeeded.
  void child_done(std::exception_ptr error) noexcept;

  /// Waits until every child has ended or one has failed. Then, or when the awaiting coroutine is
  /// cancelled, the rest are cancelled (not awaited) and the first error is rethrown.
  friend task<void> await_children(std::shared_ptr<GatherJoin> join);

 protected:
  ~GatherJoin();

 private:
  void cancel_children();

  Executor executor_;
  std::unique_ptr<Executor[]> strands_;  // a strand per child on a multi-threaded Runtime
  std::unique_ptr<boost::asio::cancellation_signal[]> signals_;
  std::size_t count_;
  std::atomic<std::size_t> remaining_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopping_{false};
  std::exception_ptr first_error_;  // written once, by the child whose failure set failed_
  std::shared_ptr<FutureState<void>> settled_;
};

task<void> await_children(std::shared_ptr<GatherJoin> join);

template <class T>
class GatherOf final : public GatherJoin {
 public:
  GatherOf(const Executor& executor, std::size_t count)
      : GatherJoin(executor, count), results_(std::make_unique<std::optional<gather_value_t<T>>[]>(count)) {}

  void store(std::size_t i, gather_value_t<T> value) { results_[i].emplace(std::move(value)); }
  gather_value_t<T> take(std::size_t i) { return std::move(*results_[i]); }

 private:
  std::unique_ptr<std::optional<gather_value_t<T>>[]> results_;
};

/// The completion handler of a child whose result is stored in place as co_spawn hands it over.
template <class T>
struct GatherChildDone {
  std::shared_ptr<GatherOf<T>> join;
  std::size_t index;

  void operator()(std::exception_ptr error, T value) {
    if (!error) join->store(index, std::move(value));
    join->child_done(std::move(error));
  }
};

/// The completion handler of a child with nothing to hand over: void, or stored by store_result.
struct GatherChildEnded {
  std::shared_ptr<GatherJoin> join;

  void operator()(std::exception_ptr error) const { join->child_done(std::move(error)); }
};

/// co_spawn hands a failed child a default-constructed T; a T without one is stored by a coroutine.
template <class T>
task<void> store_result(task<T> work, GatherOf<T>* join, std::size_t index) {
  join->store(index, co_await std::move(work));
}

/// Starts child `index` on its executor, unless the gather is already stopping.
template <class T>
void start_child(const std::shared_ptr<GatherOf<T>>& join, std::size_t index, task<T> work) {
  if (join->stopping()) {
    join->child_done(std::make_exception_ptr(CancelledError("gather: cancelled before the task started")));
    return;
  }
  const auto slot = join->slot_of(index);
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(join->executor_of(index), std::move(work),
                          boost::asio::bind_cancellation_slot(slot, GatherChildEnded{join}));
  } else if constexpr (std::is_default_constructible_v<T>) {
    boost::asio::co_spawn(join->executor_of(index), std::move(work),
                          boost::asio::bind_cancellation_slot(slot, GatherChildDone<T>{join, index}));
  } else {
    boost::asio::co_spawn(join->executor_of(index), store_result(std::move(work), join.get(), index),
                          boost::asio::bind_cancellation_slot(slot, GatherChildEnded{join}));
  }
}

}  // namespace detail

/// Runs every task concurrently; returns their results in argument order (std::monostate for void).
/// The first error propagates at once and the other tasks are cancelled.
template <class... Ts>
task<std::tuple<detail::gather_value_t<Ts>...>> gather(task<Ts>... work) {
  const auto executor = co_await boost::asio::this_coro::executor;
  std::tuple<detail::StartedTask<Ts>...> started{detail::start(executor, std::move(work))...};
  co_await std::apply(
      [](auto&... each) {
        return detail::await_all({each.state...}, {each.control...});
      },
      started);
  co_return std::apply(
      [](auto&... each) { return std::tuple<detail::gather_value_t<Ts>...>{detail::take_result(*each.state)...}; },
      started);
}

/// Runs every task of the vector concurrently; returns their results in order.
/// The first error propagates at once and the other tasks are cancelled.
template <class T>
task<std::vector<detail::gather_value_t<T>>> gather(std::vector<task<T>> work) {
  std::vector<detail::gather_value_t<T>> results;
  if (work.empty()) co_return results;
  const std::size_t count = work.size();
  auto join = std::make_shared<detail::GatherOf<T>>(co_await boost::asio::this_coro::executor, count);
  // Started once this coroutine suspends, as asyncio's tasks are; with one post for them all where
  // they share the loop's thread, else one post to each child's strand (where its signal lives).
  if (join->shared_executor()) {
    boost::asio::post(join->executor_of(0), [join, work = std::move(work)]() mutable {
      for (std::size_t i = 0; i < work.size(); ++i) detail::start_child(join, i, std::move(work[i]));
    });
  } else {
    for (std::size_t i = 0; i < count; ++i)
      boost::asio::post(join->executor_of(i), [join, i, child = std::move(work[i])]() mutable {
        detail::start_child(join, i, std::move(child));
      });
  }
  co_await detail::await_children(join);
  results.reserve(count);
  for (std::size_t i = 0; i < count; ++i) results.push_back(join->take(i));
  co_return results;
}

}  // namespace cohort
