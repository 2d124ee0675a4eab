// ActorExecutor: the executor an actor's coroutine methods run on. It runs handlers on the actor's
// event loop like the loop's own executor and carries the actor with it, so that an ask made from
// inside a method, however many co_awaits deep, knows which actor (and which message) makes it. It
// fits inside an Executor (any_io_executor) without an allocation.
#pragma once

#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <utility>

#include "cohort/detail/actor_core.hpp"

namespace cohort::detail {

class ActorExecutor {
 public:
  explicit ActorExecutor(std::shared_ptr<ActorCore> core) noexcept : core_(std::move(core)) {}

  ActorExecutor(const ActorExecutor& other) noexcept : core_(other.core_), bits_(other.bits_) { work_started(); }
  ActorExecutor(ActorExecutor&& other) noexcept : core_(std::move(other.core_)), bits_(std::exchange(other.bits_, 0)) {}
  ActorExecutor& operator=(const ActorExecutor& other) noexcept {
    if (this != &other) {
      ActorExecutor copy(other);
      swap(copy);
    }
    return *this;
  }
  ActorExecutor& operator=(ActorExecutor&& other) noexcept {
    if (this != &other) {
      ActorExecutor moved(std::move(other));
      swap(moved);
    }
    return *this;
  }
  ~ActorExecutor() { work_finished(); }

  ActorCore& core() const noexcept { return *core_; }

  boost::asio::io_context& query(boost::asio::execution::context_t) const noexcept { return core_->context(); }
  static constexpr boost::asio::execution::blocking_t query(boost::asio::execution::blocking_t) noexcept {
    return boost::asio::execution::blocking.possibly;
  }
  constexpr boost::asio::execution::outstanding_work_t query(boost::asio::execution::outstanding_work_t) const noexcept {
    return (bits_ & tracked_bit) != 0 ? boost::asio::execution::outstanding_work_t(boost::asio::execution::outstanding_work.tracked)
                                      : boost::asio::execution::outstanding_work_t(boost::asio::execution::outstanding_work.untracked);
  }

  ActorExecutor require(boost::asio::execution::blocking_t::never_t) const noexcept { return with(never_bit, true); }
  ActorExecutor require(boost::asio::execution::blocking_t::possibly_t) const noexcept { return with(never_bit, false); }
  ActorExecutor require(boost::asio::execution::outstanding_work_t::tracked_t) const noexcept {
    return with(tracked_bit, true);
  }
  ActorExecutor require(boost::asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return with(tracked_bit, false);
  }

  template <class F>
  void execute(F&& f) const {
    auto loop = core_->context().get_executor();
    if ((bits_ & never_bit) != 0)
      boost::asio::require(loop, boost::asio::execution::blocking.never).execute(std::forward<F>(f));
    else
      loop.execute(std::forward<F>(f));
  }

  friend bool operator==(const ActorExecutor& a, const ActorExecutor& b) noexcept {
    return a.core_ == b.core_ && a.bits_ == b.bits_;
  }
  friend bool operator!=(const ActorExecutor& a, const ActorExecutor& b) noexcept { return !(a == b); }

 private:
  static constexpr unsigned char never_bit = 1;
  static constexpr unsigned char tracked_bit = 2;

  ActorExecutor with(unsigned char bit, bool on) const noexcept {
    ActorExecutor result(core_);
    result.bits_ = on ? (bits_ | bit) : (bits_ & ~bit);
    result.work_started();
    return result;
  }
  void swap(ActorExecutor& other) noexcept {
    std::swap(core_, other.core_);
    std::swap(bits_, other.bits_);
  }
  // A tracked executor counts as work of the loop, as the loop's own tracked executor does: the loop
  // keeps running while a handler that holds one is pending.
  void work_started() const noexcept {
    if (core_ && (bits_ & tracked_bit) != 0) core_->context().get_executor().on_work_started();
  }
  void work_finished() const noexcept {
    if (core_ && (bits_ & tracked_bit) != 0) core_->context().get_executor().on_work_finished();
  }

  std::shared_ptr<ActorCore> core_;
  unsigned char bits_ = 0;
};

}  // namespace cohort::detail
