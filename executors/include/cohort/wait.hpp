// wait (Python: concurrent.futures.wait): block until some or all futures are done.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <ranges>
#include <vector>

#include "cohort/as_completed.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/future.hpp"

namespace cohort {

enum class ReturnWhen { first_completed, first_exception, all_completed };

/// Python's DoneAndNotDoneFutures: `auto [done, not_done] = cohort::wait(futures);`.
template <class T>
struct DoneAndNotDone {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

namespace detail {
/// Blocks until `when` holds for `states` or the deadline passes.
void wait_for_states(const std::vector<std::shared_ptr<FutureStateBase>>& states,
                     std::optional<Clock::time_point> deadline, ReturnWhen when);

template <class Range>
auto wait_futures(const Range& futures, std::optional<Clock::time_point> deadline, ReturnWhen when) {
  auto unique = unique_futures(futures);
  using F = std::ranges::range_value_t<Range>;
  std::vector<std::shared_ptr<FutureStateBase>> states;
  states.reserve(unique.size());
  for (const auto& future : unique) states.push_back(future.shared_state());
  wait_for_states(states, deadline, when);
  DoneAndNotDone<typename F::value_type> result;
  for (auto& future : unique) (future.shared_state()->done() ? result.done : result.not_done).push_back(std::move(future));
  return result;
}
}  // namespace detail

/// Waits until `when` holds (default: all done), then splits `futures` into done and not done.
template <std::ranges::input_range Range>
auto wait(const Range& futures, ReturnWhen when = ReturnWhen::all_completed) {
  return detail::wait_futures(futures, std::nullopt, when);
}

/// Same, returning when `timeout` passes even if `when` does not hold yet (no TimeoutError, as Python).
template <std::ranges::input_range Range, class Rep, class Period>
auto wait(const Range& futures, std::chrono::duration<Rep, Period> timeout, ReturnWhen when = ReturnWhen::all_completed) {
  return detail::wait_futures(futures, detail::deadline_after(timeout), when);
}

}  // namespace cohort
