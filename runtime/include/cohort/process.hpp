// Process (Python: multiprocessing.Process): run a callable in a child process, then join it, poll it,
// signal it and read its exit code. Also the facts about processes: current_process, parent_process,
// active_children, cpu_count.
//
// Three start methods, as in Python:
//   - fork: the child is forked from the process that calls start() and runs the target on a copy of the
//     parent's memory, so any callable and any arguments work. Only the thread that forked lives on in
//     the child; locks other threads held at that moment stay held there, so fork from a program that
//     runs other threads only when the target does not need what those threads may hold.
//   - spawn: the child re-executes this program, whose main() calls cohort::init(argc, argv) first; init
//     receives the target and runs it instead of main.
//   - forkserver: the child is forked from a server process that init() started while the program was
//     still single-threaded. The default when init was called.
// Under spawn and forkserver the target is named by its address in the program (a free function, a
// static member function or a captureless lambda) and the arguments cross serialized with cereal;
// Connection, Queue, locks and shared memory cross as descriptors. A subclass that overrides run() is
// always forked: its state is the object itself, which only a copy of the memory can carry.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/detail/stored_call.hpp"
#include "cohort/detail/type_name.hpp"
#include "cohort/task.hpp"

namespace cohort {

enum class StartMethod { fork, spawn, forkserver };

/// "fork", "spawn" or "forkserver".
const char* to_string(StartMethod method) noexcept;

/// The start method of Processes (and pools) created from now on. spawn and forkserver need
/// cohort::init(argc, argv) at the start of main (ProcessError when such a process starts otherwise).
void set_start_method(StartMethod method);
/// forkserver if init() was called in this program, fork otherwise, unless set_start_method chose.
StartMethod get_start_method();

struct ProcessOptions {
  /// Empty: "Process-N" (N counts this process's children; in a child, "Process-2:1" and so on).
  std::string name = {};
  /// A daemon child is killed when its parent ends, however it ends (even by SIGKILL), and may not
  /// start children of its own. The parent does not wait for it at exit.
  bool daemon = false;
  /// Empty: get_start_method() at the time the Process is constructed.
  std::optional<StartMethod> start_method = std::nullopt;
};

/// What a process knows about itself or a relative.
struct ProcessInfo {
  std::string name;
  int pid = 0;
  bool daemon = false;
};

class Process;

namespace detail {
class ChildProcess;

/// A descriptor that becomes readable once the started `process` has ended: what a pool polls, beside
/// its workers' connections, to see a worker die at once. ProcessError if it was never started.
int watch_fd(Process& process);

/// The target and its arguments, type-erased; move-only, so arguments such as a Connection may be
/// moved in.
struct ProcessTarget {
  virtual ~ProcessTarget() = default;
  /// Calls the target in a forked child.
  virtual void operator()() = 0;
  /// The call as a frame for a spawned or forkserver child. ProcessError if the target or an argument
  /// cannot cross (a capturing lambda, a type cereal cannot serialize).
  virtual CallFrame call_frame() const = 0;
};

/// How a process ended, from its exitcode(): "was killed by signal 9 (SIGKILL)" or "exited with code 3".
std::string describe_exit(int exitcode);

[[noreturn]] void throw_not_remote_callable(std::string_view type);
[[noreturn]] void throw_not_transferable(std::string_view type);

template <class F, class... Args>
struct ProcessTargetOf final : ProcessTarget {
  template <class G, class... A>
  explicit ProcessTargetOf(G&& f, A&&... a) : fn(std::forward<G>(f)), args(std::forward<A>(a)...) {}

  void operator()() override {
    // Process's constructor has asserted that this call is valid; the check keeps its error alone.
    if constexpr (stored_call<F, Args...>::callable) invoke_stored(fn, args);
  }

  CallFrame call_frame() const override {
    // A call that is not valid never gets here (Process's constructor refused it); testing it keeps the
    // constructor's static_assert the only error.
    if constexpr (!stored_call<F, Args...>::callable || !is_remote_callable_v<F>) {
      throw_not_remote_callable(type_name<F>());
    } else if constexpr (!(is_transferable_v<Args> && ...)) {
      const std::string_view names[] = {(is_transferable_v<Args> ? std::string_view() : type_name<Args>())...};
      for (auto name : names)
        if (!name.empty()) throw_not_transferable(name);
      throw_not_transferable(type_name<std::tuple<Args...>>());
    } else {
      return std::apply([&](const auto&... values) { return make_call(fn, values...); }, args);
    }
  }

  F fn;
  std::tuple<Args...> args;
};
}  // namespace detail

class Process {
 public:
  /// For subclasses that override run().
  Process();
  explicit Process(ProcessOptions options);

  /// Process(target, args...): the child calls target(args...). The arguments are copied (or moved)
  /// into the Process object now; the child gets them as they are at start(), as std::thread passes
  /// them: as rvalues, so `void worker(cohort::Connection conn)` takes `Process(worker, std::move(c))`;
  /// a `T&` parameter gets the child's copy of the stored argument.
  template <class F, class... Args>
    requires(!std::is_same_v<std::decay_t<F>, ProcessOptions> && !std::is_base_of_v<Process, std::decay_t<F>>)
  explicit Process(F&& target, Args&&... args) : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

  template <class F, class... Args>
  Process(ProcessOptions options, F&& target, Args&&... args) : Process(std::move(options)) {
    // If you get an error on the following line, the target cannot be called with the arguments given.
    static_assert(detail::stored_call<std::decay_t<F>, std::decay_t<Args>...>::callable,
                  "cohort::Process(target, args...): target(args...) is not a valid call. Each argument is "
                  "stored in the Process and passed to the target as an rvalue (a parameter taken by value, "
                  "as const T& or as T&& accepts it; a T& parameter gets the stored copy): check the number "
                  "and the types of the arguments");
    target_ = std::make_unique<detail::ProcessTargetOf<std::decay_t<F>, std::decay_t<Args>...>>(std::forward<F>(target),
                                                                                               std::forward<Args>(args)...);
  }

  /// Does not stop a running child (as in Python); it is reaped once it ends, and joined at exit
  /// unless it is a daemon.
  virtual ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Starts the child. Throws ProcessError if it was started before, if this process is a daemon, or
  /// if the system refuses.
  void start();

  /// Waits for the child to end. Throws ProcessError if it was never started.
  void join();
  /// Waits at most `timeout`; true if the child has ended.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::deadline_after(timeout));
  }
  /// join() for coroutines: suspends until the child ends without blocking the event loop.
  task<void> async_join();

  bool is_alive();
  /// nullopt while running (or not started); -N if a signal N ended it; 1 if its target threw;
  /// otherwise its exit status.
  std::optional<int> exitcode();
  /// SIGTERM / SIGKILL; nothing if the child has already ended.
  void terminate();
  void kill();
  /// Releases the process's resources; ProcessError if it is still running. Later calls other than
  /// name(), daemon() and close() throw ProcessError.
  void close();

  /// 0 before start().
  int pid() const;
  const std::string& name() const noexcept { return options_.name; }
  void set_name(std::string name) { options_.name = std::move(name); }
  bool daemon() const noexcept { return options_.daemon; }
  /// Only before start(), as in Python.
  void set_daemon(bool daemon);
  StartMethod start_method() const noexcept { return *options_.start_method; }

 protected:
  /// What the child does: calls the target. Override it in a subclass instead of passing a target.
  virtual void run();

 private:
  friend int detail::watch_fd(Process&);

  bool join_until(detail::Clock::time_point deadline);
  void check_open(const char* what) const;
  void start_forked();
  void start_from_program(StartMethod method);

  ProcessOptions options_;
  std::vector<int> identity_;
  std::unique_ptr<detail::ProcessTarget> target_;
  std::shared_ptr<detail::ChildProcess> child_;
  bool closed_ = false;
};

/// This process: "MainProcess" in the program itself, the Process's name in a child.
ProcessInfo current_process();
/// The process that started this one; nullopt in the main process.
std::optional<ProcessInfo> parent_process();
/// The children of this process that are still running; reaps those that ended.
std::vector<ProcessInfo> active_children();
/// The number of CPUs online.
int cpu_count();

}  // namespace cohort
