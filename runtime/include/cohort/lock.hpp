// Lock and RLock (Python: multiprocessing.Lock / RLock): mutual exclusion between processes and threads
// alike. The state lives in shared memory; copies of a Lock share it, a forked child inherits it, and a
// Lock passed as a Process argument reaches the child under every start method.
//
// A process that dies while holding a lock does not deadlock the others, as it does in Python: the next
// acquirer gets the lock, and cohort logs a warning, because what the lock protected may be half-changed.
//
// Both are std::Lockable (lock / unlock / try_lock) and TimedLockable, so std::lock_guard, std::unique_lock
// and std::scoped_lock work. A lock is released by the thread that acquired it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

#include <cereal/access.hpp>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/robust_mutex.hpp"
#include "cohort/detail/shared_mapping.hpp"
#include "cohort/detail/std_lockable.hpp"

namespace cohort {

class Condition;
class RLock;

namespace detail {

struct ThreadIdentity {
  std::uint64_t token = 0;
  int pid = 0;
};
/// This thread's identity; zero until first asked for, and again in a child after fork (only the forking
/// thread lives on there, and it must not believe it holds what its parent's thread holds).
inline constinit thread_local ThreadIdentity this_thread_identity{};
const ThreadIdentity& establish_thread_identity() noexcept;

/// Identifies the calling thread among all threads of all processes: a random 64-bit number drawn once
/// per thread and again in a child after fork. Thread ids alone would not do: with pid_max at 32768, the
/// id of a holder that died comes back soon in another thread, which would then think it holds the lock.
inline std::uint64_t this_thread_token() noexcept {
  const auto token = this_thread_identity.token;
  return token != 0 ? token : establish_thread_identity().token;
}
/// getpid(), cached per thread (and refreshed after fork): it is read on every acquire.
inline int this_process_id() noexcept {
  return this_thread_identity.token != 0 ? this_thread_identity.pid : establish_thread_identity().pid;
}

/// The shared part of a Lock or RLock. The holder fills owner and count after it gets the mutex and
/// clears them before it lets go, so `owner == this_thread_token()` tells a thread whether it holds it.
/// Under one cache line, so that a small Value fits beside it and a locked update touches one line.
struct LockState {
  RobustMutex mutex;
  std::atomic<std::uint64_t> owner{0};
  std::atomic<std::int32_t> owner_pid{0};  // for messages about a holder that died
  std::uint32_t count = 0;                 // recursion depth; read and written only by the holder
};
static_assert(sizeof(LockState) <= 64, "a LockState and a small value beside it share one cache line");

/// A reference to a LockState in some shared mapping (its own, or the one of a Value or an Array that
/// keeps its lock beside its data). What Lock, RLock and Condition share.
class LockRef {
 public:
  LockRef() = default;
  LockRef(std::shared_ptr<SharedMapping> mapping, std::size_t offset) noexcept;
  /// A new lock in a mapping of its own. `what` is "Lock" or "RLock", for messages.
  static LockRef create(const char* what);

  // The re-entry of an RLock's holder is inline: Value::get and set do it under every held lock.
  bool acquire(bool recursive, bool block, std::optional<Clock::time_point> deadline, const char* what) {
    if (recursive && held_by_this_thread() && state_->count != std::numeric_limits<std::uint32_t>::max()) {
      ++state_->count;
      return true;
    }
    return acquire_slow(recursive, block, deadline, what);
  }
  void release(bool recursive, const char* what) {
    if (recursive && held_by_this_thread() && state_->count > 1) {
      --state_->count;
      return;
    }
    release_slow(recursive, what);
  }
  bool held_by_this_thread() const noexcept {
    return state_->owner.load(std::memory_order_relaxed) == this_thread_token();
  }
  bool locked() const noexcept { return state_->owner.load(std::memory_order_relaxed) != 0; }
  std::uint32_t depth() const noexcept { return state_->count; }

  /// For Condition.wait: lets go of every level the caller holds and returns how many there were; the
  /// caller must hold the lock (checked by Condition). restore() takes it back with the same depth.
  std::uint32_t release_all() noexcept;
  void restore(std::uint32_t depth, const char* what);

  template <class Archive>
  void save(Archive& archive) const {
    save_mapping(archive, mapping_, "Lock");
    archive(offset_);
  }
  template <class Archive>
  void load(Archive& archive) {
    auto mapping = load_mapping(archive, sizeof(LockState), "Lock");
    std::uint64_t offset = 0;
    archive(offset);
    check_offset(*mapping, offset);
    *this = LockRef(std::move(mapping), static_cast<std::size_t>(offset));
  }

 private:
  static void check_offset(const SharedMapping& mapping, std::uint64_t offset);
  bool acquire_slow(bool recursive, bool block, std::optional<Clock::time_point> deadline, const char* what);
  void release_slow(bool recursive, const char* what);
  RobustMutex::Locked lock_contended(std::optional<Clock::time_point> deadline);
  void take(RobustMutex::Locked how, const char* what);

  std::shared_ptr<SharedMapping> mapping_;
  LockState* state_ = nullptr;
  std::uint64_t offset_ = 0;
};

struct LockFactory;

}  // namespace detail

/// A non-recursive lock (Python: multiprocessing.Lock). Acquiring it again from the thread that holds it
/// blocks, as in Python (until the timeout, if one was given).
class Lock : public detail::StdLockable<Lock> {
 public:
  Lock() : ref_(detail::LockRef::create("Lock")) {}

  /// block=false: returns at once. Without a timeout, a blocking acquire waits as long as it takes.
  bool acquire(bool block = true) { return ref_.acquire(false, block, std::nullopt, "Lock"); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return ref_.acquire(false, block, detail::deadline_after(timeout), "Lock");
  }
  /// Error if the lock is not held by this thread.
  void release() { ref_.release(false, "Lock"); }
  /// Whether some thread holds the lock (Python: Lock.locked()).
  bool locked() const noexcept { return ref_.locked(); }

 private:
  friend class Condition;
  friend class cereal::access;
  template <class Archive>
  void save(Archive& archive) const {
    archive(ref_);
  }
  template <class Archive>
  void load(Archive& archive) {
    archive(ref_);
  }

  detail::LockRef ref_;
};

/// A recursive lock (Python: multiprocessing.RLock): the thread that holds it may acquire it again, and
/// must release it as many times.
class RLock : public detail::StdLockable<RLock> {
 public:
  RLock() : ref_(detail::LockRef::create("RLock")) {}

  bool acquire(bool block = true) { return ref_.acquire(true, block, std::nullopt, "RLock"); }
  template <class Rep, class Period>
  bool acquire(bool block, std::chrono::duration<Rep, Period> timeout) {
    return ref_.acquire(true, block, detail::deadline_after(timeout), "RLock");
  }
  /// Error if this thread does not hold the lock.
  void release() { ref_.release(true, "RLock"); }
  /// Whether this thread holds the lock, and how many times.
  bool is_owned() const noexcept { return ref_.held_by_this_thread(); }
  std::uint32_t depth() const noexcept { return is_owned() ? ref_.depth() : 0; }

 private:
  friend class Condition;
  friend struct detail::LockFactory;
  friend class cereal::access;
  explicit RLock(detail::LockRef ref) noexcept : ref_(std::move(ref)) {}
  template <class Archive>
  void save(Archive& archive) const {
    archive(ref_);
  }
  template <class Archive>
  void load(Archive& archive) {
    archive(ref_);
  }

  detail::LockRef ref_;
};

namespace detail {

/// For objects that keep an RLock inside their own shared memory (Value, Array) or load one.
struct LockFactory {
  static RLock rlock(LockRef ref) noexcept { return RLock(std::move(ref)); }
};

}  // namespace detail
}  // namespace cohort
