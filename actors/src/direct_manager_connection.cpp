// A thread's own blocking connection to a manager: opened with the usual handshake on a loop of its
// own, then used with plain blocking calls on the socket, or on the shared-memory lane it moves to.
#include "cohort/detail/direct_manager_connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/connection.hpp"
#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/authentication.hpp"
#include "cohort/detail/fd_passing.hpp"
#include "cohort/detail/manager_protocol.hpp"
#include "cohort/detail/process_actor_protocol.hpp"
#include "cohort/detail/socket_channel.hpp"
#include "cohort/error.hpp"
#include "cohort/spawn.hpp"
#include "cohort/wait_for.hpp"

namespace cohort::detail {

namespace {

/// A socket to `address` on which the handshake is done, blocking from now on.
int connect_and_authenticate(const Address& address, const std::string& authkey, Clock::duration timeout) {
  boost::asio::io_context loop;
  std::optional<SocketChannel> opened;
  auto handshake = [](boost::asio::io_context& on, Address where, std::string key,
                      std::optional<SocketChannel>& out) -> task<void> {
    auto channel = co_await SocketChannel::async_connect(on, where);
    co_await async_authenticate_server(channel, std::move(key));
    out.emplace(std::move(channel));
  };
  auto done = start(loop.get_executor(), wait_for(handshake(loop, address, authkey, opened), timeout)).state;
  loop.run();
  done->rethrow_if_failed();
  const int fd = opened->release();
  // This thread waits in recv for its answers.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace

std::unique_ptr<DirectManagerConnection> DirectManagerConnection::open(const Address& address,
                                                                      const Address* same_machine,
                                                                      const std::string& authkey,
                                                                      Clock::duration timeout) {
  int fd = -1;
  bool unix_socket = !address.is_tcp();
  if (same_machine) {
    try {
      fd = connect_and_authenticate(*same_machine, authkey, timeout);
      unix_socket = true;
    } catch (const ProcessError&) {
      // Nothing listens there: the server is on another machine (or in another network namespace).
    }
  }
  if (fd < 0) fd = connect_and_authenticate(address, authkey, timeout);
  std::unique_ptr<DirectManagerConnection> connection(new DirectManagerConnection(fd, address));
  if (unix_socket) connection->move_to_lane(timeout);
  return connection;
}

DirectManagerConnection::DirectManagerConnection(int fd, Address address) noexcept
    : fd_(fd), owner_(::getpid()), address_(std::move(address)) {}

DirectManagerConnection::~DirectManagerConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void DirectManagerConnection::shut_down() noexcept {
  if (owner_ != ::getpid()) return;
  if (lane_)
    detail::shut_down(*lane_);
  else
    ::shutdown(fd_, SHUT_RDWR);
}

void DirectManagerConnection::gone(const std::string& why) {
  if (broken_.empty()) broken_ = fmt::format("the connection to the manager at {} is gone ({})", address_.to_string(), why);
  shut_down();
  throw ActorDeadError(broken_);
}

namespace {

/// false when the peer has gone (or the socket was shut down); errno says why otherwise.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

void DirectManagerConnection::read_more(bool mid_frame) {
  const auto room = in_.room();
  for (;;) {
    const auto n = ::recv(fd_, room.data(), room.size(), 0);
    if (n > 0) {
      in_.filled(static_cast<std::size_t>(n));
      return;
    }
    if (n < 0 && errno == EINTR) continue;
    gone(mid_frame ? "it closed the connection in the middle of an answer" : "it closed the connection");
  }
}

std::string DirectManagerConnection::read_frame() {
  std::optional<std::size_t> length;
  while (!(length = in_.next_length())) read_more(in_.buffered() != 0);
  if (*length > default_max_message) gone(fmt::format("it announced an answer of {} bytes", *length));
  std::string bytes = in_.take(*length);
  if (const std::size_t have = bytes.size(); have < *length) {
    // A long answer: the rest is read straight into it.
    bytes.resize(*length);
    for (std::size_t got = have; got < *length;) {
      const auto n = ::recv(fd_, bytes.data() + got, *length - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) gone("it closed the connection in the middle of an answer");
      got += static_cast<std::size_t>(n);
    }
  }
  return bytes;
}

void DirectManagerConnection::move_to_lane(Clock::duration timeout) {
  ManagerRequest request;
  request.id = ++next_id_;
  request.kind = ManagerKind::shared_memory_lane;
  const auto fail = [&](const std::string& why) {
    throw ProcessError(
        fmt::format("the manager at {} did not hand over a shared-memory lane: {}", address_.to_string(), why));
  };
  if (!write_all(fd_, SocketChannel::frame(dumps(request)))) fail(std::strerror(errno));
  // The answer is the lane's descriptors alone. A server that never sends them must not hold this
  // thread past the connection's time limit.
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  const timeval limit{.tv_sec = static_cast<time_t>(micros / 1'000'000),
                      .tv_usec = static_cast<suseconds_t>(micros % 1'000'000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  try {
    std::vector<UniqueFd> fds;
    const std::string bytes = recv_with_fds(fd_, fds);
    FdTransferScope transfer(fds);
    lane_ = std::make_unique<Connection>(loads<Connection>(bytes));
  } catch (const std::exception& e) {
    fail(e.what());
  }
  ::close(std::exchange(fd_, -1));
}

std::string DirectManagerConnection::call_through_lane(const std::string& request) {
  try {
    lane_->send_bytes(request);
    return lane_->recv_bytes();
  } catch (const EOFError&) {
    gone("it closed the connection");
  } catch (const SerializationError& e) {
    gone(e.what());
  }
}

void DirectManagerConnection::call(const std::string& object, ActorMessage& message) {
  try {
    if (!broken_.empty()) throw ActorDeadError(broken_);
    ManagerRequest request;
    request.object = object;
    message.encode_named(request);
    request.id = ++next_id_;
    // The answer to this call is the next message: the server answers a connection's calls in order
    // unless one waits, and this thread sends the next call only after this answer.
    std::string bytes;
    if (lane_) {
      bytes = call_through_lane(dumps(request));
    } else {
      if (!write_all(fd_, SocketChannel::frame(dumps(request)))) gone(std::strerror(errno));
      bytes = read_frame();
    }
    auto reply = loads<ProcessActorReply>(bytes);
    if (reply.id != request.id) gone(fmt::format("it answered call {} to call {}", reply.id, request.id));
    message.settle_remote(reply);
  } catch (...) {
    message.fail(std::current_exception());
  }
}

}  // namespace cohort::detail
