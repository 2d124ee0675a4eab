// managed::Event (SyncManager's Event): a flag in a manager's server that clients set, clear and wait
// for; a wait does not hold up other clients.
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include "cohort/base_manager.hpp"
#include "cohort/detail/wait_list.hpp"
#include "cohort/managed_methods.hpp"
#include "cohort/task.hpp"

namespace cohort::managed {

class Event {
 public:
  static constexpr bool hosted_on_loop = true;

  /// Sets the flag and wakes every waiter.
  void set() {
    flag_ = true;
    waiters_.wake_all();
  }
  void clear() { flag_ = false; }
  bool is_set() const { return flag_; }
  /// Waits until the flag is set; returns the flag (false: the timeout passed first).
  task<bool> wait(std::chrono::nanoseconds timeout) {
    const auto deadline = detail::managed_deadline(timeout);
    while (!flag_)
      if (!co_await waiters_.wait(deadline)) break;
    co_return flag_;
  }

 private:
  bool flag_ = false;
  detail::WaitList waiters_;
};

}  // namespace cohort::managed

template <>
struct cohort::managed_methods<cohort::managed::Event> {
  using E = cohort::managed::Event;
  static constexpr auto methods = std::make_tuple(&E::set, &E::clear, &E::is_set, &E::wait);
  static constexpr std::string_view spelled = "set, clear, is_set, wait";
};

namespace cohort {

template <>
class Proxy<managed::Event> : public detail::ProxyBase<managed::Event> {
  using E = managed::Event;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : ProxyBase(std::move(core)) {}

  void set() const { invoke(&E::set); }
  void clear() const { invoke(&E::clear); }
  bool is_set() const { return invoke(&E::is_set); }
  /// Waits until the flag is set: true at once if it is; false if `timeout` passed first.
  bool wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return invoke(&E::wait, timeout.value_or(none));
  }

  task<void> async_set() const { co_await ask(&E::set); }
  task<void> async_clear() const { co_await ask(&E::clear); }
  task<bool> async_is_set() const { co_return co_await ask(&E::is_set); }
  task<bool> async_wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await ask(&E::wait, timeout.value_or(none));
  }

 private:
  friend class cereal::access;
  Proxy() = default;
  static constexpr std::chrono::nanoseconds none{-1};
};

}  // namespace cohort
