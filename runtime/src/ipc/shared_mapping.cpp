// memfd-backed shared mappings.
#include "cohort/detail/shared_mapping.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cohort/error.hpp"

namespace cohort::detail {
namespace {

void* map_shared(int fd, std::size_t size, const char* what) {
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) throw Error(fmt::format("{}: cannot map shared memory: {}", what, std::strerror(errno)));
  return data;
}

}  // namespace

std::shared_ptr<SharedMapping> SharedMapping::create(std::size_t size, const char* what) {
  if (size == 0) size = 1;  // mmap refuses empty mappings
  UniqueFd fd(::memfd_create(what, MFD_CLOEXEC));
  if (!fd) throw Error(fmt::format("{}: memfd_create failed: {}", what, std::strerror(errno)));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    throw Error(fmt::format("{}: cannot size shared memory to {} bytes: {}", what, size, std::strerror(errno)));
  void* data = map_shared(fd.get(), size, what);
  return std::make_shared<SharedMapping>(std::move(fd), data, size);
}

std::shared_ptr<SharedMapping> SharedMapping::attach(UniqueFd fd, std::size_t min_size, const char* what) {
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0)
    throw SerializationError(fmt::format("{}: received descriptor is unusable: {}", what, std::strerror(errno)));
  const auto size = static_cast<std::size_t>(info.st_size);
  if (size < min_size || size == 0)
    throw SerializationError(fmt::format("{}: received shared memory of {} bytes, expected at least {}", what, size, min_size));
  void* data = map_shared(fd.get(), size, what);
  return std::make_shared<SharedMapping>(std::move(fd), data, size);
}

SharedMapping::~SharedMapping() { ::munmap(data_, size_); }

}  // namespace cohort::detail
