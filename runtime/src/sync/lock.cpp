// Lock and RLock over a robust process-shared mutex, and the thread identity that tells a holder apart.
#include "cohort/lock.hpp"

#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include <new>

#include <fmt/format.h>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort::detail {
namespace {

// Only the forking thread lives on in a child: it must not keep the parent thread's identity.
void forget_identity_after_fork() noexcept { this_thread_identity = {}; }

std::uint64_t draw_token() noexcept {
  std::uint64_t token = 0;
  if (::getrandom(&token, sizeof token, 0) == static_cast<ssize_t>(sizeof token) && token != 0) return token;
  // No entropy (a very early boot): the time, pid and thread id, mixed (splitmix64), are unique enough.
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
                    (static_cast<std::uint64_t>(::getpid()) << 32) ^ static_cast<std::uint64_t>(::gettid()) ^
                    (counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x == 0 ? 1 : x;
}

/// How many times a contended acquire reads the lock before it falls back to the mutex's own wait. Reads
/// leave the cache line shared, so the holder's release is not slowed by a waiter's stores; with pauses
/// of some tens of nanoseconds this covers a few microseconds, longer than a critical section in shared
/// memory usually lasts.
constexpr int polls_before_waiting = 128;

}  // namespace

const ThreadIdentity& establish_thread_identity() noexcept {
  // Registered before the first identity exists, so no fork can copy one unnoticed.
  static const bool registered = (::pthread_atfork(nullptr, nullptr, forget_identity_after_fork), true);
  (void)registered;
  this_thread_identity.pid = ::getpid();
  this_thread_identity.token = draw_token();
  return this_thread_identity;
}

LockRef::LockRef(std::shared_ptr<SharedMapping> mapping, std::size_t offset) noexcept
    : mapping_(std::move(mapping)),
      state_(reinterpret_cast<LockState*>(static_cast<char*>(mapping_->data()) + offset)),
      offset_(offset) {}

LockRef LockRef::create(const char* what) {
  auto mapping = SharedMapping::create(sizeof(LockState), what);
  new (mapping->data()) LockState;
  return LockRef(std::move(mapping), 0);
}

void LockRef::check_offset(const SharedMapping& mapping, std::uint64_t offset) {
  if (offset % alignof(LockState) != 0 || offset > mapping.size() || mapping.size() - offset < sizeof(LockState))
    throw SerializationError(
        fmt::format("Lock: received a lock at offset {} of a shared mapping of {} bytes", offset, mapping.size()));
}

bool LockRef::acquire_slow(bool recursive, bool block, std::optional<Clock::time_point> deadline, const char* what) {
  if (recursive && held_by_this_thread())
    throw Error(fmt::format("{}.acquire: acquired too many times", what));  // the inline path took the rest
  auto how = state_->mutex.try_lock();
  if (how == RobustMutex::Locked::no && block) how = lock_contended(deadline);
  if (how == RobustMutex::Locked::no) return false;
  take(how, what);
  return true;
}

RobustMutex::Locked LockRef::lock_contended(std::optional<Clock::time_point> deadline) {
  for (int i = 0; i < polls_before_waiting; ++i) {
    cpu_relax();
    if (state_->owner.load(std::memory_order_relaxed) != 0) continue;
    const auto how = state_->mutex.try_lock();
    if (how != RobustMutex::Locked::no) return how;
  }
  return state_->mutex.lock_until(deadline);
}

void LockRef::take(RobustMutex::Locked how, const char* what) {
  if (how == RobustMutex::Locked::recovered) {
    log_warning(fmt::format(
        "{}.acquire: the holder of this lock (process {}) ended without releasing it; the lock is taken over, "
        "but what it protected may be half-changed",
        what, state_->owner_pid.load(std::memory_order_relaxed)));
  }
  state_->owner.store(this_thread_token(), std::memory_order_relaxed);
  state_->owner_pid.store(this_process_id(), std::memory_order_relaxed);
  state_->count = 1;
}

void LockRef::release_slow(bool recursive, const char* what) {
  const auto owner = state_->owner.load(std::memory_order_relaxed);
  if (owner != this_thread_token()) {
    if (owner == 0) throw Error(fmt::format("{}.release: the lock is not acquired", what));
    throw Error(fmt::format(
        "{}.release: the lock is held by another thread (of process {}); only the thread that acquired it may "
        "release it",
        what, state_->owner_pid.load(std::memory_order_relaxed)));
  }
  if (recursive && --state_->count > 0) return;
  state_->count = 0;
  state_->owner_pid.store(0, std::memory_order_relaxed);
  state_->owner.store(0, std::memory_order_relaxed);  // published by the unlock's release
  state_->mutex.unlock();
}

std::uint32_t LockRef::release_all() noexcept {
  const auto depth = state_->count;
  state_->count = 0;
  state_->owner_pid.store(0, std::memory_order_relaxed);
  state_->owner.store(0, std::memory_order_relaxed);
  state_->mutex.unlock();
  return depth;
}

void LockRef::restore(std::uint32_t depth, const char* what) {
  take(state_->mutex.lock_until(), what);
  state_->count = depth;
}

}  // namespace cohort::detail
