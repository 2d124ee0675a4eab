// wait_for (Python: asyncio.wait_for): await a coroutine with a time limit.
#pragma once

#include <boost/asio/this_coro.hpp>

#include <chrono>
#include <memory>
#include <utility>

#include "cohort/detail/clock.hpp"
#include "cohort/spawn.hpp"
#include "cohort/task.hpp"

namespace cohort {

namespace detail {
/// Waits for `state`. Past `timeout` it cancels the task and waits for it to end: TimeoutError if the
/// cancellation took, otherwise the task's own outcome stands. If the awaiting coroutine is cancelled,
/// cancels the task and throws CancelledError.
task<void> await_within(std::shared_ptr<FutureStateBase> state, std::shared_ptr<TaskControl> control,
                        Clock::duration timeout);
}  // namespace detail

/// Runs `work` and returns its result, or cancels it and throws TimeoutError once `timeout` passes. The
/// task has ended when wait_for returns; if it completed just as the time ran out, its result is returned.
template <class T, class Rep, class Period>
task<T> wait_for(task<T> work, std::chrono::duration<Rep, Period> timeout) {
  const auto executor = co_await boost::asio::this_coro::executor;
  auto started = detail::start(executor, std::move(work));
  co_await detail::await_within(started.state, started.control, detail::to_clock_duration(timeout));
  started.state->rethrow_if_failed();
  co_return started.state->take();
}

}  // namespace cohort
