// gather (Python: asyncio.gather / TaskGroup): run coroutines concurrently and collect their results.
#pragma once

#include <boost/asio/this_coro.hpp>

#include <memory>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

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
template <class T>
task<std::vector<detail::gather_value_t<T>>> gather(std::vector<task<T>> work) {
  const auto executor = co_await boost::asio::this_coro::executor;
  std::vector<detail::StartedTask<T>> started;
  std::vector<std::shared_ptr<detail::FutureStateBase>> states;
  std::vector<std::shared_ptr<detail::TaskControl>> controls;
  std::vector<detail::TaskStart> starts;
  started.reserve(work.size());
  states.reserve(work.size());
  controls.reserve(work.size());
  starts.reserve(work.size());
  for (auto& each : work) {
    started.push_back(detail::prepare(executor, std::move(each), starts));
    states.push_back(started.back().state);
    controls.push_back(started.back().control);
  }
  detail::start_tasks(std::move(starts));
  co_await detail::await_all(std::move(states), std::move(controls));
  std::vector<detail::gather_value_t<T>> results;
  results.reserve(started.size());
  for (auto& each : started) results.push_back(detail::take_result(*each.state));
  co_return results;
}

}  // namespace cohort
