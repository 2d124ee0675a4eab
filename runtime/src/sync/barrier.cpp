// Barrier: arrivals are counted under a robust mutex; waiters sleep on the round number, which every end
// of a round advances, and then read from the round's bit whether it ended broken.
#include "cohort/barrier.hpp"

#include <climits>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#include "cohort/detail/futex.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort {
namespace {

class Unlock {
 public:
  explicit Unlock(detail::RobustMutex& mutex) noexcept : mutex_(mutex) {}
  ~Unlock() { mutex_.unlock(); }
  Unlock(const Unlock&) = delete;
  Unlock& operator=(const Unlock&) = delete;

 private:
  detail::RobustMutex& mutex_;
};

std::atomic<std::uint64_t>& broken_bits(detail::BarrierState& state, std::uint32_t round) noexcept {
  return state.broken_rounds[(round / 64) % state.broken_rounds.size()];
}

}  // namespace

Barrier::Barrier(std::uint32_t parties, std::optional<std::int64_t> default_timeout_ns) {
  if (parties == 0) throw std::invalid_argument("Barrier: parties must be at least 1");
  mapping_ = detail::SharedMapping::create(sizeof(detail::BarrierState), "Barrier");
  state_ = new (mapping_->data()) detail::BarrierState;
  state_->parties = parties;
  state_->default_timeout_ns = default_timeout_ns.value_or(-1);
}

void Barrier::lock(const char* operation) const {
  if (state_->mutex.lock_until() != detail::RobustMutex::Locked::recovered) return;
  // A party died while it was changing the barrier: the round cannot be trusted, nor finish without it.
  detail::log_warning(fmt::format(
      "Barrier.{}: a process ended while it was changing the barrier; the barrier is now broken", operation));
  state_->broken = 1;
  if (state_->arrived != 0) end_round(true);
}

void Barrier::end_round(bool broken) const noexcept {
  const auto round = state_->round.load(std::memory_order_relaxed);
  const auto bit = std::uint64_t{1} << (round % 64);
  if (broken)
    broken_bits(*state_, round).fetch_or(bit, std::memory_order_relaxed);
  else
    broken_bits(*state_, round).fetch_and(~bit, std::memory_order_relaxed);
  state_->arrived = 0;
  state_->round.fetch_add(1, std::memory_order_release);
  detail::futex_wake(state_->round, INT_MAX);
}

std::uint32_t Barrier::wait() {
  const auto timeout = state_->default_timeout_ns;
  if (timeout < 0) return wait_until(std::nullopt);
  return wait_until(detail::Clock::now() + std::chrono::nanoseconds(timeout));
}

std::uint32_t Barrier::wait_until(std::optional<detail::Clock::time_point> deadline) {
  std::uint32_t index = 0;
  std::uint32_t round = 0;
  {
    lock("wait");
    Unlock unlock(state_->mutex);
    if (state_->broken) throw BrokenBarrierError("Barrier.wait: the barrier is broken");
    index = state_->arrived++;
    round = state_->round.load(std::memory_order_relaxed);
    if (state_->arrived == state_->parties) {
      end_round(false);
      return index;
    }
  }

  bool in_time = true;
  while (state_->round.load(std::memory_order_acquire) == round) {
    if (!in_time) {
      lock("wait");
      Unlock unlock(state_->mutex);
      if (state_->round.load(std::memory_order_relaxed) != round) break;  // the round ended meanwhile
      const auto arrived = state_->arrived;
      state_->broken = 1;
      end_round(true);
      throw BrokenBarrierError(fmt::format(
          "Barrier.wait: timed out with {} of {} parties arrived; the barrier is now broken", arrived, state_->parties));
    }
    in_time = detail::futex_wait(state_->round, round, deadline);
  }
  if (broken_bits(*state_, round).load(std::memory_order_relaxed) & (std::uint64_t{1} << (round % 64)))
    throw BrokenBarrierError("Barrier.wait: the barrier was aborted or reset while this party waited");
  return index;
}

void Barrier::abort() {
  lock("abort");
  Unlock unlock(state_->mutex);
  state_->broken = 1;
  if (state_->arrived != 0) end_round(true);
}

void Barrier::reset() {
  lock("reset");
  Unlock unlock(state_->mutex);
  if (state_->arrived != 0) end_round(true);
  state_->broken = 0;
}

bool Barrier::broken() const {
  lock("broken");
  Unlock unlock(state_->mutex);
  return state_->broken != 0;
}

std::uint32_t Barrier::n_waiting() const {
  lock("n_waiting");
  Unlock unlock(state_->mutex);
  return state_->broken ? 0 : state_->arrived;
}

}  // namespace cohort
