// Conversions from any std::chrono::duration to the steady clock, saturating instead of overflowing so
// that `get(std::chrono::hours::max())` means "practically forever", not a deadline in the past.
#pragma once

#include <chrono>
#include <string_view>

namespace cohort::detail {

using Clock = std::chrono::steady_clock;

template <class Rep, class Period>
constexpr Clock::duration to_clock_duration(std::chrono::duration<Rep, Period> d) noexcept {
  using Wide = std::chrono::duration<long double, Period>;
  constexpr auto limit = std::chrono::duration_cast<Wide>(std::chrono::hours(24 * 365 * 100));
  if (Wide(d) >= limit) return std::chrono::duration_cast<Clock::duration>(std::chrono::hours(24 * 365 * 100));
  if (d <= d.zero()) return Clock::duration::zero();
  return std::chrono::ceil<Clock::duration>(d);
}

template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  return Clock::now() + to_clock_duration(d);
}

/// Throws TimeoutError("<what>: timed out after N ms").
[[noreturn]] void throw_timeout(std::string_view what, Clock::duration waited);

}  // namespace cohort::detail
