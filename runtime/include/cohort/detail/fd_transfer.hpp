// Descriptors that cross to a child process beside its serialized arguments (spawn and forkserver start
// methods). An object that owns a descriptor (Connection, Queue, Lock, Value, ...) serializes only an
// index into the transfer in progress; the descriptors themselves travel with SCM_RIGHTS, so the child
// gets its own references to the same pipes and shared memory.
#pragma once

#include <cstdint>
#include <vector>

#include "cohort/detail/unique_fd.hpp"

namespace cohort::detail {

/// Collects (while serializing) or supplies (while deserializing) the descriptors of one transfer on
/// this thread for as long as it lives.
class FdTransferScope {
 public:
  explicit FdTransferScope(std::vector<UniqueFd>& fds) noexcept;
  ~FdTransferScope();
  FdTransferScope(const FdTransferScope&) = delete;
  FdTransferScope& operator=(const FdTransferScope&) = delete;

 private:
  std::vector<UniqueFd>* previous_;
};

/// While serializing inside an FdTransferScope: adds a duplicate of `fd` and returns its index.
/// SerializationError outside one: such objects can be Process arguments, but not bytes in a file or a
/// message (send a Connection or a Queue to a child by passing it as an argument of the Process).
std::uint32_t export_fd(int fd, const char* what);

/// While deserializing inside an FdTransferScope: takes the descriptor with that index (each index once,
/// so that no stray copy keeps a pipe open after its object closed it).
UniqueFd import_fd(std::uint32_t index, const char* what);

}  // namespace cohort::detail
