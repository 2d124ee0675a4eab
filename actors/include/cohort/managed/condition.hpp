// managed::Condition (SyncManager's Condition): a condition variable with an RLock of its own, in a
// manager's server. wait() lets go of the lock, waits for a notify and takes the lock back, all in the
// server, so a notify cannot fall between a client's release and its wait.
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>

#include "cohort/detail/wait_list.hpp"
#include "cohort/managed/lock.hpp"

namespace cohort::managed {

class Condition {
 public:
  static constexpr bool hosted_on_loop = true;

  task<bool> acquire(Caller caller, bool block, std::chrono::nanoseconds timeout) {
    co_return co_await lock_.acquire(caller, block, timeout);
  }
  void release(Caller caller) { lock_.release(caller); }

  /// Error if `caller` does not hold the lock. false if the timeout passed before a notify; the lock is
  /// held again either way.
  task<bool> wait(Caller caller, std::chrono::nanoseconds timeout) {
    lock_.check_held(caller, "wait");
    const auto deadline = detail::managed_deadline(timeout);
    const auto depth = lock_.release_all();
    const bool notified = co_await notified_.wait(deadline);
    co_await lock_.restore(caller, depth);
    co_return notified;
  }
  /// Wakes up to `n` waiters; Error if `caller` does not hold the lock.
  void notify(Caller caller, int n) {
    lock_.check_held(caller, "notify");
    if (n > 0) notified_.wake(static_cast<std::size_t>(n));
  }
  void notify_all(Caller caller) { notify(caller, INT_MAX); }
  void client_gone(std::uint64_t connection) { lock_.client_gone(connection); }

 private:
  detail::ManagedLockState lock_{true, "Condition"};
  detail::WaitList notified_;
};

}  // namespace cohort::managed

template <>
struct cohort::managed_methods<cohort::managed::Condition> {
  using C = cohort::managed::Condition;
  static constexpr auto methods = std::make_tuple(&C::acquire, &C::release, &C::wait, &C::notify, &C::notify_all);
  static constexpr std::string_view spelled = "acquire, release, wait, notify, notify_all";
};

namespace cohort {

/// A managed condition's proxy: the lock's methods, wait, wait_for(predicate), notify and notify_all,
/// each for the calling thread and with an async_ twin.
template <>
class Proxy<managed::Condition> : public detail::LockProxyMethods<managed::Condition> {
  using C = managed::Condition;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : LockProxyMethods(std::move(core)) {}

  /// Releases the lock (this thread must hold it), waits for a notify and takes the lock back; false if
  /// `timeout` passed first.
  bool wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return invoke(&C::wait, managed::Caller::this_thread(), timeout.value_or(none));
  }
  /// Waits until `predicate()` is true (checked under the lock first, then after each wake-up) and
  /// returns its last value: false only when `timeout` passed with it still false.
  template <class Predicate>
  bool wait_for(Predicate predicate, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    const auto deadline = deadline_of(timeout);
    bool result = predicate();
    for (auto left = left_of(deadline); !result && !passed(left); left = left_of(deadline)) {
      wait(left);
      result = predicate();
    }
    return result;
  }
  void notify(int n = 1) const { invoke(&C::notify, managed::Caller::this_thread(), n); }
  void notify_all() const { invoke(&C::notify_all, managed::Caller::this_thread()); }

  task<bool> async_wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await ask(&C::wait, managed::Caller::this_thread(), timeout.value_or(none));
  }
  template <class Predicate>
  task<bool> async_wait_for(Predicate predicate, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    const auto deadline = deadline_of(timeout);
    bool result = predicate();
    for (auto left = left_of(deadline); !result && !passed(left); left = left_of(deadline)) {
      co_await async_wait(left);
      result = predicate();
    }
    co_return result;
  }
  task<void> async_notify(int n = 1) const { co_await ask(&C::notify, managed::Caller::this_thread(), n); }
  task<void> async_notify_all() const { co_await ask(&C::notify_all, managed::Caller::this_thread()); }

 private:
  friend class cereal::access;
  Proxy() = default;

  using Deadline = std::optional<detail::Clock::time_point>;
  using Left = std::optional<std::chrono::nanoseconds>;
  static Deadline deadline_of(const Left& timeout) {
    return timeout ? Deadline(detail::Clock::now() + std::chrono::duration_cast<detail::Clock::duration>(*timeout))
                   : std::nullopt;
  }
  /// The time left to `deadline` (none: no deadline).
  static Left left_of(const Deadline& deadline) {
    return deadline ? Left(std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - detail::Clock::now()))
                    : std::nullopt;
  }
  static bool passed(const Left& left) { return left && *left <= std::chrono::nanoseconds::zero(); }
};

}  // namespace cohort
