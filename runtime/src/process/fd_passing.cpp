// SCM_RIGHTS messages.
#include "cohort/detail/fd_passing.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "cohort/codec.hpp"
#include "cohort/error.hpp"

namespace cohort::detail {
namespace {

struct Header {
  std::uint32_t magic;
  std::uint32_t fd_count;
  std::uint64_t size;
};
static_assert(sizeof(Header) == 16);
constexpr std::uint32_t header_magic = 0x44484f43;  // "COHD"

[[noreturn]] void throw_errno(const char* what) { throw Error(fmt::format("{}: {}", what, std::strerror(errno))); }

void write_all(int socket, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(socket, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) throw EOFError("sending to a process: the other end is closed");
      throw_errno("sending to a process");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void read_all(int socket, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(socket, data, size, 0);
    if (n == 0) throw EOFError("receiving from a process: the other end closed inside a message");
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("receiving from a process");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void send_with_fds(int socket, std::string_view bytes, const std::vector<UniqueFd>& fds) {
  if (fds.size() > max_fds_per_message)
    throw SerializationError(fmt::format("cannot pass {} descriptors to a process at once (the limit is {})", fds.size(),
                                         max_fds_per_message));
  Header header{header_magic, static_cast<std::uint32_t>(fds.size()), bytes.size()};
  iovec part{&header, sizeof header};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
  if (!fds.empty()) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* attached = CMSG_FIRSTHDR(&message);
    attached->cmsg_level = SOL_SOCKET;
    attached->cmsg_type = SCM_RIGHTS;
    attached->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    auto* slots = reinterpret_cast<int*>(CMSG_DATA(attached));
    for (std::size_t i = 0; i < fds.size(); ++i) slots[i] = fds[i].get();
  }
  ssize_t sent = 0;
  do {
    sent = ::sendmsg(socket, &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    if (errno == EPIPE || errno == ECONNRESET) throw EOFError("sending to a process: the other end is closed");
    throw_errno("sending to a process");
  }
  // The header is far below any socket buffer, so it went out whole with its descriptors.
  write_all(socket, reinterpret_cast<const char*>(&header) + sent, sizeof header - static_cast<std::size_t>(sent));
  write_all(socket, bytes.data(), bytes.size());
}

std::string recv_with_fds(int socket, std::vector<UniqueFd>& fds) {
  Header header{};
  iovec part{&header, sizeof header};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t received = 0;
  do {
    received = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) throw_errno("receiving from a process");
  if (received == 0) throw EOFError("receiving from a process: the other end is closed");
  for (cmsghdr* attached = CMSG_FIRSTHDR(&message); attached; attached = CMSG_NXTHDR(&message, attached)) {
    if (attached->cmsg_level != SOL_SOCKET || attached->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (attached->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* slots = reinterpret_cast<const int*>(CMSG_DATA(attached));
    for (std::size_t i = 0; i < count; ++i) fds.emplace_back(slots[i]);
  }
  if (message.msg_flags & MSG_CTRUNC) throw SerializationError("receiving from a process: descriptors were dropped");
  read_all(socket, reinterpret_cast<char*>(&header) + received, sizeof header - static_cast<std::size_t>(received));
  if (header.magic != header_magic) throw SerializationError("receiving from a process: not a cohort message");
  if (header.size > max_message_size())
    throw SerializationError(fmt::format("receiving from a process: message of {} bytes exceeds max_message_size()", header.size));
  std::string bytes(static_cast<std::size_t>(header.size), '\0');
  read_all(socket, bytes.data(), bytes.size());
  return bytes;
}

}  // namespace cohort::detail
