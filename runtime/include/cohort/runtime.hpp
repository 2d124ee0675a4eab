// The event loop (Python: asyncio's loop and asyncio.run): an io_context run by a fixed set of threads.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include "cohort/task.hpp"

namespace boost::asio {
class io_context;
}

namespace cohort {

/// What a loop thread with nothing ready does: poll for a moment before it sleeps (the default: work
/// handed to a pool usually comes back within microseconds, and polling saves the wake-up), or sleep
/// at once (a server whose requests come from other machines' or processes' round trips, where a
/// polling thread would only take the CPU from the clients).
enum class IdleLoop { poll_then_sleep, sleep };

/// An event loop with `threads` threads (the one calling run() plus threads - 1 more). Coroutines it
/// starts run on strands, so each one is never resumed on two threads at once.
class Runtime {
 public:
  explicit Runtime(std::size_t threads = 1, IdleLoop idle = IdleLoop::poll_then_sleep);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// The loop's executor, for spawn(executor, ...) and Asio objects.
  Executor executor() const;
  boost::asio::io_context& context() noexcept;
  std::size_t threads() const noexcept;

  /// Runs `main` to completion and returns its result or rethrows its exception. SIGINT and SIGTERM
  /// (and stop()) cancel `main`; run() then throws CancelledError. Tasks still pending when main ends
  /// stay suspended until the next run() or the Runtime's destruction, which cancels them.
  template <class T>
  T run(task<T> main) {
    if constexpr (std::is_void_v<T>) {
      run_erased(std::move(main));
    } else {
      std::optional<T> result;
      run_erased(store_result(std::move(main), result));
      return std::move(*result);
    }
  }

  /// Cancels the main task of a run() in progress; a second call stops the loop at once. Thread-safe.
  void stop();

  /// Whether run() turns SIGINT and SIGTERM into stop() (it does unless told otherwise; set before
  /// run). A loop that serves in the background of a program (cohort's default runtime, which carries
  /// the actors and proxies made outside any run) says false: the signals keep their own effect on the
  /// program (SIGTERM ends it), instead of stopping a loop that other threads still wait on.
  void stop_on_signals(bool enabled) noexcept;

 private:
  template <class T>
  static task<void> store_result(task<T> main, std::optional<T>& result) {
    result.emplace(co_await std::move(main));
  }
  void run_erased(task<void> main);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Runs `main` on a new single-threaded Runtime (Python: asyncio.run).
template <class T>
T run(task<T> main) {
  Runtime runtime;
  return runtime.run(std::move(main));
}

namespace detail {
/// The executor of the Runtime running on this thread; throws if there is none.
Executor current_executor();
/// The io_context of the Runtime running on this thread, or null.
boost::asio::io_context* current_loop() noexcept;
/// Whether `loop` belongs to a Runtime with a single thread.
bool runs_on_one_thread(boost::asio::io_context& loop);
}  // namespace detail

}  // namespace cohort
