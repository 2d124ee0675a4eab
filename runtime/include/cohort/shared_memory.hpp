// SharedMemory (Python: multiprocessing.shared_memory.SharedMemory): a named POSIX shared-memory segment
// in /dev/shm that any program can open by name, mapped into this process.
//
// Unlike Python's, a segment does not outlive its users by accident: every SharedMemory constructed with
// track=true is an owner, and when the last owner closes (or its last copy in its process is destroyed)
// the name is removed. An owner process that crashed is noticed by the next owner that opens or closes
// the segment (owners are recorded by pid and process start time beside the data) and no longer counts;
// only if every owner crashes does the name stay, until some process opens and closes it. unlink()
// removes the name at once, whoever else still holds it.
//
// A SharedMemory passed as a Process argument gives the child the same memory, under every start method,
// without making the child an owner: the child's access ends with the child, and a child that is killed
// leaves nothing behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <cereal/access.hpp>

#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/unique_fd.hpp"

namespace cohort {

namespace detail {
class SharedMemorySegment;
std::shared_ptr<SharedMemorySegment> adopt_segment(UniqueFd fd, std::string name);
}  // namespace detail

class SharedMemory {
 public:
  /// create=true: a new segment of `size` bytes (std::invalid_argument if 0), zero-filled; an empty name
  /// picks a new unique one ("psm_" and 8 hex digits, as Python does). Error if the name exists.
  /// create=false: opens the existing segment `name` (Error if there is none); `size` is ignored.
  /// track=false: this object does not count as an owner; a segment created so is never removed
  /// automatically, only by unlink().
  explicit SharedMemory(std::string name, bool create = false, std::size_t size = 0, bool track = true);

  /// The segment's bytes. Error after close(). A span taken before close() must not be used after it.
  std::span<std::byte> buf() const;
  /// The name without the leading '/', as Python gives it.
  const std::string& name() const noexcept;
  /// The size asked for at creation (for a segment some other program created: its whole size).
  std::size_t size() const noexcept;

  /// Ends this process's access (for every copy of this object). The last owner's close removes the name.
  void close();
  /// Removes the name now, if it still names this segment; the memory stays valid for whoever maps it.
  void unlink();

 private:
  friend class cereal::access;
  SharedMemory() = default;  // to load into

  int fd_for_transfer() const;

  template <class Archive>
  void save(Archive& archive) const {
    archive(detail::export_fd(fd_for_transfer(), "SharedMemory"), name());
  }
  template <class Archive>
  void load(Archive& archive) {
    std::uint32_t index = 0;
    std::string name;
    archive(index, name);
    segment_ = detail::adopt_segment(detail::import_fd(index, "SharedMemory"), std::move(name));
  }

  std::shared_ptr<detail::SharedMemorySegment> segment_;
};

}  // namespace cohort
