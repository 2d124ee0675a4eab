// Anonymous shared memory that processes share by descriptor: a memfd mapped MAP_SHARED. It has no name
// in /dev/shm, so nothing can leak there: the kernel frees it when the last descriptor and mapping are
// gone, however the processes that held it ended. Every process-shared object (locks, queues, Value,
// Array) lives in one; copies of the object in one process share the mapping, a child gets the
// descriptor (inherited under fork, with SCM_RIGHTS under spawn and forkserver) and maps it again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/unique_fd.hpp"

namespace cohort::detail {

class SharedMapping {
 public:
  /// A new zero-filled region of `size` bytes. `what` names it in errors and in /proc/<pid>/maps.
  static std::shared_ptr<SharedMapping> create(std::size_t size, const char* what);
  /// Maps a region received from another process. SerializationError if it is smaller than `min_size`.
  static std::shared_ptr<SharedMapping> attach(UniqueFd fd, std::size_t min_size, const char* what);

  SharedMapping(UniqueFd fd, void* data, std::size_t size) noexcept : fd_(std::move(fd)), data_(data), size_(size) {}
  ~SharedMapping();
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  int fd() const noexcept { return fd_.get(); }

 private:
  UniqueFd fd_;
  void* data_;
  std::size_t size_;
};

/// cereal support for members of type shared_ptr<SharedMapping>: the mapping crosses as a descriptor.
template <class Archive>
void save_mapping(Archive& archive, const std::shared_ptr<SharedMapping>& mapping, const char* what) {
  archive(export_fd(mapping ? mapping->fd() : -1, what));
}
template <class Archive>
std::shared_ptr<SharedMapping> load_mapping(Archive& archive, std::size_t min_size, const char* what) {
  std::uint32_t index = 0;
  archive(index);
  return SharedMapping::attach(import_fd(index, what), min_size, what);
}

}  // namespace cohort::detail
