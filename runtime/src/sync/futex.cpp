// Futex system calls. FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, the clock
// steady_clock reads, so a wait that is interrupted and restarted never stretches its deadline.
#include "cohort/detail/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "cohort/error.hpp"

namespace cohort::detail {
namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) && std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::is_same_v<Clock, std::chrono::steady_clock>, "futex deadlines are on CLOCK_MONOTONIC");

auto* address(const std::atomic<std::uint32_t>& word) {
  return const_cast<std::uint32_t*>(reinterpret_cast<const std::uint32_t*>(&word));
}

}  // namespace

bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, std::optional<Clock::time_point> deadline) {
  timespec at{};
  if (deadline) {
    const auto since_epoch = deadline->time_since_epoch();
    if (since_epoch.count() < 0) return false;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    at.tv_sec = static_cast<time_t>(seconds.count());
    at.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
  }
  const long result = ::syscall(SYS_futex, address(word), FUTEX_WAIT_BITSET, expected, deadline ? &at : nullptr, nullptr,
                                FUTEX_BITSET_MATCH_ANY);
  if (result == 0) return true;
  switch (errno) {
    case EAGAIN:  // the word had already changed
    case EINTR:
      return true;
    case ETIMEDOUT:
      return false;
    default:
      throw Error(fmt::format("futex wait failed: {}", std::strerror(errno)));
  }
}

void futex_wake(const std::atomic<std::uint32_t>& word, int count) {
  ::syscall(SYS_futex, address(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

}  // namespace cohort::detail
