// ProcessPoolExecutor (Python: concurrent.futures.ProcessPoolExecutor): run functions in worker processes
// and get their results as the same Futures the thread pool returns, to get() in a thread or co_await in
// a coroutine.
//
// What can run: any free function, static member function or captureless lambda of the program, with
// arguments and a result that cereal can serialize, as long as the workers run this executable (all start
// methods do). Arguments are converted to the function's parameter types before they cross.
//
// Futures are completed by the pool's I/O thread, which also runs their done-callbacks: a callback must
// not wait for another future of the same pool, which only that thread could complete.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/pool_job.hpp"
#include "cohort/detail/process_pool_core.hpp"
#include "cohort/detail/work_item.hpp"
#include "cohort/future.hpp"
#include "cohort/map_result.hpp"
#include "cohort/process.hpp"

namespace cohort {

struct ProcessPoolOptions {
  /// 0: cpu_count().
  std::size_t max_workers = 0;
  /// Empty: get_start_method() when the executor is made.
  std::optional<StartMethod> start_method = std::nullopt;
  /// Runs first in every worker. If it throws, the pool is broken (BrokenProcessPool), as in Python.
  void (*initializer)() = nullptr;
  /// A worker is replaced by a new one after this many tasks (0: never).
  std::size_t max_tasks_per_child = 0;
};

namespace detail {

template <class F>
inline constexpr void check_poolable() {
  static_assert(is_remote_callable_v<F>,
                "a process pool runs functions, static member functions and captureless lambdas: they can be "
                "named in another process; a capturing lambda or std::function cannot");
}

/// fn(args...) encoded for a worker, each argument converted to fn's parameter type.
template <class F, class... Args>
std::string encode_remote_call(const F& fn, const Args&... args) {
  check_poolable<F>();
  return encode_frame(make_converted_call(fn, args...));
}

/// Queues `task` in `core` (a process pool's or a Redis executor's); if the core refuses it, the task is
/// dropped and the error thrown. `waited`: the caller waits for it at once, which a core with
/// submit_waited (ProcessPoolCore) turns into an earlier start.
template <class Core, class R, class Hooks>
Future<R> submit_remote(Core& core, std::shared_ptr<RemoteTask<R, Hooks>> task, bool waited = false) {
  try {
    if constexpr (requires { core.submit_waited(*task); }) {
      waited ? core.submit_waited(*task) : core.submit(*task);
    } else {
      core.submit(*task);
    }
  } catch (...) {
    task->cancel();
    throw;
  }
  return Future<R>(std::shared_ptr<FutureState<R>>(std::move(task)));
}

/// Writes `count` elements from `first` as cereal writes the elements of a std::vector<Input>: numbers
/// in one block when they lie contiguously, anything else one by one.
template <class Input, class It>
void write_elements(BinaryWriter& archive, It first, std::size_t count) {
  if constexpr (std::contiguous_iterator<It> && std::is_arithmetic_v<Input> && !std::is_same_v<Input, bool>) {
    archive(cereal::binary_data(std::to_address(first), count * sizeof(Input)));
  } else {
    for (std::size_t i = 0; i < count; ++i, ++first) {
      const Input& value = *first;  // a std::vector<bool> element is a proxy: read it as the bool it is
      archive(value);
    }
  }
}

/// Cuts `inputs` into chunks of `chunksize` and calls submit(call, count) for each, `call` (a
/// std::string&, which submit may move from) being chunk_fn(function, chunk) encoded for a worker, with
/// `chunk` a std::vector<Input> of the chunk's `count` inputs; a large call whose buffer was taken is
/// encoded in one of `core`'s spare buffers (a pool core, or any with spare_call_buffer). A sized
/// random-access range of Input is encoded straight from its elements; other ranges are gathered into
/// one reused vector per chunk first.
template <class Input, class Core, class ChunkFn, class Fn, class Range, class Submit>
void for_each_chunk_call(Core& core, ChunkFn chunk_fn, const RemoteFunction<Fn>& function, Range&& inputs,
                         std::size_t chunksize, Submit submit) {
  std::string call;
  const auto submit_chunk = [&](auto first, std::size_t count) {
    call.clear();
    const std::size_t expected = 256 + count * sizeof(Input);  // exact for numbers, a guess for others
    if (call.capacity() < expected) call = core.spare_call_buffer(expected);
    if constexpr (std::is_arithmetic_v<Input>) call.reserve(expected);
    encode_call<RemoteFunction<Fn>, std::vector<Input>>(call, chunk_fn, [&](BinaryWriter& archive) {
      archive(function, cereal::make_size_tag(static_cast<cereal::size_type>(count)));
      write_elements<Input>(archive, first, count);
    });
    submit(call, count);
  };
  if constexpr (std::ranges::random_access_range<Range> && std::ranges::sized_range<Range> &&
                std::is_same_v<std::remove_cvref_t<std::ranges::range_reference_t<Range>>, Input>) {
    const auto first = std::ranges::begin(inputs);
    const auto size = static_cast<std::size_t>(std::ranges::size(inputs));
    for (std::size_t start = 0; start < size; start += chunksize)
      submit_chunk(first + static_cast<std::ptrdiff_t>(start), std::min(chunksize, size - start));
  } else {
    std::vector<Input> chunk;
    chunk.reserve(chunksize);
    for (auto&& input : inputs) {
      chunk.push_back(std::forward<decltype(input)>(input));
      if (chunk.size() == chunksize) {
        submit_chunk(chunk.begin(), chunk.size());
        chunk.clear();
      }
    }
    if (!chunk.empty()) submit_chunk(chunk.begin(), chunk.size());
  }
}

/// Executor::map for an executor whose work goes to workers through `core`: fn on every element of
/// `inputs`, `chunksize` elements per task, all queued at once; the results come lazily and in input order.
template <class Core, class F, class Range>
auto map_remote(Core& core, F&& fn, Range&& inputs, MapOptions options) {
  using Fn = std::decay_t<F>;
  check_poolable<Fn>();
  using Input = std::ranges::range_value_t<Range>;
  using R = call_result_t<F, Input>;
  static_assert(!std::is_void_v<R>, "map: fn must return a value; use submit() for void work");
  std::optional<Clock::time_point> deadline;
  if (options.timeout) deadline = Clock::now() + *options.timeout;
  using Chunk = std::vector<R>;
  std::vector<Future<Chunk>> chunks;
  for_each_chunk_call<Input>(core, &map_chunk<Fn, Input>, RemoteFunction<Fn>{Fn(fn)}, std::forward<Range>(inputs),
                             std::max<std::size_t>(options.chunksize, 1), [&](std::string& call, std::size_t) {
                               chunks.push_back(submit_remote(core, RemoteTask<Chunk>::make(std::move(call))));
                             });
  return MapResult<R>(std::move(chunks), deadline);
}

}  // namespace detail

class ProcessPoolExecutor {
 public:
  ProcessPoolExecutor() : ProcessPoolExecutor(ProcessPoolOptions{}) {}
  explicit ProcessPoolExecutor(std::size_t max_workers) : ProcessPoolExecutor(ProcessPoolOptions{.max_workers = max_workers}) {}
  /// Starts the workers. ProcessError if they cannot be started (spawn or forkserver without init).
  explicit ProcessPoolExecutor(ProcessPoolOptions options);
  /// shutdown(true): waits for the submitted work (Python: leaving a `with` block).
  ~ProcessPoolExecutor() = default;
  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;

  /// Schedules fn(args...) in a worker and returns its Future. Throws cohort::Error after shutdown and
  /// BrokenProcessPool once a worker died abruptly.
  template <class F, class... Args>
  Future<detail::call_result_t<F, Args...>> submit(F&& fn, const Args&... args) {
    using R = detail::call_result_t<F, Args...>;
    return detail::submit_remote(core_, detail::RemoteTask<R>::make(detail::encode_remote_call(std::decay_t<F>(fn), args...)));
  }

  /// Calls fn on every element of `inputs`, `chunksize` elements per task; returns the results lazily and
  /// in input order, each chunk's as soon as it is done. All the work is scheduled at once, as in Python.
  template <class F, std::ranges::input_range Range>
  auto map(F&& fn, Range&& inputs, MapOptions options = {}) {
    return detail::map_remote(core_, std::forward<F>(fn), std::forward<Range>(inputs), options);
  }

  /// Stops accepting work. `wait`: block until queued work has run and the workers exited.
  /// `cancel_futures`: cancel the work no worker has started. Safe to call more than once.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    core_.close(cancel_futures);
    if (wait) core_.join();
  }

  std::size_t max_workers() const noexcept { return core_.workers(); }
  StartMethod start_method() const noexcept { return core_.start_method(); }
  /// The pids of the live workers.
  std::vector<int> worker_pids() const { return core_.worker_pids(); }

 private:
  detail::ProcessPoolCore core_;
};

}  // namespace cohort
