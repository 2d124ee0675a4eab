// Connection's coroutine side: the same messages, with the waits done by the event loop (Asio readiness
// of the ring's socket) instead of a sleeping thread.
#include <chrono>
#include <optional>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include "cohort/connection.hpp"
#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "loop/borrowed_descriptor.hpp"
#include "ipc/pipe_stream.hpp"

namespace cohort {

namespace {

namespace asio = boost::asio;

/// Waits on the loop until `ready()` holds or the other end is closed everywhere (then false), counted in
/// `sleepers` while it waits so that the other side sends a wake-up.
template <class Ready>
task<bool> async_wait_until(const detail::PipeRingEnd& ring, std::atomic<std::uint32_t>& sleepers, Ready ready,
                            const char* what) {
  // First a look between the loop's other handlers, for as long as a loop thread polls before it
  // sleeps: the answer of a process that is working on it (a process actor's reply) usually comes
  // within microseconds, and while this side is not counted asleep the other sends no wake-up, so the
  // round trip makes no system call on either side. The looks never hold the loop: what this wait
  // waits for may well be sent by a coroutine of the same loop (a spin of 5 us per look, tried, cut a
  // process actor's round trips by four).
  const Executor executor = co_await asio::this_coro::executor;
  const auto give_up = std::chrono::steady_clock::now() + detail::spin_before_sleep;
  do {
    co_await asio::post(executor, asio::use_awaitable);
    if (ready()) co_return true;
  } while (std::chrono::steady_clock::now() < give_up);
  std::optional<detail::BorrowedDescriptor> watch;
  for (;;) {
    {
      detail::WaiterCount sleeping(sleepers);
      if (ready()) co_return true;
      if (!watch) watch.emplace(co_await asio::this_coro::executor, ring.socket.get(), what);
      co_await watch->wait(asio::posix::descriptor_base::wait_read);
    }
    const bool closed = detail::drain_wakeups(ring.socket.get());
    if (ready()) co_return true;
    if (closed) co_return false;
  }
}

}  // namespace

task<void> Connection::async_send_bytes(std::string bytes) {
  constexpr const char* what = "Connection.async_send";
  check_writable("async_send");
  detail::check_message_size(bytes.size(), what);
  if (detail::peer_closed(out_)) throw EOFError(fmt::format("{}: the other end is closed", what));
  const detail::MessageHeader header{detail::message_magic, 0, bytes.size()};
  detail::FrameWriter writer({reinterpret_cast<const char*>(&header), sizeof header}, bytes);
  while (!writer.advance(out_, what)) {
    const bool open = co_await async_wait_until(
        out_, out_.control->writers_sleeping, [this] { return detail::ring_writable(out_) > 0; }, what);
    if (!open) throw EOFError(fmt::format("{}: the other end is closed", what));
  }
}

task<std::string> Connection::async_recv_bytes() {
  constexpr const char* what = "Connection.async_recv";
  check_readable("async_recv");
  detail::WaiterCount present(in_.control->readers_present);
  detail::FrameReader reader(what);
  for (;;) {
    std::uint64_t readable = detail::ring_readable(in_);
    if (readable < reader.wanted()) {
      co_await async_wait_until(
          in_, in_.control->readers_sleeping,
          [&] { return (readable = detail::ring_readable(in_)) >= reader.wanted(); }, what);
      if (readable < reader.wanted()) reader.end_of_stream(readable);
    }
    if (reader.advance(in_, readable)) co_return reader.take();
  }
}

}  // namespace cohort
