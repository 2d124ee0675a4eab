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

/// The executor of the Runtime whose run() this thread is inside; lets spawn() work without one.
thread_local const Executor* running_executor = nullptr;

class RunningExecutorScope {
 public:
  explicit RunningExecutorScope(const Executor& executor) : previous_(running_executor) { running_executor = &executor; }
  ~RunningExecutorScope() { running_executor = previous_; }
  RunningExecutorScope(const RunningExecutorScope&) = delete;
  RunningExecutorScope& operator=(const RunningExecutorScope&) = delete;

 private:
  const Executor* previous_;
};

}  // namespace

namespace detail {

struct TaskControl {
  explicit TaskControl(Executor executor) : strand(std::move(executor)) {}

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

std::shared_ptr<TaskControl> make_task_control(const Executor& executor) {
  // A task gets a strand of the loop itself, not of the spawning coroutine's strand, so tasks spawned
  // from one coroutine still run in parallel on a multi-threaded Runtime.
  if (running_executor != nullptr && &asio::query(executor, asio::execution::context) ==
                                         &asio::query(*running_executor, asio::execution::context))
    return std::make_shared<TaskControl>(asio::make_strand(*running_executor));
  return std::make_shared<TaskControl>(asio::make_strand(executor));
}

namespace {

task<void> guarded_body(std::shared_ptr<TaskControl> control, task<void> body, std::shared_ptr<FutureStateBase> state) {
  if (control->cancel_requested.load(std::memory_order_acquire)) {
    state->mark_cancelled();
    co_return;
  }
  co_await std::move(body);
}

}  // namespace

void start_task(const std::shared_ptr<TaskControl>& control, task<void> body, std::shared_ptr<FutureStateBase> state,
                std::function<void()> on_exit) {
  // Posted, not dispatched: like asyncio.create_task the task starts once the spawner yields, and on a
  // multi-threaded loop any idle thread may pick it up.
  asio::post(control->strand, [control, body = guarded_body(control, std::move(body), std::move(state)),
                               on_exit = std::move(on_exit)]() mutable {
    // The completion handler owns the control: the coroutine's cancellation state points into its
    // signal until the very end of co_spawn's machinery, after the body (and its reference) is gone.
    asio::co_spawn(control->strand, std::move(body),
                   asio::bind_cancellation_slot(control->signal.slot(),
                                                [control, on_exit = std::move(on_exit)](const std::exception_ptr&) {
                                                  if (on_exit) on_exit();
                                                }));
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
  explicit Impl(std::size_t n) : threads(n == 0 ? 1 : n), context(static_cast<int>(threads)) {}

  std::size_t threads;
  asio::io_context context;
  std::mutex mutex;  // guards the fields below
  bool running = false;
  int stop_requests = 0;
  std::shared_ptr<detail::TaskControl> main_control;
};

Runtime::Runtime(std::size_t threads) : impl_(std::make_unique<Impl>(threads)) {}

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

/// io_context::run, except that a thread that runs out of ready handlers polls for a moment before it
/// sleeps in epoll: the result of work handed to a pool usually arrives within microseconds, and picking
/// it up by polling saves the wake-up of a sleeping thread, the largest part of such a round trip.
void run_polling(asio::io_context& context) {
  for (;;) {
    context.poll();
    if (context.stopped()) return;
    if (detail::spin_until([&] { return context.poll_one() > 0 || context.stopped(); })) continue;
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
  asio::signal_set signals(context, SIGINT, SIGTERM);
  await_signals(signals, *this);
  detail::start_task(control, detail::task_body(std::move(main), state), state, [&context] { context.stop(); });

  std::mutex error_mutex;
  std::exception_ptr loop_error;
  auto run_loop = [&] {
    RunningExecutorScope scope(executor);
    try {
      run_polling(context);
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

  signals.cancel();
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
