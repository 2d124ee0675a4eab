// Popen, run and the pipes to a child: the blocking side of subprocess once the child runs (its start is
// in subprocess_launch.cpp), and the reaper of children whose Popen went away.
#include "cohort/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cohort/error.hpp"
#include "subprocess/subprocess_internal.hpp"

namespace cohort::subprocess {

using detail::Clock;
using detail::SignalsBlocked;
using detail::UniqueFd;

namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t write_chunk = 1024 * 1024;  // more than a pipe holds: each write fills it

/// Puts this process's end of a pipe in non-blocking mode for a scope (the mode belongs to this end
/// alone: the child's end is another open file).
class NonBlocking {
 public:
  explicit NonBlocking(const PipeEnd& end)
      : end_(end), fd_(end.fileno()), flags_(fd_ >= 0 ? ::fcntl(fd_, F_GETFL) : -1) {
    if (flags_ >= 0 && ::fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK) < 0) flags_ = -1;
  }
  ~NonBlocking() {
    if (flags_ >= 0 && end_.fileno() == fd_) ::fcntl(fd_, F_SETFL, flags_);
  }
  NonBlocking(const NonBlocking&) = delete;
  NonBlocking& operator=(const NonBlocking&) = delete;

 private:
  const PipeEnd& end_;
  int fd_;
  int flags_;
};

int decode_status(int status) { return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status); }

/// Children whose Popen was destroyed while they ran. One thread, started with the first of them, sleeps
/// in poll() on their pidfds and an eventfd, and reaps each child as it ends.
class OrphanReaper {
 public:
  static OrphanReaper& instance() {
    static auto* reaper = new OrphanReaper;  // never destroyed: its thread outlives the program's statics
    return *reaper;
  }

  /// Throws only if the system is out of memory, threads or descriptors; the child is then left to be
  /// reaped by a later adopt() or, at the latest, by init when this program ends.
  void adopt(int pid, UniqueFd pidfd) {
    std::lock_guard lock(mutex_);
    orphans_.push_back(Orphan{pid, std::move(pidfd)});
    if (!wake_) wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) return;
    if (!thread_started_) {
      start_thread();
      thread_started_ = true;
    } else {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto written = ::write(wake_.get(), &one, sizeof one);
    }
  }

 private:
  struct Orphan {
    int pid;
    UniqueFd pidfd;
  };

  OrphanReaper() {
    // A forked child has none of these children and not the thread: it starts over. Holding the mutex
    // across fork() keeps the list whole in the copy.
    ::pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                     [] {
                       auto& reaper = instance();
                       for (auto& orphan : reaper.orphans_) orphan.pidfd.reset();
                       reaper.orphans_.clear();
                       reaper.wake_.reset();
                       reaper.thread_started_ = false;
                       reaper.mutex_.unlock();
                     });
  }

  void start_thread() {
    // The thread inherits a mask that blocks every signal, so that none meant for the program lands on it.
    const SignalsBlocked blocked;
    std::thread([this] { run(); }).detach();
  }

  [[noreturn]] void run() {
    std::vector<pollfd> watched;
    for (;;) {
      watched.clear();
      {
        std::lock_guard lock(mutex_);
        watched.push_back(pollfd{.fd = wake_.get(), .events = POLLIN, .revents = 0});
        for (const auto& orphan : orphans_)
          watched.push_back(pollfd{.fd = orphan.pidfd.get(), .events = POLLIN, .revents = 0});
      }
      if (::poll(watched.data(), watched.size(), -1) < 0) continue;  // EINTR
      std::uint64_t count = 0;
      [[maybe_unused]] const auto drained = ::read(watched.front().fd, &count, sizeof count);
      std::lock_guard lock(mutex_);
      std::erase_if(orphans_, [](const Orphan& orphan) {
        int reaped = 0;
        do {
          reaped = ::waitpid(orphan.pid, nullptr, WNOHANG);
        } while (reaped < 0 && errno == EINTR);
        return reaped != 0;  // reaped, or not ours to reap any more (ECHILD)
      });
    }
  }

  std::mutex mutex_;
  std::vector<Orphan> orphans_;
  UniqueFd wake_;
  bool thread_started_ = false;
};

}  // namespace

}  // namespace cohort::subprocess

namespace cohort::detail {

using subprocess::decode_status;
using subprocess::OrphanReaper;

PopenState::~PopenState() {
  try {
    if (poll()) return;
    OrphanReaper::instance().adopt(pid_, std::move(pidfd_));
  } catch (const std::exception&) {
    // Not ours to reap (SIGCHLD ignored, or reaped behind our back), or no resources left to watch it.
  }
}

std::optional<int> PopenState::poll() {
  std::lock_guard lock(mutex_);
  if (returncode_) return returncode_;
  int status = 0;
  int reaped = 0;
  do {
    reaped = ::waitpid(pid_, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return std::nullopt;
  if (reaped < 0)
    throw ProcessError(fmt::format("Popen: cannot wait for '{}' (pid {}): {} (is SIGCHLD ignored?)", args_[0], pid_,
                                   std::strerror(errno)));
  returncode_ = decode_status(status);
  return returncode_;
}

bool PopenState::wait_until(Clock::time_point deadline, const char* what) {
  for (;;) {
    if (poll()) return true;
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return false;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd watch{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&watch, 1, static_cast<int>(std::min<long long>(ms, 60'000))) < 0 && errno != EINTR)
      throw ProcessError(fmt::format("{}: poll failed: {}", what, std::strerror(errno)));
  }
}

void PopenState::send_signal(int signal_number) {
  std::lock_guard lock(mutex_);
  if (returncode_) return;
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signal_number, nullptr, 0) != 0 && errno != ESRCH)
    throw ProcessError(
        fmt::format("Popen.send_signal: cannot signal '{}' (pid {}): {}", args_[0], pid_, std::strerror(errno)));
}

std::string command_line(const std::vector<std::string>& args) {
  std::string line;
  for (const auto& arg : args) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return line;
}

long write_without_sigpipe(int fd, const char* data, std::size_t size) noexcept {
  // SIGPIPE for a write is sent to the writing thread: blocked here, it stays pending and is taken
  // back with sigtimedwait, unless one was pending already (then it is not ours to swallow).
  sigset_t pipe_signal;
  sigset_t previous;
  sigset_t pending;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  ssize_t written = 0;
  do {
    written = ::write(fd, data, size);
  } while (written < 0 && errno == EINTR);
  const int error = errno;
  if (written < 0 && error == EPIPE && !was_pending) {
    const timespec no_wait{};
    while (::sigtimedwait(&pipe_signal, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return written < 0 ? -error : static_cast<long>(written);
}

}  // namespace cohort::detail

namespace cohort::subprocess {

// --- PipeEnd -------------------------------------------------------------------------------------------

void PipeEnd::check_open(const char* what) const {
  if (!fd_) throw ProcessError(fmt::format("PipeEnd.{}: the pipe is closed", what));
}

bool PipeEnd::fill(const char* what) {
  const std::size_t before = buffer_.size();
  buffer_.resize(before + read_chunk);
  ssize_t n = 0;
  do {
    n = ::read(fd_.get(), buffer_.data() + before, read_chunk);
  } while (n < 0 && errno == EINTR);
  const int error = errno;
  buffer_.resize(before + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0) throw ProcessError(fmt::format("PipeEnd.{}: {}", what, std::strerror(error)));
  return n > 0;
}

void PipeEnd::write(std::string_view data) {
  check_open("write");
  std::size_t done = 0;
  while (done < data.size()) {
    const long n = detail::write_without_sigpipe(fd_.get(), data.data() + done, data.size() - done);
    if (n == -EPIPE) throw EOFError("PipeEnd.write: the reading end is closed");
    if (n < 0) throw ProcessError(fmt::format("PipeEnd.write: {}", std::strerror(static_cast<int>(-n))));
    done += static_cast<std::size_t>(n);
  }
}

std::string PipeEnd::read() {
  check_open("read");
  while (fill("read")) {
  }
  return std::exchange(buffer_, {});
}

std::string PipeEnd::read(std::size_t size) {
  check_open("read");
  while (buffer_.size() < size && fill("read")) {
  }
  std::string head = buffer_.substr(0, size);
  buffer_.erase(0, head.size());
  return head;
}

std::string PipeEnd::readline() {
  check_open("readline");
  std::size_t scanned = 0;
  for (;;) {
    if (const auto newline = buffer_.find('\n', scanned); newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline + 1);
      buffer_.erase(0, newline + 1);
      return line;
    }
    scanned = buffer_.size();
    if (!fill("readline")) return std::exchange(buffer_, {});
  }
}

// --- Popen ---------------------------------------------------------------------------------------------

Popen::~Popen() = default;
Popen::Popen(Popen&&) noexcept = default;
Popen& Popen::operator=(Popen&&) noexcept = default;

detail::PopenState& Popen::state() const {
  if (!state_) throw ProcessError("Popen: this object was moved from");
  return *state_;
}

const std::vector<std::string>& Popen::args() const { return state().args(); }
int Popen::pid() const { return state().pid(); }
int Popen::pidfd() const { return state().pidfd(); }
std::optional<int> Popen::returncode() const { return state().returncode(); }
std::optional<int> Popen::poll() { return state().poll(); }
int Popen::wait() { return wait_for(std::nullopt, "Popen.wait"); }

int Popen::wait_for(std::optional<Clock::duration> timeout, const char* what) {
  auto& child = state();
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  if (!child.wait_until(deadline, what))
    detail::throw_timeout(fmt::format("{}: command '{}'", what, detail::command_line(child.args())), *timeout);
  return *child.returncode();
}

void Popen::send_signal(int signal_number) { state().send_signal(signal_number); }
void Popen::terminate() { send_signal(SIGTERM); }
void Popen::kill() { send_signal(SIGKILL); }

PipeEnd Popen::stdout_pipe() {
  if (!stdout_)
    throw ProcessError(fmt::format("Popen.stdout_pipe: stdout_ of '{}' is not an open PIPE (or was already taken)",
                                   detail::command_line(args())));
  if (!stdout_.buffer_.empty())
    throw ProcessError(
        "Popen.stdout_pipe: stdout_ holds data already read from the pipe, which the next process would miss");
  return std::move(stdout_);
}

std::pair<std::string, std::string> Popen::communicate(std::string_view input) {
  return communicate_for(input, std::nullopt);
}

std::pair<std::string, std::string> Popen::communicate_for(std::string_view input,
                                                           std::optional<Clock::duration> timeout) {
  auto& child = state();
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  if (child.communication_started && !input.empty())
    throw std::invalid_argument("Popen.communicate: cannot send input after starting communication");
  if (!input.empty() && !stdin_) throw std::invalid_argument("Popen.communicate: input needs stdin_ = PIPE");
  const bool continuing = child.communication_started;
  if (!continuing) {
    child.communication_started = true;
    // What readline() pulled in ahead belongs to the output.
    child.stdout_output = std::exchange(stdout_.buffer_, {});
    child.stderr_output = std::exchange(stderr_.buffer_, {});
  }
  // The caller's input is written straight from its buffer; only what a timeout leaves unwritten is
  // copied, for the next call.
  std::string carried = std::exchange(child.pending_input, {});
  std::string_view unwritten = continuing ? std::string_view(carried) : input;
  if (unwritten.empty()) stdin_.close();
  auto time_out = [&]() {
    if (stdin_) child.pending_input.assign(unwritten);
    detail::throw_timeout(fmt::format("Popen.communicate: command '{}'", detail::command_line(child.args())), *timeout);
  };

  // Non-blocking while communicate feeds it, so that one write fills whatever room the pipe has instead
  // of the PIPE_BUF bytes poll() guarantees; blocking again afterwards, for stdin_.write().
  const NonBlocking feeding(stdin_);
  std::string chunk(read_chunk, '\0');
  for (;;) {
    std::array<pollfd, 3> watched{};
    std::array<PipeEnd*, 3> ends{};
    std::size_t count = 0;
    if (stdin_ && !unwritten.empty()) {
      watched[count] = pollfd{.fd = stdin_.fileno(), .events = POLLOUT, .revents = 0};
      ends[count++] = &stdin_;
    }
    for (PipeEnd* end : {&stdout_, &stderr_}) {
      if (!*end) continue;
      watched[count] = pollfd{.fd = end->fileno(), .events = POLLIN, .revents = 0};
      ends[count++] = end;
    }
    if (count == 0) break;

    int wait_ms = -1;
    if (timeout) {
      const auto left = std::max(deadline - Clock::now(), Clock::duration::zero());
      wait_ms =
          static_cast<int>(std::min<long long>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 60'000));
    }
    const int ready = ::poll(watched.data(), count, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw ProcessError(fmt::format("Popen.communicate: poll failed: {}", std::strerror(errno)));
    }
    if (ready == 0) {
      if (Clock::now() < deadline) continue;
      time_out();
    }

    for (std::size_t i = 0; i < count; ++i) {
      if (watched[i].revents == 0) continue;
      if (ends[i] == &stdin_) {
        const long n =
            detail::write_without_sigpipe(stdin_.fileno(), unwritten.data(), std::min(unwritten.size(), write_chunk));
        if (n >= 0) {
          unwritten.remove_prefix(static_cast<std::size_t>(n));
        } else if (n == -EPIPE) {
          unwritten = {};  // the child stopped reading: as Python, not an error
        } else if (n != -EAGAIN) {
          throw ProcessError(
              fmt::format("Popen.communicate: writing stdin failed: {}", std::strerror(static_cast<int>(-n))));
        }
        if (unwritten.empty()) stdin_.close();
        continue;
      }
      ssize_t n = 0;
      do {
        n = ::read(ends[i]->fileno(), chunk.data(), chunk.size());
      } while (n < 0 && errno == EINTR);
      if (n < 0) throw ProcessError(fmt::format("Popen.communicate: reading failed: {}", std::strerror(errno)));
      if (n == 0) {
        ends[i]->close();
      } else {
        (ends[i] == &stdout_ ? child.stdout_output : child.stderr_output)
            .append(chunk.data(), static_cast<std::size_t>(n));
      }
    }
  }

  if (!child.wait_until(deadline, "Popen.communicate")) time_out();
  return {std::exchange(child.stdout_output, {}), std::exchange(child.stderr_output, {})};
}

// --- run -----------------------------------------------------------------------------------------------

void CompletedProcess::check_returncode() const {
  if (returncode != 0) throw CalledProcessError(returncode, args, stdout_output, stderr_output);
}

CompletedProcess run(std::vector<std::string> args, RunOptions options) {
  const Timeout timeout = options.timeout;
  const bool check = options.check;
  const std::string input = options.input ? std::move(*options.input) : std::string();
  Popen process(std::move(args), detail::popen_options_for_run(options, "subprocess.run"));
  std::pair<std::string, std::string> output;
  try {
    output = timeout ? process.communicate(input, *timeout) : process.communicate(input);
  } catch (const TimeoutError&) {
    process.kill();
    process.wait();
    detail::throw_timeout(fmt::format("subprocess.run: command '{}'", detail::command_line(process.args())),
                          detail::to_clock_duration(*timeout));
  } catch (...) {
    process.kill();
    process.wait();
    throw;
  }
  CompletedProcess result{process.args(), *process.returncode(), std::move(output.first), std::move(output.second)};
  if (check) result.check_returncode();
  return result;
}

}  // namespace cohort::subprocess
