// run_in_executor and to_thread (Python: loop.run_in_executor, asyncio.to_thread): await blocking work
// that runs on an executor's threads or processes, without blocking the event loop.
#pragma once

#include <boost/system/system_error.hpp>

#include <utility>

#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/work_item.hpp"
#include "cohort/future.hpp"
#include "cohort/task.hpp"
#include "cohort/thread_pool_executor.hpp"

namespace cohort {

/// Submits fn(args...) to `executor` (anything with submit(), such as ThreadPoolExecutor) and awaits
/// the result. Cancelling the awaiting coroutine cancels the work if it has not started.
template <class Ex, class F, class... Args>
task<detail::call_result_t<F, Args...>> run_in_executor(Ex& executor, F fn, Args... args) {
  auto future = executor.submit(std::move(fn), std::move(args)...);
  auto state = future.shared_state();
  if (!state->done()) {
    int result = detail::wait_cancelled;
    try {
      result = co_await detail::async_wait_direct(state);
    } catch (const boost::system::system_error&) {
      // Asio's refusal to start an operation in a coroutine that was cancelled before: result stays.
    }
    if (result == detail::wait_cancelled) {
      future.cancel();
      throw CancelledError("run_in_executor: cancelled while awaiting the call");
    }
  }
  state->rethrow_if_failed();
  co_return state->take();
}

namespace detail {
/// The executor of to_thread (Python: the loop's default executor), created on first use.
ThreadPoolExecutor& default_thread_pool();
}  // namespace detail

/// Runs fn(args...) on cohort's default thread pool and awaits the result.
template <class F, class... Args>
task<detail::call_result_t<F, Args...>> to_thread(F fn, Args... args) {
  return run_in_executor(detail::default_thread_pool(), std::move(fn), std::move(args)...);
}

}  // namespace cohort
