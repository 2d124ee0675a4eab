// Condition: counted wake-ups granted under the lock, taken by waiters that saw the epoch move.
//
// Invariant (under the lock): the threads inside wait() = unwoken + wakeups. notify(n) moves up to n
// waiters from unwoken to wakeups and advances the epoch; a waiter leaves by taking a wake-up or, when
// its time is up and none is left for it, by leaving unwoken.
#include "cohort/condition.hpp"

#include <algorithm>
#include <new>

#include <fmt/format.h>

#include "cohort/detail/futex.hpp"
#include "cohort/error.hpp"

namespace cohort {
namespace {

bool take_wakeup(std::atomic<std::uint32_t>& wakeups) noexcept {
  auto current = wakeups.load(std::memory_order_acquire);
  while (current != 0) {
    if (wakeups.compare_exchange_weak(current, current - 1, std::memory_order_acq_rel, std::memory_order_acquire))
      return true;
  }
  return false;
}

}  // namespace

Condition::Condition(detail::LockRef lock, bool recursive)
    : mapping_(detail::SharedMapping::create(sizeof(detail::ConditionState), "Condition")),
      state_(new (mapping_->data()) detail::ConditionState),
      lock_(std::move(lock)),
      recursive_(recursive) {}

void Condition::check_held(const char* operation) const {
  if (!lock_.held_by_this_thread())
    throw Error(fmt::format("Condition.{}: the condition's lock is not held by this thread", operation));
}

bool Condition::wait_until(std::optional<detail::Clock::time_point> deadline) {
  check_held("wait");
  const auto started = state_->epoch.load(std::memory_order_acquire);
  ++state_->unwoken;
  const auto depth = lock_.release_all();

  bool woken = false;
  for (;;) {
    const auto epoch = state_->epoch.load(std::memory_order_acquire);
    if (epoch != started && take_wakeup(state_->wakeups)) {
      woken = true;
      break;
    }
    // Sleeps until the next notify: one that came since `epoch` was read makes this return at once.
    if (!detail::futex_wait(state_->epoch, epoch, deadline)) break;
  }

  lock_.restore(depth, what());
  if (!woken) {
    // Out of time; but a notify may have granted this waiter a wake-up meanwhile, which must not be lost.
    if (state_->epoch.load(std::memory_order_acquire) != started && take_wakeup(state_->wakeups))
      woken = true;
    else
      --state_->unwoken;
  }
  return woken;
}

void Condition::notify(int n) {
  check_held("notify");
  if (n <= 0) return;
  const auto granted = std::min(static_cast<std::uint32_t>(n), state_->unwoken);
  if (granted == 0) return;
  state_->unwoken -= granted;
  state_->wakeups.fetch_add(granted, std::memory_order_release);
  state_->epoch.fetch_add(1, std::memory_order_release);
  // Every sleeper wakes: only those that began before this epoch may take a wake-up, and the kernel does
  // not know which they are. The others see a new epoch, find nothing to take and sleep again.
  detail::futex_wake(state_->epoch, INT_MAX);
}

}  // namespace cohort
