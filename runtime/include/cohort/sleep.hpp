// sleep (Python: asyncio.sleep): suspends the calling coroutine, never its thread.
#pragma once

#include <chrono>

#include "cohort/detail/clock.hpp"
#include "cohort/task.hpp"

namespace cohort {

namespace detail {
task<void> sleep_for(Clock::duration duration);
}

/// Resumes the coroutine after `duration`; CancelledError if it is cancelled first.
template <class Rep, class Period>
task<void> sleep(std::chrono::duration<Rep, Period> duration) {
  return detail::sleep_for(detail::to_clock_duration(duration));
}

}  // namespace cohort
