// Semaphores on a futex word: the count is the word, so a waiter sleeps exactly while it reads zero.
#include "cohort/semaphore.hpp"

#include <climits>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#include "cohort/detail/futex.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

SemaphoreRef::SemaphoreRef(std::int64_t value, bool bounded, const char* what) {
  if (value < 0 || value > INT_MAX)
    throw std::invalid_argument(fmt::format("{}: the initial value must be in [0, {}], not {}", what, INT_MAX, value));
  mapping_ = SharedMapping::create(sizeof(SemaphoreState), what);
  state_ = new (mapping_->data()) SemaphoreState;
  state_->value.store(static_cast<std::uint32_t>(value));
  state_->bound = static_cast<std::uint32_t>(value);
  state_->bounded = bounded ? 1 : 0;
}

bool SemaphoreRef::acquire(bool block, std::optional<Clock::time_point> deadline) {
  auto& value = state_->value;
  for (;;) {
    auto current = value.load(std::memory_order_relaxed);
    while (current != 0) {
      if (value.compare_exchange_weak(current, current - 1, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
    }
    if (!block) return false;
    // The sleeper count is raised before the word is re-checked in the kernel, and release reads it after
    // raising the word (both sequentially consistent): either this waiter sees the new value, or the
    // releaser sees the sleeper and wakes it.
    state_->sleepers.fetch_add(1);
    const bool in_time = futex_wait(value, 0, deadline);
    state_->sleepers.fetch_sub(1);
    if (!in_time) return acquire(false, std::nullopt);
  }
}

void SemaphoreRef::release(std::int64_t n, const char* what) {
  if (n < 1) throw std::invalid_argument(fmt::format("{}.release: n must be at least 1, not {}", what, n));
  auto& value = state_->value;
  auto current = value.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t next = current + static_cast<std::uint64_t>(n);
    if (state_->bounded && next > state_->bound)
      throw Error(fmt::format("{}.release: released too many times (the value would be {}, above its initial {})", what,
                              next, state_->bound));
    if (next > INT_MAX) throw Error(fmt::format("{}.release: the value would exceed {}", what, INT_MAX));
    if (value.compare_exchange_weak(current, static_cast<std::uint32_t>(next), std::memory_order_seq_cst,
                                    std::memory_order_relaxed))
      break;
  }
  if (state_->sleepers.load() != 0) futex_wake(value, n > INT_MAX ? INT_MAX : static_cast<int>(n));
}

}  // namespace cohort::detail
