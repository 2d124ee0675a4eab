// Semaphore and BoundedSemaphore (Python: multiprocessing.Semaphore / BoundedSemaphore): a counter in
// shared memory that acquire decrements, waiting while it is zero, and release increments. Copies share
// the counter; a Semaphore passed as a Process argument reaches the child under every start method.
//
// A semaphore has no owner, so one that a dead process had acquired stays taken (as in Python).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include <cereal/access.hpp>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/shared_mapping.hpp"
#include "cohort/detail/std_lockable.hpp"

namespace cohort {

namespace detail {

struct SemaphoreState {
  std::atomic<std::uint32_t> value{0};  // the futex word
  std::atomic<std::uint32_t> sleepers{0};
  std::uint32_t bound = 0;  // the initial value, for a bounded semaphore
  std::uint32_t bounded = 0;
};

/// What Semaphore and BoundedSemaphore share.
class SemaphoreRef {
 public:
  SemaphoreRef() = default;
  SemaphoreRef(std::int64_t value, bool bounded, const char* what);

  bool acquire(bool block, std::optional<Clock::time_point> deadline);
  void release(std::int64_t n, const char* what);
  std::uint32_t value() const noexcept { return state_->value.load(std::memory_order_relaxed); }

  template <class Archive>
  void save(Archive& archive) const {
    save_mapping(archive, mapping_, "Semaphore");
  }
  template <class Archive>
  void load(Archive& archive) {
    mapping_ = load_mapping(archive, sizeof(SemaphoreState), "Semaphore");
    state_ = static_cast<SemaphoreState*>(mapping_->data());
  }

 private:
  std::shared_ptr<SharedMapping> mapping_;
  SemaphoreState* state_ = nullptr;
};

}  // namespace detail

class Semaphore : public detail::StdLockable<Semaphore> {
 public:
  /// std::invalid_argument if `value` is negative or does not fit in 32 bits.
  explicit Semaphore(std::int64_t value = 1) : ref_(value, false, "Semaphore") {}

  /// Takes one unit, waiting while there is none (block=false: returns at once). false if none came.
  bool acquire(bool block = true) { return ref_.acquire(block, std::nullopt); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return ref_.acquire(block, detail::deadline_after(timeout));
  }
  /// Returns `n` units and wakes as many waiters.
  void release(std::int64_t n = 1) { ref_.release(n, "Semaphore"); }
  /// The units available now (Python: Semaphore.get_value()).
  std::uint32_t get_value() const noexcept { return ref_.value(); }

 protected:
  Semaphore(std::int64_t value, bool bounded, const char* what) : ref_(value, bounded, what) {}

  detail::SemaphoreRef ref_;

 private:
  friend class cereal::access;
  template <class Archive>
  void save(Archive& archive) const {
    archive(ref_);
  }
  template <class Archive>
  void load(Archive& archive) {
    archive(ref_);
  }
};

/// A Semaphore that may never hold more than its initial value: releasing past it throws Error (Python:
/// ValueError, "Semaphore released too many times").
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1) : Semaphore(value, true, "BoundedSemaphore") {}

  void release(std::int64_t n = 1) { ref_.release(n, "BoundedSemaphore"); }
  void unlock() { release(); }
};

}  // namespace cohort
