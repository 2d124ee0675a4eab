// async_run: run's coroutine form. The child starts as for run (fork and exec are quick and happen on
// the calling thread); then its input, both outputs and its exit are awaited on the event loop: each
// pipe is made non-blocking and read or written until it would block, then Asio waits for it, and the
// exit is a wait on the child's pidfd.
#include "cohort/subprocess.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/posix/descriptor_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cohort/error.hpp"
#include "loop/borrowed_descriptor.hpp"

namespace cohort::subprocess {

namespace {

namespace asio = boost::asio;
using asio::posix::descriptor_base;

constexpr std::size_t chunk_size = 64 * 1024;
constexpr const char* operation = "subprocess.async_run";  // names it in errors

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    throw ProcessError(fmt::format("subprocess.async_run: cannot make a pipe non-blocking: {}", std::strerror(errno)));
}

/// Writes `input` to the child's stdin, then closes it so that the child sees the end.
task<void> feed(PipeEnd& stdin_end, std::string_view input) {
  if (!stdin_end) co_return;
  {
    detail::BorrowedDescriptor watch(co_await asio::this_coro::executor, stdin_end.fileno(), operation);
    while (!input.empty()) {
      const long n =
          detail::write_without_sigpipe(stdin_end.fileno(), input.data(), std::min(input.size(), chunk_size));
      if (n >= 0) {
        input.remove_prefix(static_cast<std::size_t>(n));
      } else if (n == -EAGAIN) {
        co_await watch.wait(descriptor_base::wait_write);
      } else if (n == -EPIPE) {
        break;  // the child stopped reading: as Python, not an error
      } else {
        throw ProcessError(
            fmt::format("subprocess.async_run: writing stdin failed: {}", std::strerror(static_cast<int>(-n))));
      }
    }
  }  // the watch lets go of the descriptor before it is closed: a closed number can be reused at once
  stdin_end.close();
}

/// Reads one of the child's outputs to its end.
task<void> drain(PipeEnd& end, std::string& output) {
  if (!end) co_return;
  {
    detail::BorrowedDescriptor watch(co_await asio::this_coro::executor, end.fileno(), operation);
    std::string chunk(chunk_size, '\0');
    for (;;) {
      const ssize_t n = ::read(end.fileno(), chunk.data(), chunk.size());
      if (n > 0) {
        output.append(chunk.data(), static_cast<std::size_t>(n));
      } else if (n == 0) {
        break;
      } else if (errno == EAGAIN) {
        co_await watch.wait(descriptor_base::wait_read);
      } else if (errno != EINTR) {
        throw ProcessError(fmt::format("subprocess.async_run: reading output failed: {}", std::strerror(errno)));
      }
    }
  }  // as in feed: released before closed
  end.close();
}

/// Waits until the child has ended and is reaped: its pidfd turns readable when it exits.
task<int> wait_exit(Popen& process, int pidfd) {
  detail::BorrowedDescriptor watch(co_await asio::this_coro::executor, pidfd, operation);
  for (;;) {
    if (auto code = process.poll()) co_return *code;
    co_await watch.wait(descriptor_base::wait_read);
  }
}

/// communicate, then wait: the three pipes at once (a failure in one cancels the others).
task<int> exchange(Popen& process, int pidfd, std::string_view input, std::string& out, std::string& err) {
  const auto executor = co_await asio::this_coro::executor;
  auto [order, feed_error, out_error, err_error] =
      co_await asio::experimental::make_parallel_group(
          asio::co_spawn(executor, feed(process.stdin_, input), asio::deferred),
          asio::co_spawn(executor, drain(process.stdout_, out), asio::deferred),
          asio::co_spawn(executor, drain(process.stderr_, err), asio::deferred))
          .async_wait(asio::experimental::wait_for_one_error(), asio::use_awaitable);
  for (const auto& error : {feed_error, out_error, err_error})
    if (error) std::rethrow_exception(error);
  co_return co_await wait_exit(process, pidfd);
}

/// Kills the child unless disarmed: when async_run fails, and when its frame is destroyed while it
/// awaits (a Runtime torn down with the task still pending). The Popen then reaps it in the background.
class KillUnlessDone {
 public:
  explicit KillUnlessDone(Popen& process) : process_(process) {}
  ~KillUnlessDone() {
    if (armed_) {
      try {
        process_.kill();
      } catch (const std::exception&) {
        // Nothing left to signal.
      }
    }
  }
  KillUnlessDone(const KillUnlessDone&) = delete;
  KillUnlessDone& operator=(const KillUnlessDone&) = delete;
  void disarm() noexcept { armed_ = false; }

 private:
  Popen& process_;
  bool armed_ = true;
};

}  // namespace

task<CompletedProcess> async_run(std::vector<std::string> args, RunOptions options) {
  const Timeout timeout = options.timeout;
  const bool check = options.check;
  const std::string input = options.input ? std::move(*options.input) : std::string();
  Popen process(std::move(args), detail::popen_options_for_run(options, "subprocess.async_run"));
  KillUnlessDone guard(process);
  for (PipeEnd* end : {&process.stdin_, &process.stdout_, &process.stderr_})
    if (*end) set_nonblocking(end->fileno());

  const auto executor = co_await asio::this_coro::executor;
  std::string out;
  std::string err;
  int returncode = 0;
  if (!timeout) {
    returncode = co_await exchange(process, process.pidfd(), input, out, err);
  } else {
    asio::steady_timer timer(executor, detail::deadline_after(*timeout));
    auto [order, error, code, timer_ec] =
        co_await asio::experimental::make_parallel_group(
            asio::co_spawn(executor, exchange(process, process.pidfd(), input, out, err), asio::deferred),
            timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      throw CancelledError("subprocess.async_run: cancelled");
    if (order[0] == 1) {
      process.kill();
      co_await wait_exit(process, process.pidfd());
      detail::throw_timeout(fmt::format("subprocess.async_run: command '{}'", detail::command_line(process.args())),
                            detail::to_clock_duration(*timeout));
    }
    if (error) std::rethrow_exception(error);
    returncode = code;
  }
  guard.disarm();
  CompletedProcess result{process.args(), returncode, std::move(out), std::move(err)};
  if (check) result.check_returncode();
  co_return result;
}

}  // namespace cohort::subprocess
