// The event loop: Runtime, sleep, and the start and cancellation of spawned tasks.
#include "cohort/runtime.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"

namespace cohort {

namespace asio = boost::asio;

namespace {

/// How many threads run the loop of a Runtime's io_context: a service of that context, so that a task
/// started from any executor of it knows whether it needs a strand.
class LoopThreads final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  /// `threads` 0: not known (a context that a Runtime did not make).
  explicit LoopThreads(asio::execution_context& context, std::size_t threads = 0) : service(context), count(threads) {}

  const std::size_t count;

 private:
  void shutdown() override {}
};

/// The executor of the Runtime whose run() this thread is inside; lets spawn() work without one.
thread_local const Executor* running_executor = nullptr;
/// Its io_context, and whether this thread is the only one that runs it: what make_task_control would
/// otherwise ask LoopThreads for under the context's service lock, once per task.
thread_local asio::io_context* running_loop = nullptr;
thread_local bool running_alone = false;

class RunningExecutorScope {
 public:
  RunningExecutorScope(const Executor& executor, asio::io_context& loop, bool alone)
      : previous_(running_executor), previous_loop_(running_loop), previous_alone_(running_alone) {
    running_executor = &executor;
    running_loop = &loop;
    running_alone = alone;
  }
  ~RunningExecutorScope() {
    running_executor = previous_;
    running_loop = previous_loop_;
    running_alone = previous_alone_;
  }
  RunningExecutorScope(const RunningExecutorScope&) = delete;
  RunningExecutorScope& operator=(const RunningExecutorScope&) = delete;

 private:
  const Executor* previous_;
  asio::io_context* previous_loop_;
  bool previous_alone_;
};

}  // namespace

namespace detail {

struct TaskControl {
  explicit TaskControl(Executor executor) : strand(std::move(executor)) {}

  /// A strand of the loop; the loop's executor itself when one thread runs it.
  Executor strand;
  asio::cancellation_signal signal;  // only touched on `strand`
  std::atomic<bool> cancel_requested{false};
};

Executor current_executor() {
  if (running_executor == nullptr)
    throw std::logic_error(
        "cohort::spawn: no event loop runs on this thread; call it from a coroutine started by cohort::run or "
        "Runtime::run, or pass an executor");
  return *running_executor;
}

asio::io_context* current_loop() noexcept { return running_loop; }

bool runs_on_one_thread(asio::io_context& loop) {
  if (&loop == running_loop) return running_alone;
  return asio::has_service<LoopThreads>(loop) && asio::use_service<LoopThreads>(loop).count == 1;
}

Executor task_executor(const Executor& executor, bool& shared) {
  // A task gets a strand of the loop itself, not of the spawning coroutine's strand, so tasks spawned
  // from one coroutine still run in parallel on a multi-threaded Runtime. The strand wraps the
  // io_context's own executor type: small enough to sit inside an Executor, where a strand of an
  // Executor is allocated anew by every copy, prefer() and require() that Asio makes of it (eleven
  // allocations per awaited pool call). A Runtime with one thread needs no strand at all.
  asio::io_context* loop = nullptr;
  if (const auto* plain = executor.target<asio::io_context::executor_type>())
    loop = &plain->context();
  else if (const auto* strand = executor.target<asio::strand<asio::io_context::executor_type>>())
    loop = &strand->get_inner_executor().context();
  shared = loop != nullptr && runs_on_one_thread(*loop);
  if (loop == nullptr) return asio::make_strand(executor);
  if (shared) return loop->get_executor();
  return asio::make_strand(loop->get_executor());
}

std::shared_ptr<TaskControl> make_task_control(const Executor& executor) {
  bool shared = false;
  return std::make_shared<TaskControl>(task_executor(executor, shared));
}

std::shared_ptr<TaskControl> make_task_control_on(Executor strand) {
  return std::make_shared<TaskControl>(std::move(strand));
}

namespace {

/// Runs on the control's executor, where the task is to start.
void launch(const std::shared_ptr<TaskControl>& control, task<void> body, const std::shared_ptr<FutureStateBase>& state,
            std::function<void()> on_exit) {
  if (control->cancel_requested.load(std::memory_order_acquire)) {
    // Cancelled before it started: the body never runs (its frame, never entered, is just freed).
    state->mark_cancelled();
    if (on_exit) on_exit();
    return;
  }
  // The completion handler owns the control: the coroutine's cancellation state points into its
  // signal until the very end of co_spawn's machinery, after the body (and its reference) is gone.
  asio::co_spawn(control->strand, std::move(body),
                 asio::bind_cancellation_slot(control->signal.slot(),
                                              [control, on_exit = std::move(on_exit)](const std::exception_ptr&) {
                                                if (on_exit) on_exit();
                                              }));
}

}  // namespace

void start_task(const std::shared_ptr<TaskControl>& control, task<void> body, std::shared_ptr<FutureStateBase> state,
                std::function<void()> on_exit) {
  // Posted, not dispatched: like asyncio.create_task the task starts once the spawner yields, and on a
  // multi-threaded loop any idle thread may pick it up.
  asio::post(control->strand, [control, body = std::move(body), state = std::move(state),
                               on_exit = std::move(on_exit)]() mutable {
    launch(control, std::move(body), state, std::move(on_exit));
  });
}

void request_cancel(const std::shared_ptr<TaskControl>& control) {
  control->cancel_requested.store(true, std::memory_order_release);
  asio::post(control->strand, [control] { control->signal.emit(asio::cancellation_type::terminal); });
}

void fail_task(FutureStateBase& state, std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError&) {
    state.mark_cancelled();
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::operation_aborted)
      state.mark_cancelled();
    else
      state.try_set_exception(error);
  } catch (...) {
    state.try_set_exception(error);
  }
}

task<void> sleep_for(Clock::duration duration) {
  const auto cancellation = co_await asio::this_coro::cancellation_state;
  if (cancellation.cancelled() != asio::cancellation_type::none) throw CancelledError("sleep: cancelled");
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) throw CancelledError("sleep: cancelled");
}

}  // namespace detail

struct Runtime::Impl {
  Impl(std::size_t n, IdleLoop when_idle)
      : threads(n == 0 ? 1 : n), idle(when_idle), context(static_cast<int>(threads)) {
    asio::make_service<LoopThreads>(context, threads);
  }

  std::size_t threads;
  IdleLoop idle;
  asio::io_context context;
  std::mutex mutex;  // guards the fields below
  bool running = false;
  int stop_requests = 0;
  bool stop_on_signals = true;
  std::shared_ptr<detail::TaskControl> main_control;
};

Runtime::Runtime(std::size_t threads, IdleLoop idle) : impl_(std::make_unique<Impl>(threads, idle)) {}

Runtime::~Runtime() = default;

Executor Runtime::executor() const { return impl_->context.get_executor(); }

asio::io_context& Runtime::context() noexcept { return impl_->context; }

std::size_t Runtime::threads() const noexcept { return impl_->threads; }

void Runtime::stop() {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->running) return;
  if (++impl_->stop_requests == 1)
    detail::request_cancel(impl_->main_control);
  else
    impl_->context.stop();
}

void Runtime::stop_on_signals(bool enabled) noexcept { impl_->stop_on_signals = enabled; }

namespace {

void await_signals(asio::signal_set& signals, Runtime& runtime) {
  signals.async_wait([&signals, &runtime](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    detail::log_warning(signal_number == SIGINT ? "SIGINT received: stopping the event loop"
                                                : "SIGTERM received: stopping the event loop");
    runtime.stop();
    await_signals(signals, runtime);
  });
}

/// io_context::run, except that (IdleLoop::poll_then_sleep) a thread that runs out of ready handlers
/// polls for a moment before it sleeps in epoll: the result of work handed to a pool usually arrives
/// within microseconds, and picking it up by polling saves the wake-up of a sleeping thread, the
/// largest part of such a round trip.
void run_polling(asio::io_context& context, IdleLoop idle) {
  for (;;) {
    context.poll();
    if (context.stopped()) return;
    if (idle == IdleLoop::poll_then_sleep &&
        detail::spin_until([&] { return context.poll_one() > 0 || context.stopped(); }))
      continue;
    context.run_one();
    if (context.stopped()) return;
  }
}

}  // namespace

void Runtime::run_erased(task<void> main) {
  auto& context = impl_->context;
  const Executor executor = context.get_executor();
  auto state = std::make_shared<detail::FutureState<void>>();
  auto control = detail::make_task_control(executor);
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->running) throw std::logic_error("Runtime.run: this runtime is already running");
    impl_->running = true;
    impl_->stop_requests = 0;
    impl_->main_control = control;
  }
  context.restart();
  std::optional<asio::signal_set> signals;
  if (impl_->stop_on_signals) {
    signals.emplace(context, SIGINT, SIGTERM);
    await_signals(*signals, *this);
  }
  detail::start_task(control, detail::task_body(std::move(main), state), state, [&context] { context.stop(); });

  std::mutex error_mutex;
  std::exception_ptr loop_error;
  auto run_loop = [&] {
    RunningExecutorScope scope(executor, context, impl_->threads == 1);
    try {
      run_polling(context, impl_->idle);
    } catch (...) {
      // A handler that threw: stop every thread and report it from run().
      std::lock_guard lock(error_mutex);
      if (!loop_error) loop_error = std::current_exception();
      context.stop();
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(impl_->threads - 1);
  for (std::size_t i = 1; i < impl_->threads; ++i) helpers.emplace_back(run_loop);
  run_loop();
  for (auto& helper : helpers) helper.join();

  if (signals) signals->cancel();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->running = false;
    impl_->main_control.reset();
  }
  if (loop_error) std::rethrow_exception(loop_error);
  if (!state->done()) throw CancelledError("Runtime.run: stopped before the main task finished");
  state->rethrow_if_failed();
}

}  // namespace cohort
