// Subprocesses (Python: subprocess): run a program and collect what it printed (run, async_run), or drive
// it through pipes while it runs (Popen). Programs are started through Boost.Process v2 and watched
// through a pidfd, like cohort::Process.
//
// A child is never left a zombie: wait(), poll() and communicate() reap it, and a Popen destroyed while
// its child still runs does not kill it or wait for it (as in Python) but hands it to a reaper thread,
// started the first time that happens, which reaps it whenever it ends.
#pragma once

#include <chrono>
#include <concepts>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/unique_fd.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {
class PopenState;
}  // namespace cohort::detail

namespace cohort::subprocess {

class Popen;

/// This process's end of a pipe to or from a child (Python: `p.stdin`, `p.stdout`, `p.stderr`).
/// Unbuffered for writes; readline() keeps what it read past the newline for the next read.
class PipeEnd {
 public:
  /// A closed end.
  PipeEnd() = default;
  /// Takes ownership of a pipe descriptor.
  explicit PipeEnd(detail::UniqueFd fd) noexcept : fd_(std::move(fd)) {}

  PipeEnd(PipeEnd&& other) noexcept : fd_(std::move(other.fd_)), buffer_(std::exchange(other.buffer_, {})) {}
  PipeEnd& operator=(PipeEnd&& other) noexcept {
    fd_ = std::move(other.fd_);
    buffer_ = std::exchange(other.buffer_, {});
    return *this;
  }

  /// Writes all of `data`, blocking while the pipe is full. EOFError if the reader has closed its end
  /// (where Python raises BrokenPipeError); never raises SIGPIPE.
  void write(std::string_view data);
  /// Everything up to the end of the stream.
  std::string read();
  /// `size` bytes, or fewer if the stream ends first; "" at the end.
  std::string read(std::size_t size);
  /// One line with its '\n', or the rest of the stream if it ends without one; "" at the end.
  std::string readline();

  /// Closing the write end to a child's stdin is how it learns that the input has ended.
  void close() noexcept {
    fd_.reset();
    buffer_.clear();
  }
  bool closed() const noexcept { return !fd_; }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  /// The descriptor, -1 when closed.
  int fileno() const noexcept { return fd_.get(); }

 private:
  friend class Popen;
  void check_open(const char* what) const;
  /// Reads once into the buffer; false at the end of the stream.
  bool fill(const char* what);

  detail::UniqueFd fd_;
  std::string buffer_;  // read from the pipe but not yet returned (readline's look-ahead)
};

/// The special places a child's standard stream can go.
enum class Redirect {
  pipe,     // a new pipe, whose other end this process gets as Popen::stdin_ / stdout_ / stderr_
  devnull,  // /dev/null
  stdout_,  // stderr only: wherever stdout goes
};
inline constexpr Redirect PIPE = Redirect::pipe;
inline constexpr Redirect DEVNULL = Redirect::devnull;
inline constexpr Redirect STDOUT = Redirect::stdout_;

/// Where one standard stream of the child goes: inherited from this process (the default), PIPE, DEVNULL,
/// STDOUT (for stderr_), a descriptor this process keeps owning, or a PipeEnd taken from another Popen
/// (`.stdin_ = p1.stdout_pipe()`), which the child gets and this process closes once the child started.
class Stdio {
 public:
  enum class Kind { inherit, pipe, devnull, stdout_, fd, pipe_end };

  Stdio() = default;
  Stdio(Redirect redirect) noexcept  // NOLINT(google-explicit-constructor): `.stdout_ = PIPE`
      : kind_(redirect == Redirect::pipe      ? Kind::pipe
              : redirect == Redirect::devnull ? Kind::devnull
                                              : Kind::stdout_) {}
  /// A descriptor the child gets a copy of; this process keeps owning it. Only an `int`, so that a bool
  /// or a char cannot slip in.
  Stdio(std::same_as<int> auto fd) noexcept : kind_(Kind::fd), fd_(fd) {}  // NOLINT(google-explicit-constructor)
  Stdio(PipeEnd&& end)                                                     // NOLINT(google-explicit-constructor)
      : kind_(Kind::pipe_end), end_(std::make_shared<PipeEnd>(std::move(end))) {}

  Kind kind() const noexcept { return kind_; }
  /// The descriptor of Kind::fd.
  int fd() const noexcept { return fd_; }
  /// The pipe end of Kind::pipe_end; closed once a child has taken it.
  const std::shared_ptr<PipeEnd>& pipe_end() const noexcept { return end_; }

 private:
  Kind kind_ = Kind::inherit;
  int fd_ = -1;
  std::shared_ptr<PipeEnd> end_;  // shared so that options stay copyable
};

/// A timeout in any unit: `3s`, `250ms`, `1.5s`.
using Timeout = std::optional<std::chrono::duration<double>>;
/// Replaces the child's whole environment, as Python's `env=`.
using Environment = std::map<std::string, std::string>;

/// Popen's keyword arguments, in Python's order (designated initializers must follow it).
struct PopenOptions {
  Stdio stdin_ = {};
  Stdio stdout_ = {};
  Stdio stderr_ = {};
  /// The child's working directory; a relative program path (containing '/') is looked up from there.
  std::optional<std::filesystem::path> cwd = std::nullopt;
  /// The child's environment instead of this process's; its PATH (or /bin:/usr/bin without one) is
  /// where a program name without '/' is searched.
  std::optional<Environment> env = std::nullopt;
};

/// run's keyword arguments, in Python's order (designated initializers must follow it).
struct RunOptions {
  Stdio stdin_ = {};
  /// Written to the child's stdin, which is then closed; implies stdin_ = PIPE.
  std::optional<std::string> input = std::nullopt;
  Stdio stdout_ = {};
  Stdio stderr_ = {};
  /// stdout_ = stderr_ = PIPE: the output ends up in CompletedProcess.
  bool capture_output = false;
  std::optional<std::filesystem::path> cwd = std::nullopt;
  /// On expiry the child is killed and reaped, then TimeoutError is thrown.
  Timeout timeout = std::nullopt;
  /// A non-zero exit status throws CalledProcessError (with the captured output).
  bool check = false;
  std::optional<Environment> env = std::nullopt;
};

/// What run returns (Python: subprocess.CompletedProcess).
struct CompletedProcess {
  std::vector<std::string> args;
  /// The exit status, or -N if signal N ended the child.
  int returncode = 0;
  /// What the child wrote to a PIPE; empty otherwise.
  std::string stdout_output;
  std::string stderr_output;

  /// Throws CalledProcessError if returncode is not 0.
  void check_returncode() const;
};

/// A running child program (Python: subprocess.Popen). `args[0]` is the program: a path if it contains
/// '/', otherwise a name searched in PATH. A program that cannot be started throws ProcessError naming
/// it and the reason (Python: FileNotFoundError and friends), and leaves nothing behind.
///
/// poll, wait, returncode and the signals may be called from any thread; communicate and the pipes from
/// one at a time.
class Popen {
 public:
  explicit Popen(std::vector<std::string> args, PopenOptions options = {});
  /// Closes this process's pipe ends. A child still running is neither killed nor waited for; it is
  /// reaped whenever it ends (see the top of this file).
  ~Popen();
  Popen(Popen&&) noexcept;
  Popen& operator=(Popen&&) noexcept;

  const std::vector<std::string>& args() const;
  int pid() const;
  /// What poll or wait last found: nullopt while running, the exit status, or -N after signal N.
  std::optional<int> returncode() const;

  /// Reaps the child if it has ended; its returncode then, nullopt while it runs.
  std::optional<int> poll();
  /// Waits for the child to end; its returncode.
  int wait();
  /// TimeoutError if it is still running after `timeout` (it keeps running).
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_for(detail::to_clock_duration(timeout), "Popen.wait");
  }

  /// Writes `input` to stdin_ (then closes it) while reading stdout_ and stderr_ to their ends, all at
  /// once so that no pipe fills up and blocks the child; then waits for the child. Returns what it wrote
  /// to stdout_ and stderr_ ("" for a stream that is not a PIPE).
  std::pair<std::string, std::string> communicate(std::string_view input = {});
  /// TimeoutError after `timeout`; the child keeps running and a later communicate() (without input)
  /// carries on, returning everything read by both calls.
  template <class Rep, class Period>
  std::pair<std::string, std::string> communicate(std::string_view input, std::chrono::duration<Rep, Period> timeout) {
    return communicate_for(input, detail::to_clock_duration(timeout));
  }

  /// Nothing once the child has been reaped (a reused pid is never hit).
  void send_signal(int signal_number);
  /// SIGTERM.
  void terminate();
  /// SIGKILL.
  void kill();

  /// Takes stdout_ out of this Popen, for the next process of a pipeline: `.stdin_ = p1.stdout_pipe()`.
  /// This process's copy is closed once that process has started (Python: `p1.stdout.close()`), so p1
  /// gets SIGPIPE if the next one exits early. ProcessError if stdout_ is not an open PIPE.
  PipeEnd stdout_pipe();

  /// This process's ends of the pipes to the child: open only for a stream given as PIPE.
  PipeEnd stdin_;
  PipeEnd stdout_;
  PipeEnd stderr_;

 private:
  friend task<CompletedProcess> async_run(std::vector<std::string> args, RunOptions options);

  detail::PopenState& state() const;
  int wait_for(std::optional<detail::Clock::duration> timeout, const char* what);
  std::pair<std::string, std::string> communicate_for(std::string_view input,
                                                      std::optional<detail::Clock::duration> timeout);
  int pidfd() const;

  std::unique_ptr<detail::PopenState> state_;
};

/// Runs `args` to completion and returns what it did (Python: subprocess.run). Throws TimeoutError
/// after killing and reaping the child if `timeout` passes, CalledProcessError with `check` and a
/// non-zero status, ProcessError if the program cannot be started.
CompletedProcess run(std::vector<std::string> args, RunOptions options = {});

/// run for coroutines: the child's pipes and its exit are awaited on the event loop, which never blocks
/// on them (only the fork and exec run on the calling thread). Cancelling the awaiting task kills the
/// child (it is reaped in the background).
///
/// GCC 12 miscompiles braced temporaries inside a co_await expression (a braced list of strings does not
/// compile; a braced options struct holding strings corrupts memory), so with it, make the call its own
/// statement: `auto job = async_run({"ls", "-l"}, {.capture_output = true}); auto r = co_await std::move(job);`
task<CompletedProcess> async_run(std::vector<std::string> args, RunOptions options = {});

}  // namespace cohort::subprocess

namespace cohort::detail {
/// run and async_run: `options` turned into Popen's (input and capture_output become PIPEs);
/// std::invalid_argument for a combination Python rejects too. `what` names the caller in errors.
subprocess::PopenOptions popen_options_for_run(subprocess::RunOptions& options, std::string_view what);
/// "ls -al": a command line for messages.
std::string command_line(const std::vector<std::string>& args);
/// write(2) to a pipe that reports a closed reader as -EPIPE instead of raising SIGPIPE; returns the
/// number of bytes written or -errno.
long write_without_sigpipe(int fd, const char* data, std::size_t size) noexcept;
}  // namespace cohort::detail
