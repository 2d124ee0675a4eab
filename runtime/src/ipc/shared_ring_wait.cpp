// SharedRing's waits: spinning, then sleeping on the control block's futex words, and the thread through
// which a coroutine waits for a ring without blocking its event loop.
#include "cohort/detail/shared_ring.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/futex.hpp"
#include "cohort/detail/spin_wait.hpp"
#include "ipc/shared_ring_internal.hpp"

namespace cohort::detail {
namespace {

/// How often a spinning waiter looks at the shared state: every look pulls the line the other side writes
/// into this core's cache, so a consumer that looked every few nanoseconds would make every put wait for
/// that line to come back. Looking every half microsecond or so lets a producer publish several messages
/// between two looks, which the consumer then takes as a batch.
constexpr int pauses_between_checks = 16;

std::atomic<std::uint32_t>& word_of(RingControl& c, SharedRing::Condition condition) {
  switch (condition) {
    case SharedRing::Condition::not_empty:
      return c.not_empty;
    case SharedRing::Condition::not_full:
      return c.not_full;
    case SharedRing::Condition::all_tasks_done:
      break;
  }
  return c.all_done;
}

}  // namespace

bool SharedRing::holds(Condition condition) const noexcept {
  const auto& c = *control_;
  switch (condition) {
    case Condition::not_empty: {
      const auto head = c.head.load(std::memory_order_seq_cst);
      return c.tail.load(std::memory_order_seq_cst) != head;
    }
    case Condition::not_full: {
      if (c.maxsize == 0) return true;
      const auto got = c.get_count.load(std::memory_order_seq_cst);
      return ring_items(c.put_count.load(std::memory_order_seq_cst), got) < c.maxsize;
    }
    case Condition::all_tasks_done: {
      const auto done = c.done_count.load(std::memory_order_seq_cst);
      return done >= c.put_count.load(std::memory_order_seq_cst);
    }
  }
  return true;
}

bool SharedRing::wait(Condition condition, std::optional<Clock::time_point> deadline, const std::atomic<bool>* stop) {
  auto stopped = [stop] { return stop && stop->load(std::memory_order_seq_cst); };
  // A busy peer usually delivers within microseconds: polling that long is cheaper than two system calls.
  const auto now = Clock::now();
  const auto spin_end = deadline ? std::min(now + spin_before_sleep, *deadline) : now + spin_before_sleep;
  for (;;) {
    if (holds(condition) || stopped()) return true;
    for (int i = 0; i < pauses_between_checks; ++i) cpu_relax();
    if (Clock::now() >= spin_end) break;
  }
  auto& word = word_of(*control_, condition);
  for (;;) {
    // The read-modify-write announces the sleeper before the re-check (see the top of shared_ring.cpp).
    const std::uint32_t seen = word.fetch_or(ring_waiting_bit, std::memory_order_seq_cst) | ring_waiting_bit;
    if (holds(condition) || stopped()) return true;
    if (!futex_wait(word, seen, deadline)) return holds(condition);
  }
}

void SharedRing::wake_all(Condition condition) noexcept {
  auto& word = word_of(*control_, condition);
  word.fetch_add(2, std::memory_order_seq_cst);
  futex_wake(word, INT_MAX);
}

namespace {

/// A thread that waits for a condition of a ring and then completes a future. Destroying it stops and joins
/// the thread, so a cancelled coroutine leaves no thread (nor the ring's descriptors) behind.
class RingWaiter {
 public:
  RingWaiter(std::shared_ptr<SharedRing> ring, SharedRing::Condition condition)
      : ring_(std::move(ring)), condition_(condition), done_(std::make_shared<FutureState<void>>()) {
    thread_ = std::thread([this] {
      try {
        ring_->wait(condition_, std::nullopt, &stop_);
        done_->try_set_value();
      } catch (...) {
        done_->try_set_exception(std::current_exception());
      }
    });
  }
  ~RingWaiter() {
    stop_.store(true, std::memory_order_seq_cst);
    if (!done_->done()) ring_->wake_all(condition_);
    thread_.join();
  }
  RingWaiter(const RingWaiter&) = delete;
  RingWaiter& operator=(const RingWaiter&) = delete;

  const std::shared_ptr<FutureState<void>>& done() const noexcept { return done_; }

 private:
  std::shared_ptr<SharedRing> ring_;
  SharedRing::Condition condition_;
  std::shared_ptr<FutureState<void>> done_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

task<void> async_wait_until(std::shared_ptr<SharedRing> ring, SharedRing::Condition condition) {
  if (ring->holds(condition)) co_return;
  RingWaiter waiter(ring, condition);
  co_await async_wait_done(waiter.done());
  waiter.done()->rethrow_if_failed();
}

}  // namespace cohort::detail
