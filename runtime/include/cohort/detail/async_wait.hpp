// Suspends a coroutine until a future state is done, without blocking its thread.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// How a wait on a future state ended.
enum WaitResult : int { wait_ready = 0, wait_timed_out = 1, wait_cancelled = 2 };

/// The completion handler Asio gives an operation that a task co_awaits directly.
using DirectWaitHandler = boost::asio::detail::awaitable_async_op_handler<void(int), Executor>;
/// Parks `handler` until `state` is done (wait_ready) or the coroutine is cancelled (wait_cancelled).
void start_direct_wait(DirectWaitHandler handler, std::shared_ptr<FutureStateBase> state);

/// The wait of async_wait_done as an operation for `co_await` in a task: Asio awaits it without a
/// coroutine frame of its own, where async_wait_done costs two. Completes with a WaitResult; a task
/// cancelled before the wait begins gets Asio's operation_aborted (boost::system::system_error) instead.
inline auto async_wait_direct(std::shared_ptr<FutureStateBase> state) {
  return boost::asio::async_initiate<const boost::asio::deferred_t&, void(int)>(
      [](DirectWaitHandler handler, std::shared_ptr<FutureStateBase> waited) {
        start_direct_wait(std::move(handler), std::move(waited));
      },
      boost::asio::deferred, std::move(state));
}

/// Marks a point on a thread of a one-thread loop where no lock is held and the stack is shallow (an
/// actor between handling a message and taking the next): a future completed here resumes the loop's
/// coroutines that wait on it at once, without a post to the loop, so that an ask and its reply make
/// no round through the loop's queue (and its epoll_wait). Anywhere else a completion always posts,
/// as asyncio's call_soon does. The coroutine resumed in place runs without the mark.
class InlineResumeScope {
 public:
  explicit InlineResumeScope(boost::asio::io_context& loop) noexcept;
  ~InlineResumeScope();
  InlineResumeScope(const InlineResumeScope&) = delete;
  InlineResumeScope& operator=(const InlineResumeScope&) = delete;

 private:
  boost::asio::io_context* previous_;
};

/// Resumes the awaiting coroutine on its own executor when `state` is done (true) or the deadline passes
/// (false). Throws CancelledError if the awaiting coroutine is cancelled meanwhile; the state is untouched.
task<bool> async_wait_done(std::shared_ptr<FutureStateBase> state,
                           std::optional<Clock::time_point> deadline = std::nullopt);

}  // namespace cohort::detail
