// Futex waits and wake-ups on 32-bit words in shared memory. They are process-shared (no
// FUTEX_PRIVATE_FLAG): the words live in mappings that several processes hold, at different addresses.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "cohort/detail/clock.hpp"

namespace cohort::detail {

/// Sleeps while `word` holds `expected`, until woken or `deadline` (nullopt: no deadline). Returns false
/// only when the deadline passed; a true return may be spurious, so callers re-check their condition.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::optional<Clock::time_point> deadline = std::nullopt);

/// Wakes up to `count` sleepers on `word` (INT_MAX: all of them).
void futex_wake(const std::atomic<std::uint32_t>& word, int count);

}  // namespace cohort::detail
