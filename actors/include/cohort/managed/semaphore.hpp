// managed::Semaphore (SyncManager's Semaphore and BoundedSemaphore): a counter of units in a manager's
// server. A blocking acquire waits there without holding up other clients. Units are not owned: any
// client may release one, so a client that goes away returns none (a bounded semaphore's limit still
// catches a release too many).
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "cohort/base_manager.hpp"
#include "cohort/detail/std_lockable.hpp"
#include "cohort/detail/wait_list.hpp"
#include "cohort/error.hpp"
#include "cohort/managed_methods.hpp"
#include "cohort/task.hpp"

namespace cohort::managed {

class Semaphore {
 public:
  static constexpr bool hosted_on_loop = true;

  /// std::invalid_argument if `value` is negative. `bounded`: a release past `value` throws Error.
  explicit Semaphore(std::int64_t value = 1, bool bounded = false)
      : value_(checked(value)), initial_(value_), bounded_(bounded) {}

  task<bool> acquire(bool block, std::chrono::nanoseconds timeout) {
    const auto deadline = detail::managed_deadline(timeout);
    while (value_ == 0) {
      if (!block) co_return false;
      if (!co_await waiters_.wait(deadline) && value_ == 0) co_return false;
    }
    --value_;
    co_return true;
  }
  /// Returns `n` units and wakes as many waiters.
  void release(std::int64_t n) {
    if (n < 1) throw std::invalid_argument(fmt::format("managed Semaphore.release: n must be 1 or more, not {}", n));
    if (bounded_ && value_ + n > initial_)
      throw Error(fmt::format("managed BoundedSemaphore.release: released too many times (the value would be {}, "
                              "above its initial {})",
                              value_ + n, initial_));
    value_ += n;
    waiters_.wake(static_cast<std::size_t>(n));
  }
  std::int64_t get_value() const { return value_; }

 private:
  static std::int64_t checked(std::int64_t value) {
    if (value < 0) throw std::invalid_argument(fmt::format("managed Semaphore: the initial value {} is negative", value));
    return value;
  }

  std::int64_t value_;
  std::int64_t initial_;
  bool bounded_;
  detail::WaitList waiters_;
};

}  // namespace cohort::managed

template <>
struct cohort::managed_methods<cohort::managed::Semaphore> {
  using S = cohort::managed::Semaphore;
  static constexpr auto methods = std::make_tuple(&S::acquire, &S::release, &S::get_value);
  static constexpr std::string_view spelled = "acquire, release, get_value";
};

namespace cohort {

/// A managed semaphore's proxy: acquire (false if no unit came: at once when !block, or within
/// `timeout`), release(n), get_value(), each with an async_ twin, and lock / unlock / try_lock.
template <>
class Proxy<managed::Semaphore> : public detail::ProxyBase<managed::Semaphore>,
                                  public detail::StdLockable<Proxy<managed::Semaphore>> {
  using S = managed::Semaphore;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : ProxyBase(std::move(core)) {}

  bool acquire(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return invoke(&S::acquire, block, timeout.value_or(none));
  }
  void release(std::int64_t n = 1) const { invoke(&S::release, n); }
  std::int64_t get_value() const { return invoke(&S::get_value); }

  task<bool> async_acquire(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await ask(&S::acquire, block, timeout.value_or(none));
  }
  task<void> async_release(std::int64_t n = 1) const { co_await ask(&S::release, n); }
  task<std::int64_t> async_get_value() const { co_return co_await ask(&S::get_value); }

 private:
  friend class cereal::access;
  Proxy() = default;
  static constexpr std::chrono::nanoseconds none{-1};
};

}  // namespace cohort
