// ThreadPoolExecutor (Python: concurrent.futures.ThreadPoolExecutor): run callables on a pool of
// threads and get their results as Futures that threads get() and coroutines co_await.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/detail/work_item.hpp"
#include "cohort/future.hpp"
#include "cohort/map_result.hpp"

namespace cohort {

struct ThreadPoolOptions {
  /// 0: min(32, cpu_count() + 4), as Python chooses.
  std::size_t max_workers = 0;
  /// Threads are named "<prefix>_<n>" (cut to the 15 characters Linux keeps).
  std::string thread_name_prefix = {};
  /// Runs first in every worker thread; if it throws, the pool is broken (BrokenThreadPool).
  std::function<void()> initializer = {};
};

namespace detail {

/// The queue and the threads: everything of the pool that does not depend on the work's type.
class ThreadPoolCore {
 public:
  explicit ThreadPoolCore(ThreadPoolOptions options);
  ~ThreadPoolCore();
  ThreadPoolCore(const ThreadPoolCore&) = delete;
  ThreadPoolCore& operator=(const ThreadPoolCore&) = delete;

  /// Queues the item; if the pool takes no more work, consumes it with cancel_queued() and throws.
  void submit(WorkItem& item);
  void shutdown(bool wait, bool cancel_futures);
  std::size_t max_workers() const noexcept;

  struct State;  // defined in the .cpp; shared with the worker threads

 private:
  std::shared_ptr<State> state_;
};

}  // namespace detail

class ThreadPoolExecutor {
 public:
  ThreadPoolExecutor() : ThreadPoolExecutor(ThreadPoolOptions{}) {}
  explicit ThreadPoolExecutor(std::size_t max_workers) : ThreadPoolExecutor(ThreadPoolOptions{.max_workers = max_workers}) {}
  explicit ThreadPoolExecutor(ThreadPoolOptions options) : core_(std::move(options)) {}
  /// Waits for all submitted work, as shutdown(true) (Python: leaving a `with` block).
  ~ThreadPoolExecutor() = default;
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  /// Schedules fn(args...) and returns its Future. Arguments are copied or moved into the pool and
  /// passed to fn as std::thread passes them (rvalues; a T& parameter gets the pool's copy).
  /// Throws cohort::Error after shutdown and BrokenThreadPool once an initializer failed.
  template <class F, class... Args>
  Future<detail::call_result_t<F, Args...>> submit(F&& fn, Args&&... args) {
    using Call = detail::stored_call<std::decay_t<F>, std::decay_t<Args>...>;
    // If you get an error on the following line, fn cannot be called with the arguments given.
    static_assert(Call::callable,
                  "ThreadPoolExecutor::submit(fn, args...): fn(args...) is not a valid call: check the number "
                  "and the types of the arguments (each is passed as an rvalue, or as an lvalue to a T& parameter)");
    using R = detail::call_result_t<F, Args...>;
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable -> R {
      if constexpr (Call::callable) return detail::invoke_stored(fn, args...);
    };
    auto state = detail::TaskState<R, decltype(call)>::make(std::move(call));
    core_.submit(*state);
    return Future<R>(std::shared_ptr<detail::FutureState<R>>(std::move(state)));
  }

  /// Calls fn on every element of `inputs`, `chunksize` elements per work item; returns the results
  /// lazily and in input order. All the work is scheduled at once, as in Python.
  template <class F, std::ranges::input_range Range>
  auto map(F fn, Range&& inputs, MapOptions options = {}) {
    using Input = std::ranges::range_value_t<Range>;
    using R = detail::call_result_t<F, Input>;
    static_assert(!std::is_void_v<R>, "ThreadPoolExecutor::map: fn must return a value; use submit() for void work");
    const auto chunksize = options.chunksize == 0 ? std::size_t{1} : options.chunksize;
    std::optional<detail::Clock::time_point> deadline;
    if (options.timeout) deadline = detail::Clock::now() + *options.timeout;
    std::vector<Future<std::vector<R>>> chunks;
    std::vector<Input> chunk;
    auto flush = [&] {
      chunks.push_back(submit(
          [fn](const std::vector<Input>& items) {
            std::vector<R> results;
            results.reserve(items.size());
            for (const auto& item : items) results.push_back(std::invoke(fn, item));
            return results;
          },
          std::move(chunk)));
      chunk = {};
      chunk.reserve(chunksize);
    };
    chunk.reserve(chunksize);
    for (auto&& input : inputs) {
      chunk.push_back(std::forward<decltype(input)>(input));
      if (chunk.size() == chunksize) flush();
    }
    if (!chunk.empty()) flush();
    return MapResult<R>(std::move(chunks), deadline);
  }

  /// Stops accepting work. `wait`: block until queued work has run and the threads ended.
  /// `cancel_futures`: cancel the work that has not started. Safe to call more than once.
  void shutdown(bool wait = true, bool cancel_futures = false) { core_.shutdown(wait, cancel_futures); }

  std::size_t max_workers() const noexcept { return core_.max_workers(); }

 private:
  detail::ThreadPoolCore core_;
};

}  // namespace cohort
