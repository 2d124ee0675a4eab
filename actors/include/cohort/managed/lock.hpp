// managed::Lock and managed::RLock (SyncManager's Lock and RLock): locks that live in a manager's
// server, held by one thread of one client. A blocking acquire waits in the server without holding up
// other clients; a client that goes away while it holds a lock lets go of it (with a warning, because
// what the lock guarded may be half-changed), where Python's manager would keep it locked forever.
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "cohort/base_manager.hpp"
#include "cohort/detail/std_lockable.hpp"
#include "cohort/detail/wait_list.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "cohort/managed/caller.hpp"
#include "cohort/managed_methods.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// The lock of a managed Lock, RLock or Condition: held by one caller, once (or, recursive, as many
/// times as it acquired it).
class ManagedLockState {
 public:
  ManagedLockState(bool recursive, const char* what) : recursive_(recursive), what_(what) {}

  task<bool> acquire(managed::Caller caller, bool block, std::chrono::nanoseconds timeout) {
    if (recursive_ && held_by(caller)) {
      ++depth_;
      co_return true;
    }
    const auto deadline = managed_deadline(timeout);
    while (depth_ != 0) {
      if (!block) co_return false;
      if (!co_await waiters_.wait(deadline) && depth_ != 0) co_return false;
    }
    holder_ = caller;
    depth_ = 1;
    co_return true;
  }

  /// Error if `caller` does not hold the lock.
  void release(const managed::Caller& caller) {
    check_held(caller, "release");
    if (--depth_ == 0) waiters_.wake_one();
  }

  /// For Condition.wait, once check_held passed: lets go of every level and returns how many there were.
  std::uint32_t release_all() {
    const auto depth = std::exchange(depth_, 0);
    waiters_.wake_one();
    return depth;
  }
  /// Takes the lock back, with the depth release_all returned.
  task<void> restore(managed::Caller caller, std::uint32_t depth) {
    co_await acquire(caller, true, std::chrono::nanoseconds(-1));
    depth_ = depth;
  }

  /// Held by the caller's thread, whichever of its process's connections the calls came on.
  bool held_by(const managed::Caller& caller) const noexcept { return depth_ != 0 && holder_.thread == caller.thread; }
  bool locked() const noexcept { return depth_ != 0; }
  std::uint32_t depth_of(const managed::Caller& caller) const noexcept { return held_by(caller) ? depth_ : 0; }

  /// Error naming `operation` unless `caller` holds the lock.
  void check_held(const managed::Caller& caller, const char* operation) const {
    if (depth_ == 0) throw Error(fmt::format("managed {}.{}: the lock is not acquired", what_, operation));
    if (!held_by(caller))
      throw Error(fmt::format("managed {}.{}: the lock is held by another thread or client", what_, operation));
  }

  void client_gone(std::uint64_t connection) {
    if (depth_ == 0 || holder_.connection != connection) return;
    log_warning(fmt::format("manager: a client went away holding a managed {}; it is released, and what it "
                            "guarded may be half-changed",
                            what_));
    depth_ = 0;
    waiters_.wake_one();
  }

 private:
  bool recursive_;
  const char* what_;
  managed::Caller holder_;
  std::uint32_t depth_ = 0;
  WaitList waiters_;
};

}  // namespace cohort::detail

namespace cohort::managed {

/// Held by one thread of one client; acquiring it again from that thread blocks, as in Python.
class Lock {
 public:
  static constexpr bool hosted_on_loop = true;

  task<bool> acquire(Caller caller, bool block, std::chrono::nanoseconds timeout) {
    co_return co_await state_.acquire(caller, block, timeout);
  }
  /// Error if `caller` does not hold it.
  void release(Caller caller) { state_.release(caller); }
  bool locked() const { return state_.locked(); }
  void client_gone(std::uint64_t connection) { state_.client_gone(connection); }

 private:
  detail::ManagedLockState state_{false, "Lock"};
};

/// The thread that holds it may acquire it again, and releases it as many times.
class RLock {
 public:
  static constexpr bool hosted_on_loop = true;

  task<bool> acquire(Caller caller, bool block, std::chrono::nanoseconds timeout) {
    co_return co_await state_.acquire(caller, block, timeout);
  }
  void release(Caller caller) { state_.release(caller); }
  bool is_owned(Caller caller) const { return state_.held_by(caller); }
  std::uint32_t depth(Caller caller) const { return state_.depth_of(caller); }
  void client_gone(std::uint64_t connection) { state_.client_gone(connection); }

 private:
  detail::ManagedLockState state_{true, "RLock"};
};

}  // namespace cohort::managed

template <>
struct cohort::managed_methods<cohort::managed::Lock> {
  using L = cohort::managed::Lock;
  static constexpr auto methods = std::make_tuple(&L::acquire, &L::release, &L::locked);
  static constexpr std::string_view spelled = "acquire, release, locked";
};

template <>
struct cohort::managed_methods<cohort::managed::RLock> {
  using L = cohort::managed::RLock;
  static constexpr auto methods = std::make_tuple(&L::acquire, &L::release, &L::is_owned, &L::depth);
  static constexpr std::string_view spelled = "acquire, release, is_owned, depth";
};

namespace cohort {

namespace detail {

/// What the proxies of the managed locks share: acquire (block=false: at once; a timeout: at most that
/// long; false if the lock did not come) and release for the calling thread, each with an async_ twin,
/// and lock / unlock / try_lock for std::lock_guard and std::unique_lock.
template <class L>
class LockProxyMethods : public ProxyBase<L>, public StdLockable<Proxy<L>> {
  using Base = ProxyBase<L>;

 public:
  using Base::Base;

  bool acquire(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return Base::invoke(&L::acquire, managed::Caller::this_thread(), block, timeout.value_or(none));
  }
  /// Error if this thread does not hold the lock.
  void release() const { Base::invoke(&L::release, managed::Caller::this_thread()); }

  task<bool> async_acquire(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await Base::ask(&L::acquire, managed::Caller::this_thread(), block, timeout.value_or(none));
  }
  task<void> async_release() const { co_await Base::ask(&L::release, managed::Caller::this_thread()); }

 protected:
  LockProxyMethods() = default;
  static constexpr std::chrono::nanoseconds none{-1};
};

}  // namespace detail

template <>
class Proxy<managed::Lock> : public detail::LockProxyMethods<managed::Lock> {
  using L = managed::Lock;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : LockProxyMethods(std::move(core)) {}

  /// Whether some thread of some client holds it.
  bool locked() const { return invoke(&L::locked); }
  task<bool> async_locked() const { co_return co_await ask(&L::locked); }

 private:
  friend class cereal::access;
  Proxy() = default;
};

template <>
class Proxy<managed::RLock> : public detail::LockProxyMethods<managed::RLock> {
  using L = managed::RLock;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : LockProxyMethods(std::move(core)) {}

  /// Whether this thread holds it, and how many times.
  bool is_owned() const { return invoke(&L::is_owned, managed::Caller::this_thread()); }
  std::uint32_t depth() const { return invoke(&L::depth, managed::Caller::this_thread()); }
  task<bool> async_is_owned() const { co_return co_await ask(&L::is_owned, managed::Caller::this_thread()); }
  task<std::uint32_t> async_depth() const { co_return co_await ask(&L::depth, managed::Caller::this_thread()); }

 private:
  friend class cereal::access;
  Proxy() = default;
};

}  // namespace cohort
