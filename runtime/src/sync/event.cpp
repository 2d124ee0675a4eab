// Event on a futex word that holds the flag and a count of the times it was raised.
#include "cohort/event.hpp"

#include <climits>
#include <new>

#include "cohort/detail/futex.hpp"

namespace cohort {

Event::Event()
    : mapping_(detail::SharedMapping::create(sizeof(detail::EventState), "Event")),
      state_(new (mapping_->data()) detail::EventState) {}

void Event::set() {
  auto& word = state_->word;
  auto current = word.load(std::memory_order_relaxed);
  do {
    if (current & 1u) return;
  } while (
      !word.compare_exchange_weak(current, (current + 2u) | 1u, std::memory_order_seq_cst, std::memory_order_relaxed));
  // Sequentially consistent with the waiter's sleeper count and its re-check of the word in the kernel.
  if (state_->sleepers.load() != 0) detail::futex_wake(word, INT_MAX);
}

void Event::clear() noexcept { state_->word.fetch_and(~1u, std::memory_order_relaxed); }

bool Event::is_set() const noexcept { return (state_->word.load(std::memory_order_acquire) & 1u) != 0; }

bool Event::wait_until(std::optional<detail::Clock::time_point> deadline) {
  auto& word = state_->word;
  const auto seen = word.load(std::memory_order_acquire);
  if (seen & 1u) return true;
  state_->sleepers.fetch_add(1);
  bool happened = false;
  for (;;) {
    const bool in_time = detail::futex_wait(word, seen, deadline);
    // Any change of the word means a set(): clear() alone leaves a cleared word unchanged.
    if (word.load(std::memory_order_acquire) != seen) {
      happened = true;
      break;
    }
    if (!in_time) break;
  }
  state_->sleepers.fetch_sub(1);
  return happened;
}

}  // namespace cohort
