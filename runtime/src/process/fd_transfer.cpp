// The descriptors of the transfer in progress on this thread.
#include "cohort/detail/fd_transfer.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cohort/error.hpp"

namespace cohort::detail {
namespace {

thread_local std::vector<UniqueFd>* current_transfer = nullptr;

}  // namespace

FdTransferScope::FdTransferScope(std::vector<UniqueFd>& fds) noexcept : previous_(current_transfer) {
  current_transfer = &fds;
}

FdTransferScope::~FdTransferScope() { current_transfer = previous_; }

std::uint32_t export_fd(int fd, const char* what) {
  if (!current_transfer)
    throw SerializationError(fmt::format(
        "{} holds an operating-system resource: it can cross to a child only as an argument of a Process "
        "or a pool initializer, not inside a message",
        what));
  if (fd < 0) throw SerializationError(fmt::format("{}: cannot pass a closed object to a child process", what));
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy) throw SerializationError(fmt::format("{}: cannot duplicate descriptor: {}", what, std::strerror(errno)));
  current_transfer->push_back(std::move(copy));
  return static_cast<std::uint32_t>(current_transfer->size() - 1);
}

UniqueFd import_fd(std::uint32_t index, const char* what) {
  if (!current_transfer || index >= current_transfer->size() || !(*current_transfer)[index])
    throw SerializationError(
        fmt::format("{}: descriptor {} is missing from the data this process received", what, index));
  return std::move((*current_transfer)[index]);
}

}  // namespace cohort::detail
