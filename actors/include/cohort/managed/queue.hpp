// managed::Queue<T> and managed::JoinableQueue<T> (the queues of Python's SyncManager and of the
// master/worker tutorials): FIFO queues that live in a manager's server, reached by every client through
// a Proxy. A blocking get or put waits in the server without holding up other clients or other objects:
// managed types run on the server's loop and interleave at their waits, and a wait whose client
// disconnects ends without taking an item.
#pragma once

#include <cereal/types/chrono.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cohort/base_manager.hpp"
#include "cohort/detail/wait_list.hpp"
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
    const auto deadline = detail::managed_deadline(timeout);
    while (full()) {
      if (!block) throw Full("managed queue: full");
      if (!co_await putters_.wait(deadline)) throw Full("managed queue: still full when the timeout passed");
    }
    items_.push_back(std::move(item));
    ++unfinished_;
    getters_.wake_one();
  }

  task<T> get(bool block, std::chrono::nanoseconds timeout) {
    const auto deadline = detail::managed_deadline(timeout);
    while (items_.empty()) {
      if (!block) throw Empty("managed queue: empty");
      if (!co_await getters_.wait(deadline)) throw Empty("managed queue: still empty when the timeout passed");
    }
    T item = std::move(items_.front());
    items_.pop_front();
    putters_.wake_one();
    // Another getter may be waiting for the next item, woken by a put made while this one waited.
    if (!items_.empty()) getters_.wake_one();
    co_return item;
  }

  std::size_t qsize() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  bool full() const { return maxsize_ > 0 && items_.size() >= maxsize_; }
  std::size_t maxsize() const { return maxsize_; }

 protected:
  /// Items put and not yet marked done by task_done (JoinableQueue's count).
  std::size_t unfinished_ = 0;

 private:
  std::size_t maxsize_;
  std::deque<T> items_;
  detail::WaitList getters_;
  detail::WaitList putters_;
};

/// A Queue that counts the items put and not yet done: a consumer calls task_done() for each item it
/// has handled, and join() waits until every item put has been.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  using Queue<T>::Queue;

  /// std::invalid_argument (Python's ValueError) when called more times than items were put.
  void task_done() {
    if (this->unfinished_ == 0) throw std::invalid_argument("managed queue: task_done() called too many times");
    if (--this->unfinished_ == 0) joiners_.wake_all();
  }
  /// Waits until every item put has been marked done; false if the timeout passed first.
  task<bool> join(std::chrono::nanoseconds timeout) {
    const auto deadline = detail::managed_deadline(timeout);
    while (this->unfinished_ != 0)
      if (!co_await joiners_.wait(deadline)) co_return this->unfinished_ == 0;
    co_return true;
  }
  std::size_t unfinished_tasks() const { return this->unfinished_; }

 private:
  detail::WaitList joiners_;
};

}  // namespace cohort::managed

template <class T>
struct cohort::managed_methods<cohort::managed::Queue<T>> {
  using Q = cohort::managed::Queue<T>;
  static constexpr auto methods = std::make_tuple(&Q::put, &Q::get, &Q::qsize, &Q::empty, &Q::full, &Q::maxsize);
  static constexpr std::string_view spelled = "put, get, qsize, empty, full, maxsize";
};

template <class T>
struct cohort::managed_methods<cohort::managed::JoinableQueue<T>> {
  using Q = cohort::managed::JoinableQueue<T>;
  static constexpr auto methods = std::make_tuple(&Q::put, &Q::get, &Q::qsize, &Q::empty, &Q::full, &Q::maxsize,
                                                  &Q::task_done, &Q::join, &Q::unfinished_tasks);
  static constexpr std::string_view spelled =
      "put, get, qsize, empty, full, maxsize, task_done, join, unfinished_tasks";
};

namespace cohort {

namespace detail {

/// What the proxies of Queue and JoinableQueue share: Python's Queue methods, each blocking one with an
/// async_ twin. Empty (Full) when the queue stays empty (full) past `timeout`, or at once when !block.
template <class Q, class T>
class QueueProxyMethods : public ProxyBase<Q> {
  using Base = ProxyBase<Q>;

 public:
  using Base::Base;

  void put(T item, bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    Base::invoke(&Q::put, std::move(item), block, timeout.value_or(none));
  }
  T get(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return Base::invoke(&Q::get, block, timeout.value_or(none));
  }
  void put_nowait(T item) const { put(std::move(item), false); }
  T get_nowait() const { return get(false); }
  std::size_t qsize() const { return Base::invoke(&Q::qsize); }
  bool empty() const { return Base::invoke(&Q::empty); }
  bool full() const { return Base::invoke(&Q::full); }
  std::size_t maxsize() const { return Base::invoke(&Q::maxsize); }

  task<void> async_put(T item, bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_await Base::ask(&Q::put, std::move(item), block, timeout.value_or(none));
  }
  task<T> async_get(bool block = true, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await Base::ask(&Q::get, block, timeout.value_or(none));
  }
  task<std::size_t> async_qsize() const { co_return co_await Base::ask(&Q::qsize); }
  task<bool> async_empty() const { co_return co_await Base::ask(&Q::empty); }
  task<bool> async_full() const { co_return co_await Base::ask(&Q::full); }

 protected:
  QueueProxyMethods() = default;
  static constexpr std::chrono::nanoseconds none{-1};
};

}  // namespace detail

template <class T>
class Proxy<managed::Queue<T>> : public detail::QueueProxyMethods<managed::Queue<T>, T> {
 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept
      : detail::QueueProxyMethods<managed::Queue<T>, T>(std::move(core)) {}

 private:
  friend class cereal::access;
  Proxy() = default;
};

/// A joinable queue's proxy: the queue's methods, task_done() and join().
template <class T>
class Proxy<managed::JoinableQueue<T>> : public detail::QueueProxyMethods<managed::JoinableQueue<T>, T> {
  using Q = managed::JoinableQueue<T>;
  using Base = detail::QueueProxyMethods<Q, T>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  /// std::invalid_argument when called more times than items were put.
  void task_done() const { Base::invoke(&Q::task_done); }
  /// Waits until every item put has been marked done; false if `timeout` passed first.
  bool join(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    return Base::invoke(&Q::join, timeout.value_or(Base::none));
  }
  std::size_t unfinished_tasks() const { return Base::invoke(&Q::unfinished_tasks); }

  task<void> async_task_done() const { co_await Base::ask(&Q::task_done); }
  task<bool> async_join(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) const {
    co_return co_await Base::ask(&Q::join, timeout.value_or(Base::none));
  }

 private:
  friend class cereal::access;
  Proxy() = default;
};

}  // namespace cohort
