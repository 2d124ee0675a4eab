// managed::Barrier (SyncManager's Barrier): `parties` clients meet in a manager's server; each wait()
// returns once all have arrived. A party that times out, or whose client goes away mid-wait, breaks the
// round for the others (BrokenBarrierError) instead of leaving them to wait for it forever.
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>

#include "cohort/base_manager.hpp"
#include "cohort/detail/wait_list.hpp"
#include "cohort/error.hpp"
#include "cohort/managed_methods.hpp"
#include "cohort/task.hpp"

namespace cohort::managed {

class Barrier {
 public:
  static constexpr bool hosted_on_loop = true;

  /// std::invalid_argument if parties is 0. `timeout` (negative: none) is wait()'s default.
  explicit Barrier(std::uint32_t parties, std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1))
      : parties_(parties), timeout_(timeout) {
    if (parties == 0) throw std::invalid_argument("managed Barrier: parties must be 1 or more");
  }

  /// This party's index (0 to parties - 1, the last to arrive gets parties - 1). BrokenBarrierError if
  /// the round is or gets broken, or when the time is up (negative: the barrier's default), which
  /// breaks it for the others too.
  task<std::uint32_t> wait(std::chrono::nanoseconds timeout) {
    if (broken_) throw BrokenBarrierError("managed Barrier: broken (abort() or a timeout); reset() it first");
    const auto round = round_;
    const std::uint32_t index = arrived_++;
    if (arrived_ == parties_) {
      round->passed = true;
      round->waiting.wake_all();
      next_round();
      co_return index;
    }
    const auto deadline = detail::managed_deadline(timeout < std::chrono::nanoseconds::zero() ? timeout_ : timeout);
    std::exception_ptr cancelled;
    try {
      while (!round->passed && !round->broken)
        if (!co_await round->waiting.wait(deadline)) break;
    } catch (...) {
      cancelled = std::current_exception();
    }
    if (round->passed && !cancelled) co_return index;
    if (!round->passed && !round->broken) abort();  // the time is up, or this party's client is gone
    if (cancelled) std::rethrow_exception(cancelled);
    throw BrokenBarrierError("managed Barrier: the round was broken (abort(), reset() or a party's timeout)");
  }

  /// Breaks the barrier: waiters and later callers of wait() get BrokenBarrierError until reset().
  void abort() {
    round_->broken = true;
    round_->waiting.wake_all();
    next_round();
    broken_ = true;
  }
  /// Back to the initial state; whoever waits now gets BrokenBarrierError.
  void reset() {
    abort();
    broken_ = false;
  }
  bool broken() const { return broken_; }
  /// How many parties wait in the current round.
  std::uint32_t n_waiting() const { return arrived_; }
  std::uint32_t parties() const { return parties_; }

 private:
  struct Round {
    bool passed = false;
    bool broken = false;
    detail::WaitList waiting;
  };

  void next_round() {
    round_ = std::make_shared<Round>();
    arrived_ = 0;
  }

  std::uint32_t parties_;
  std::chrono::nanoseconds timeout_;
  std::shared_ptr<Round> round_ = std::make_shared<Round>();
  std::uint32_t arrived_ = 0;
  bool broken_ = false;
};

}  // namespace cohort::managed

template <>
struct cohort::managed_methods<cohort::managed::Barrier> {
  using B = cohort::managed::Barrier;
  static constexpr auto methods =
      std::make_tuple(&B::wait, &B::abort, &B::reset, &B::broken, &B::n_waiting, &B::parties);
  static constexpr std::string_view spelled = "wait, abort, reset, broken, n_waiting, parties";
};

namespace cohort {

template <>
class Proxy<managed::Barrier> : public detail::ProxyBase<managed::Barrier> {
  using B = managed::Barrier;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : ProxyBase(std::move(core)) {}

  /// This party's index; BrokenBarrierError if the round is or gets broken or `timeout` (else the
  /// barrier's default) passes, which breaks it for the others.
  std::uint32_t wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return invoke(&B::wait, timeout.value_or(none));
  }
  void abort() const { invoke(&B::abort); }
  void reset() const { invoke(&B::reset); }
  bool broken() const { return invoke(&B::broken); }
  std::uint32_t n_waiting() const { return invoke(&B::n_waiting); }
  std::uint32_t parties() const { return invoke(&B::parties); }

  task<std::uint32_t> async_wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await ask(&B::wait, timeout.value_or(none));
  }
  task<void> async_abort() const { co_await ask(&B::abort); }
  task<void> async_reset() const { co_await ask(&B::reset); }
  task<bool> async_broken() const { co_return co_await ask(&B::broken); }
  task<std::uint32_t> async_n_waiting() const { co_return co_await ask(&B::n_waiting); }

 private:
  friend class cereal::access;
  Proxy() = default;
  static constexpr std::chrono::nanoseconds none{-1};
};

}  // namespace cohort
