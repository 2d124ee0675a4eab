// managed::Queue<T> (the queue of Python's SyncManager and of the master/worker tutorials): a FIFO queue
// that lives in a manager's server, reached by every client through a Proxy. A blocking get or put waits
// in the server without holding up other clients or other objects: managed types run on the server's
// loop and interleave at their waits, and a wait whose client disconnects ends without taking an item.
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cohort/base_manager.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/error.hpp"
#include "cohort/managed_methods.hpp"
#include "cohort/task.hpp"

namespace cohort::managed {

/// The server's object. Its methods are called by proxies; a negative timeout means none.
template <class T>
class Queue {
 public:
  /// Run on the server's loop, interleaved at their waits (not one call at a time).
  static constexpr bool hosted_on_loop = true;

  explicit Queue(std::size_t maxsize = 0) : maxsize_(maxsize) {}

  task<void> put(T item, bool block, std::chrono::nanoseconds timeout) {
    const auto deadline = deadline_of(timeout);
    while (full()) {
      if (!block) throw Full("managed queue: full");
      if (!co_await wait_turn(putters_, deadline)) throw Full("managed queue: still full when the timeout passed");
    }
    items_.push_back(std::move(item));
    wake_one(getters_);
  }

  task<T> get(bool block, std::chrono::nanoseconds timeout) {
    const auto deadline = deadline_of(timeout);
    while (items_.empty()) {
      if (!block) throw Empty("managed queue: empty");
      if (!co_await wait_turn(getters_, deadline)) throw Empty("managed queue: still empty when the timeout passed");
    }
    T item = std::move(items_.front());
    items_.pop_front();
    wake_one(putters_);
    // Another getter may be waiting for the next item, woken by a put made while this one waited.
    if (!items_.empty()) wake_one(getters_);
    co_return item;
  }

  std::size_t qsize() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  bool full() const { return maxsize_ > 0 && items_.size() >= maxsize_; }
  std::size_t maxsize() const { return maxsize_; }

 private:
  using Waiters = std::list<std::shared_ptr<detail::FutureState<void>>>;

  static std::optional<detail::Clock::time_point> deadline_of(std::chrono::nanoseconds timeout) {
    if (timeout < std::chrono::nanoseconds::zero()) return std::nullopt;
    return detail::Clock::now() + std::chrono::duration_cast<detail::Clock::duration>(timeout);
  }

  /// Waits to be woken: false at the deadline. A cancelled wait (its client is gone) throws.
  static task<bool> wait_turn(Waiters& waiters, std::optional<detail::Clock::time_point> deadline) {
    auto wake = std::make_shared<detail::FutureState<void>>();
    const auto position = waiters.insert(waiters.end(), wake);
    bool woken = false;
    std::exception_ptr error;
    try {
      woken = co_await detail::async_wait_done(wake, deadline);
    } catch (...) {
      error = std::current_exception();
    }
    if (!wake->done()) waiters.erase(position);
    if (error) std::rethrow_exception(error);
    co_return woken;
  }

  static void wake_one(Waiters& waiters) {
    if (waiters.empty()) return;
    auto first = std::move(waiters.front());
    waiters.pop_front();
    first->try_set_value();
  }

  std::size_t maxsize_;
  std::deque<T> items_;
  Waiters getters_;
  Waiters putters_;
};

}  // namespace cohort::managed

template <class T>
struct cohort::managed_methods<cohort::managed::Queue<T>> {
  using Q = cohort::managed::Queue<T>;
  static constexpr auto methods = std::make_tuple(&Q::put, &Q::get, &Q::qsize, &Q::empty, &Q::full, &Q::maxsize);
  static constexpr std::string_view spelled = "put, get, qsize, empty, full, maxsize";
};

namespace cohort {

/// A managed queue's proxy: Python's Queue methods, each blocking one with an async_ twin.
template <class T>
class Proxy<managed::Queue<T>> : public detail::ProxyBase<managed::Queue<T>> {
  using Q = managed::Queue<T>;
  using Base = detail::ProxyBase<Q>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  /// Empty (Full) when the queue stays empty (full) past `timeout`, or at once when !block.
  void put(T item, bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    Base::call(&Q::put, std::move(item), block, timeout.value_or(none)).get();
  }
  T get(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return Base::call(&Q::get, block, timeout.value_or(none)).get();
  }
  void put_nowait(T item) const { put(std::move(item), false); }
  T get_nowait() const { return get(false); }
  std::size_t qsize() const { return Base::call(&Q::qsize).get(); }
  bool empty() const { return Base::call(&Q::empty).get(); }
  bool full() const { return Base::call(&Q::full).get(); }

  task<void> async_put(T item, bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_await Base::ask(&Q::put, std::move(item), block, timeout.value_or(none));
  }
  task<T> async_get(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await Base::ask(&Q::get, block, timeout.value_or(none));
  }
  task<std::size_t> async_qsize() const { co_return co_await Base::ask(&Q::qsize); }

 private:
  friend class cereal::access;
  Proxy() = default;
  static constexpr std::chrono::nanoseconds none{-1};
};

}  // namespace cohort
