// Condition (Python: multiprocessing.Condition): a condition variable over a Lock or an RLock, shared
// between processes and threads. A Condition is itself lockable (Python's `with cond:`):
//
//   std::unique_lock hold(cond);
//   cond.wait_for([&] { return queue_size.get() > 0; }, 1s);
//
// notify(n) wakes at most n of the threads that were waiting when it was called; a thread that starts
// waiting afterwards does not take their turn. Copies share the condition; a Condition passed as a
// Process argument reaches the child (with its lock) under every start method.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>

#include <cereal/access.hpp>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/shared_mapping.hpp"
#include "cohort/detail/std_lockable.hpp"
#include "cohort/lock.hpp"

namespace cohort {

namespace detail {

/// Waiters and wake-ups are counted, not queued, so the state has a fixed size and a waiter that dies
/// leaves nothing that could swallow a notify (a wake-up it would have taken goes to another waiter).
struct ConditionState {
  // Counts notify() calls that woke someone; the futex word. A waiter may take a wake-up only if this
  // moved since it began to wait, which keeps late arrivals from taking an earlier waiter's turn.
  std::atomic<std::uint32_t> epoch{0};
  std::atomic<std::uint32_t> wakeups{0};  // granted by notify, not yet taken by a waiter
  std::uint32_t unwoken = 0;              // waiters not yet granted a wake-up; changed under the lock
};

}  // namespace detail

class Condition : public detail::StdLockable<Condition> {
 public:
  /// With a new RLock of its own, as in Python.
  Condition() : Condition(RLock()) {}
  explicit Condition(Lock lock) : Condition(std::move(lock.ref_), false) {}
  explicit Condition(RLock lock) : Condition(std::move(lock.ref_), true) {}

  bool acquire(bool block = true) { return lock_.acquire(recursive_, block, std::nullopt, what()); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return lock_.acquire(recursive_, block, detail::deadline_after(timeout), what());
  }
  void release() { lock_.release(recursive_, what()); }

  /// Releases the lock (every level of an RLock), waits for a notify, and takes the lock back before it
  /// returns. false if the timeout passed first. Error if this thread does not hold the lock.
  bool wait() { return wait_until(std::nullopt); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  /// Waits until `predicate()` is true (checked under the lock first, then after each wake-up) and returns
  /// its last value: false only when the timeout passed with the predicate still false.
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    while (!predicate()) wait();
    return true;
  }
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = detail::deadline_after(timeout);
    bool result = predicate();
    while (!result) {
      if (detail::Clock::now() >= deadline) break;
      wait_until(deadline);
      result = predicate();
    }
    return result;
  }

  /// Wakes up to `n` waiters. Error if this thread does not hold the lock.
  void notify(int n = 1);
  void notify_all() { notify(INT_MAX); }

 private:
  friend class cereal::access;
  Condition(detail::LockRef lock, bool recursive);

  template <class Archive>
  void save(Archive& archive) const {
    detail::save_mapping(archive, mapping_, "Condition");
    archive(lock_, recursive_);
  }
  template <class Archive>
  void load(Archive& archive) {
    mapping_ = detail::load_mapping(archive, sizeof(detail::ConditionState), "Condition");
    state_ = static_cast<detail::ConditionState*>(mapping_->data());
    archive(lock_, recursive_);
  }

  const char* what() const noexcept { return recursive_ ? "RLock" : "Lock"; }
  bool wait_until(std::optional<detail::Clock::time_point> deadline);
  void check_held(const char* operation) const;

  std::shared_ptr<detail::SharedMapping> mapping_;
  detail::ConditionState* state_ = nullptr;
  detail::LockRef lock_;
  bool recursive_ = true;
};

}  // namespace cohort
