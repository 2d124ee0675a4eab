// Which event loop a new actor runs on, and cohort's default runtime: one loop thread, started the
// first time an actor is spawned outside any Runtime, stopped (its actors with it) at exit.
#include <unistd.h>

#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "cohort/actor.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {

namespace {

class DefaultRuntime {
 public:
  DefaultRuntime() : owner_(::getpid()) {
    runtime_.stop_on_signals(false);  // SIGTERM ends the program; it must not strand the proxies' calls
    std::promise<void> running;
    auto started = running.get_future();
    thread_ = std::thread([this, &running] {
      try {
        runtime_.run([](std::promise<void>& ready, std::shared_ptr<FutureState<void>> until) -> task<void> {
          ready.set_value();
          co_await async_wait_done(std::move(until));
        }(running, forever_));
      } catch (const CancelledError&) {
        // stop() at exit
      }
    });
    started.wait();
  }

  ~DefaultRuntime() {
    // A child forked after the runtime started has no loop thread to stop.
    if (::getpid() != owner_) {
      thread_.detach();
      return;
    }
    runtime_.stop();
    thread_.join();
  }

  Runtime& runtime() noexcept { return runtime_; }

 private:
  Runtime runtime_{1};
  std::shared_ptr<FutureState<void>> forever_ = std::make_shared<FutureState<void>>();
  std::thread thread_;
  pid_t owner_;
};

}  // namespace

boost::asio::io_context& loop_for_new_actor(const ActorOptions& options) {
  if (options.runtime != nullptr) return options.runtime->context();
  if (auto* loop = current_loop()) return *loop;
  // A child forked after the default runtime started has its memory but not its loop thread: it starts
  // a runtime of its own (the parent's is left alone).
  static std::mutex mutex;
  static std::unique_ptr<DefaultRuntime> runtime;
  static pid_t owner = 0;
  std::lock_guard lock(mutex);
  if (!runtime || owner != ::getpid()) {
    if (runtime) (void)runtime.release();
    runtime = std::make_unique<DefaultRuntime>();
    owner = ::getpid();
  }
  return runtime->runtime().context();
}

}  // namespace cohort::detail
