// Suspends a coroutine until a future state is done, without blocking its thread.
#pragma once

#include <memory>
#include <optional>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// Resumes the awaiting coroutine on its own executor when `state` is done (true) or the deadline passes
/// (false). Throws CancelledError if the awaiting coroutine is cancelled meanwhile; the state is untouched.
task<bool> async_wait_done(std::shared_ptr<FutureStateBase> state,
                           std::optional<Clock::time_point> deadline = std::nullopt);

}  // namespace cohort::detail
