// Pool and AsyncResult (Python: multiprocessing.Pool / pool.AsyncResult): a fixed set of worker
// processes for apply, map, imap and starmap, blocking or asynchronous, with callbacks.
//
// Failure handling goes further than Python's: a worker killed by a signal, abort() or exit() fails the
// task it was running with ProcessError naming the cause, the tasks queued behind it go to the other
// workers, and a new worker takes its place; the pool serves on. terminate() stops running work at once
// and cancels what has not finished (get() throws CancelledError) instead of leaving it unfinished.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/as_completed.hpp"
#include "cohort/detail/map_jobs.hpp"
#include "cohort/detail/pool_job.hpp"
#include "cohort/detail/process_pool_core.hpp"
#include "cohort/future.hpp"
#include "cohort/map_result.hpp"
#include "cohort/process.hpp"
#include "cohort/process_pool_executor.hpp"
#include "cohort/task.hpp"

namespace cohort {

struct PoolOptions {
  /// 0: cpu_count().
  std::size_t processes = 0;
  /// Runs first in every worker. If it throws, the pool is broken (BrokenProcessPool) instead of
  /// starting failing workers for ever as Python's does.
  void (*initializer)() = nullptr;
  /// A worker is replaced by a new one after this many tasks (0: never).
  std::size_t max_tasks_per_child = 0;
  /// Empty: get_start_method() when the pool is made.
  std::optional<StartMethod> start_method = std::nullopt;
};

/// The result of an asynchronous pool call (apply_async, map_async, starmap_async).
template <class R>
class AsyncResult {
 public:
  explicit AsyncResult(Future<R> future) : future_(std::move(future)) {}

  /// Waits for the result; rethrows the task's exception (CancelledError if the pool was terminated).
  R get() const { return future_.get(); }
  /// Same; TimeoutError when `timeout` passes first.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const {
    return future_.get(timeout);
  }
  void wait() const { future_.wait(); }
  /// True if the result is ready within `timeout`.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return future_.wait(timeout);
  }
  bool ready() const { return future_.done(); }
  /// Whether the call completed without an exception; std::logic_error if it is not ready yet.
  bool successful() const {
    if (!ready()) throw std::logic_error("AsyncResult.successful: the result is not ready");
    return !future_.shared_state()->failed();
  }
  /// Awaits the result from a coroutine without blocking the loop.
  task<R> async_get() const { return future_.async_get(); }
  /// The future behind the result, for as_completed, wait and co_await.
  const Future<R>& future() const noexcept { return future_; }

 private:
  Future<R> future_;
};

/// The results of imap_unordered: each chunk's results as soon as that chunk is done, chunks in the order
/// they finish. Destroying it cancels the chunks no worker has started.
template <class R>
class UnorderedMapResult {
 public:
  explicit UnorderedMapResult(std::vector<Future<std::vector<R>>> chunks)
      : chunks_(chunks), completed_(std::move(chunks), std::nullopt) {}
  UnorderedMapResult(UnorderedMapResult&&) noexcept = default;
  ~UnorderedMapResult() {
    for (auto& chunk : chunks_) chunk.cancel();
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(UnorderedMapResult* owner) : owner_(owner) { owner_->fill(); }
    R& operator*() const { return owner_->current_[owner_->position_]; }
    R* operator->() const { return &**this; }
    iterator& operator++() {
      ++owner_->position_;
      owner_->fill();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    bool at_end() const noexcept { return owner_->position_ >= owner_->current_.size(); }

    UnorderedMapResult* owner_ = nullptr;
  };

  /// Call once: results are consumed as they are iterated. Iterating rethrows a failed chunk's error.
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  void fill() {
    while (position_ >= current_.size()) {
      auto next = completed_.next();
      if (!next) return;
      auto& state = *next->shared_state();
      state.rethrow_if_failed();
      current_ = state.take();
      position_ = 0;
    }
  }

  std::vector<Future<std::vector<R>>> chunks_;
  AsCompleted<std::vector<R>> completed_;
  std::vector<R> current_;
  std::size_t position_ = 0;
};

class Pool {
 public:
  using Options = PoolOptions;

  /// Starts cpu_count() workers.
  Pool() : Pool(PoolOptions{}) {}
  explicit Pool(std::size_t processes) : Pool(PoolOptions{.processes = processes}) {}
  /// Starts the workers. ProcessError if they cannot be started (spawn or forkserver without init).
  explicit Pool(PoolOptions options);
  /// terminate(), as leaving Python's `with Pool() as p:` block does.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// fn(args...) in a worker, waiting for the result (Python: apply(fn, args)).
  template <class F, class... Args>
  auto apply(F&& fn, const std::tuple<Args...>& args = {}) {
    using R = detail::call_result_t<F, Args...>;
    return detail::submit_remote(core_, detail::RemoteTask<R>::make(call_of(std::forward<F>(fn), args)), true).get();
  }

  /// fn(args...) in a worker. on_result(const R&) or on_error(std::exception_ptr) runs once on the
  /// pool's thread when the task ends, before the result is ready (keep them short: other replies wait
  /// meanwhile, and never wait there for another result of this pool, which that thread would have to
  /// deliver); either may be nullptr. An exception a callback throws is logged.
  template <class F, class... Args, class OnResult = std::nullptr_t, class OnError = std::nullptr_t>
  auto apply_async(F&& fn, const std::tuple<Args...>& args = {}, OnResult on_result = nullptr, OnError on_error = nullptr) {
    using R = detail::call_result_t<F, Args...>;
    return AsyncResult<R>(submit_with_callbacks<R>(call_of(std::forward<F>(fn), args), std::move(on_result), std::move(on_error)));
  }

  /// fn over `inputs`, in chunks of `chunksize` (0: about four chunks per worker, as Python picks),
  /// waiting for all the results, in input order. The first failure is rethrown.
  template <class F, std::ranges::input_range Range>
  auto map(F&& fn, Range&& inputs, std::size_t chunksize = 0) {
    return take_when_done(map_async(std::forward<F>(fn), std::forward<Range>(inputs), chunksize));
  }

  /// map without waiting; on_result gets the whole vector. Callbacks as for apply_async.
  template <class F, std::ranges::input_range Range, class OnResult = std::nullptr_t, class OnError = std::nullptr_t>
  auto map_async(F&& fn, Range&& inputs, std::size_t chunksize = 0, OnResult on_result = nullptr,
                 OnError on_error = nullptr) {
    using Fn = std::decay_t<F>;
    detail::check_poolable<Fn>();
    using Input = std::ranges::range_value_t<Range>;
    return map_all<Input>(&detail::map_chunk<Fn, Input>, Fn(fn), std::forward<Range>(inputs), chunksize,
                          std::move(on_result), std::move(on_error));
  }

  /// fn over `inputs` in chunks of `chunksize`, all scheduled at once; the results come lazily and in
  /// order, each chunk's as soon as it is done.
  template <class F, std::ranges::input_range Range>
  auto imap(F&& fn, Range&& inputs, std::size_t chunksize = 1) {
    return MapResult(map_chunks(std::forward<F>(fn), std::forward<Range>(inputs), chunksize), std::nullopt);
  }

  /// imap with the results in the order the chunks finish.
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& fn, Range&& inputs, std::size_t chunksize = 1) {
    return UnorderedMapResult(map_chunks(std::forward<F>(fn), std::forward<Range>(inputs), chunksize));
  }

  /// fn(args...) for every tuple of `inputs`, in input order.
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& fn, Range&& inputs, std::size_t chunksize = 0) {
    return take_when_done(starmap_async(std::forward<F>(fn), std::forward<Range>(inputs), chunksize));
  }

  template <class F, std::ranges::input_range Range, class OnResult = std::nullptr_t, class OnError = std::nullptr_t>
  auto starmap_async(F&& fn, Range&& inputs, std::size_t chunksize = 0, OnResult on_result = nullptr,
                     OnError on_error = nullptr) {
    using Fn = std::decay_t<F>;
    detail::check_poolable<Fn>();
    using Tuple = std::ranges::range_value_t<Range>;
    return map_all<Tuple>(&detail::starmap_chunk<Fn, Tuple>, Fn(fn), std::forward<Range>(inputs), chunksize,
                          std::move(on_result), std::move(on_error));
  }

  /// No more tasks; the workers exit once the queued ones are done.
  void close() { core_.close(); }
  /// Stops the workers at once (SIGTERM, then SIGKILL); unfinished tasks are cancelled.
  void terminate() { core_.terminate(); }
  /// Waits for the workers to exit; std::logic_error before close() or terminate().
  void join();

  std::size_t processes() const noexcept { return core_.workers(); }
  StartMethod start_method() const noexcept { return core_.start_method(); }
  /// The pids of the live workers.
  std::vector<int> worker_pids() const { return core_.worker_pids(); }

 private:
  /// Python's rule for chunksize 0: the inputs in about four chunks per worker.
  std::size_t chunksize_for(std::size_t count) const noexcept {
    const std::size_t per = 4 * core_.workers();
    return std::max<std::size_t>(1, (count + per - 1) / per);
  }

  /// The call of fn(args...), encoded, each argument converted to fn's parameter type.
  template <class F, class... Args>
  static std::string call_of(F&& fn, const std::tuple<Args...>& args) {
    return std::apply([&](const auto&... values) { return detail::encode_remote_call(std::decay_t<F>(fn), values...); },
                      args);
  }

  template <class R, class OnResult, class OnError>
  Future<R> submit_with_callbacks(std::string call, OnResult on_result, OnError on_error) {
    using Hooks = detail::CallbackHooks<OnResult, OnError>;
    return detail::submit_remote(
        core_, detail::RemoteTask<R, Hooks>::make(std::move(call), Hooks{std::move(on_result), std::move(on_error)}));
  }

  /// The result of a map that nobody else holds: moved out when done instead of copied.
  template <class R>
  static R take_when_done(AsyncResult<R> result) {
    auto& state = *result.future().shared_state();
    state.wait();
    state.rethrow_if_failed();
    return state.take();
  }

  /// The chunk futures of fn over `inputs`, for imap and imap_unordered.
  template <class F, class Range>
  auto map_chunks(F&& fn, Range&& inputs, std::size_t chunksize) {
    using Fn = std::decay_t<F>;
    detail::check_poolable<Fn>();
    using Input = std::ranges::range_value_t<Range>;
    using R = detail::call_result_t<F, Input>;
    std::vector<Future<std::vector<R>>> chunks;
    detail::for_each_chunk_call<Input>(core_, &detail::map_chunk<Fn, Input>, detail::RemoteFunction<Fn>{Fn(fn)},
                                       std::forward<Range>(inputs), std::max<std::size_t>(chunksize, 1),
                                       [&](std::string& call, std::size_t) {
                                         chunks.push_back(submit_with_callbacks<std::vector<R>>(std::move(call), nullptr, nullptr));
                                       });
    return chunks;
  }

  /// chunk_fn(function, chunk) over the chunks of `inputs` (chunksize 0: Python's rule) as one
  /// AsyncResult, for map_async and starmap_async. Inputs without a size are listed first, as Python's
  /// map_async lists an iterable without a length.
  template <class Input, class ChunkFn, class Fn, class Range, class OnResult, class OnError>
  auto map_all(ChunkFn chunk_fn, Fn fn, Range&& inputs, std::size_t chunksize, OnResult on_result, OnError on_error) {
    if constexpr (!std::ranges::sized_range<Range>) {
      std::vector<Input> all;
      for (auto&& input : inputs) all.push_back(std::forward<decltype(input)>(input));
      return map_all<Input>(chunk_fn, fn, std::move(all), chunksize, std::move(on_result), std::move(on_error));
    } else {
      using R = typename std::invoke_result_t<ChunkFn, const detail::RemoteFunction<Fn>&, const std::vector<Input>&>::value_type;
      using Jobs = detail::MapJobs<R, detail::CallbackHooks<OnResult, OnError>>;
      const auto count = static_cast<std::size_t>(std::ranges::size(inputs));
      if (chunksize == 0) chunksize = chunksize_for(count);
      auto result = Jobs::run(core_, count, chunksize, {std::move(on_result), std::move(on_error)}, [&](Jobs& jobs) {
        detail::for_each_chunk_call<Input>(core_, chunk_fn, detail::RemoteFunction<Fn>{fn}, std::forward<Range>(inputs), chunksize,
                                           [&](std::string& call, std::size_t inputs_in_chunk) {
                                             jobs.add(core_, call, inputs_in_chunk);
                                           });
      });
      return AsyncResult<std::vector<R>>(Future<std::vector<R>>(std::move(result)));
    }
  }

  detail::ProcessPoolCore core_;
};

}  // namespace cohort
