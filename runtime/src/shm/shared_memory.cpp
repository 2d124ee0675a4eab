// SharedMemory: a tmpfs file in /dev/shm, laid out as [the user's bytes | padding to 64 | trailer]. The
// trailer (after the data, so that other programs see the user's bytes at offset 0, as with Python's
// segments) holds the size, a robust mutex and the list of owner processes.
//
// A new segment is created unnamed (O_TMPFILE), filled in, and only then linked under its name, so no
// process can ever open one whose trailer is not written yet, and an existing name is never overwritten.
#include "cohort/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "cohort/detail/robust_mutex.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"

namespace cohort {
namespace detail {
namespace {

constexpr std::string_view shm_directory = "/dev/shm/";
constexpr std::uint64_t trailer_magic = 0x4d48535452484f43;  // "COHRTSHM"
constexpr std::size_t max_name_size = 250;

struct SegmentOwner {
  std::int32_t pid;  // 0: a free slot
  std::uint32_t reserved;
  std::uint64_t start_time;  // clock ticks after boot (/proc/<pid>/stat), so a reused pid is not taken for it
};

struct SegmentTrailer {
  std::atomic<std::uint64_t> magic;  // written last at creation
  std::uint64_t size;
  RobustMutex mutex;  // guards everything below
  std::uint32_t auto_unlink;
  std::uint32_t unlinked;
  std::uint32_t untracked_owners;  // owners that found every slot taken: counted, not checked for life
  std::uint32_t reserved;
  std::array<SegmentOwner, 64> owners;
};

std::size_t trailer_offset(std::size_t size) noexcept { return (size + 63) / 64 * 64; }

std::string error_text() { return std::strerror(errno); }

std::string path_of(const std::string& name) { return std::string(shm_directory) + name; }

std::string checked_name(std::string name) {
  while (!name.empty() && name.front() == '/') name.erase(0, 1);
  if (name.empty() || name == "." || name == ".." || name.size() > max_name_size ||
      name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
    throw std::invalid_argument(
        fmt::format("SharedMemory: '{}' is not a valid segment name (1 to {} characters, no '/' after the first)", name,
                    max_name_size));
  return name;
}

std::string random_name() {
  std::uint32_t bits = 0;
  if (::getrandom(&bits, sizeof bits, 0) != static_cast<ssize_t>(sizeof bits))
    bits = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count() ^ ::getpid());
  return fmt::format("psm_{:08x}", bits);
}

/// Field 22 of /proc/<pid>/stat, and whether the process is a zombie; false if it cannot be read.
bool read_process_stat(int pid, std::uint64_t& start_time, bool& zombie) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char text[1024];
  const auto n = ::read(fd.get(), text, sizeof text - 1);
  if (n <= 0) return false;
  text[n] = '\0';
  // The command name (field 2) may contain spaces and parentheses: fields after it follow the last ')'.
  const char* p = std::strrchr(text, ')');
  if (p == nullptr) return false;
  ++p;
  int field = 2;
  while (*p != '\0' && field < 22) {
    while (*p == ' ') ++p;
    ++field;
    if (field == 3) zombie = (*p == 'Z' || *p == 'X');
    if (field == 22) return std::sscanf(p, "%" SCNu64, &start_time) == 1;
    while (*p != '\0' && *p != ' ') ++p;
  }
  return false;
}

struct ProcessIdentity {
  int pid;
  std::uint64_t start_time;  // 0 if /proc is not readable
};

ProcessIdentity this_process() {
  // Cached per process: a forked child has another pid and reads its own.
  static std::atomic<int> cached_pid{0};
  static std::atomic<std::uint64_t> cached_start{0};
  const int pid = ::getpid();
  if (cached_pid.load(std::memory_order_acquire) != pid) {
    std::uint64_t start = 0;
    bool zombie = false;
    if (!read_process_stat(pid, start, zombie)) start = 0;
    cached_start.store(start, std::memory_order_relaxed);
    cached_pid.store(pid, std::memory_order_release);
  }
  return {pid, cached_start.load(std::memory_order_relaxed)};
}

bool owner_alive(const SegmentOwner& owner, const ProcessIdentity& self) {
  if (owner.pid == self.pid) return owner.start_time == self.start_time;
  if (::kill(owner.pid, 0) != 0 && errno == ESRCH) return false;
  std::uint64_t start = 0;
  bool zombie = false;
  // Unreadable (/proc hidden or missing): alive, since removing the name of a segment in use is worse
  // than keeping one that is not.
  if (!read_process_stat(owner.pid, start, zombie)) return true;
  return !zombie && (owner.start_time == 0 || start == owner.start_time);
}

/// Holds the trailer's mutex; a holder that died is reported and its possibly half-written slot is then
/// checked like any other.
class TrailerLock {
 public:
  TrailerLock(SegmentTrailer& trailer, const std::string& name) : trailer_(trailer) {
    if (trailer_.mutex.lock_until() == RobustMutex::Locked::recovered)
      log_warning(fmt::format("SharedMemory '{}': a process ended while it was updating the list of owners", name));
  }
  ~TrailerLock() { trailer_.mutex.unlock(); }
  TrailerLock(const TrailerLock&) = delete;
  TrailerLock& operator=(const TrailerLock&) = delete;

 private:
  SegmentTrailer& trailer_;
};

/// Drops the owners that died; returns how many remain.
std::uint32_t live_owners(SegmentTrailer& trailer, const ProcessIdentity& self) {
  std::uint32_t live = trailer.untracked_owners;
  for (auto& owner : trailer.owners) {
    if (owner.pid == 0) continue;
    if (owner_alive(owner, self))
      ++live;
    else
      owner = SegmentOwner{};
  }
  return live;
}

/// Records this process as an owner; returns its slot, or -2 when it could only be counted.
int add_owner(SegmentTrailer& trailer, const ProcessIdentity& self) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (std::size_t i = 0; i < trailer.owners.size(); ++i) {
      if (trailer.owners[i].pid != 0) continue;
      trailer.owners[i] = SegmentOwner{self.pid, 0, self.start_time};
      return static_cast<int>(i);
    }
    live_owners(trailer, self);  // frees the slots of owners that died, then try again
  }
  ++trailer.untracked_owners;
  return -2;
}

class Mapping {
 public:
  Mapping(int fd, std::size_t length, const std::string& name) : length_(length) {
    data_ = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (data_ == MAP_FAILED) throw Error(fmt::format("SharedMemory '{}': cannot map it: {}", name, error_text()));
  }
  ~Mapping() {
    if (data_ != nullptr) ::munmap(data_, length_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  void* release() noexcept { return std::exchange(data_, nullptr); }
  void* get() const noexcept { return data_; }

 private:
  void* data_;
  std::size_t length_;
};

}  // namespace

/// One process's access to a segment, shared by the copies of a SharedMemory in that process.
class SharedMemorySegment {
 public:
  static std::shared_ptr<SharedMemorySegment> create(std::string name, std::size_t size, bool track);
  static std::shared_ptr<SharedMemorySegment> open(std::string name, bool track);
  static std::shared_ptr<SharedMemorySegment> adopt(UniqueFd fd, std::string name);

  ~SharedMemorySegment() { close(); }
  SharedMemorySegment(const SharedMemorySegment&) = delete;
  SharedMemorySegment& operator=(const SharedMemorySegment&) = delete;

  std::span<std::byte> buf() const {
    if (closed_.load(std::memory_order_acquire)) throw Error(fmt::format("SharedMemory.buf: '{}' is closed", name_));
    return {static_cast<std::byte*>(data_), size_};
  }
  const std::string& name() const noexcept { return name_; }
  std::size_t size() const noexcept { return size_; }
  int fd() const {
    std::lock_guard lock(mutex_);
    return fd_.get();
  }

  void close() noexcept;
  void unlink();

 private:
  SharedMemorySegment(UniqueFd fd, void* data, std::size_t length, std::string name);
  /// Removes the name if it still names this segment (and not one created under it since).
  void unlink_name() const;

  mutable std::mutex mutex_;
  UniqueFd fd_;
  void* data_;
  std::size_t length_;
  std::size_t size_;
  SegmentTrailer* trailer_ = nullptr;  // null for a segment another program made
  std::string name_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  int owner_slot_ = -1;  // -1: not an owner; -2: an owner without a slot
  int owner_pid_ = 0;    // a forked child's copy is not the owner its parent is
  std::atomic<bool> closed_{false};
};

SharedMemorySegment::SharedMemorySegment(UniqueFd fd, void* data, std::size_t length, std::string name)
    : fd_(std::move(fd)), data_(data), length_(length), size_(length), name_(std::move(name)) {
  struct stat info {};
  if (::fstat(fd_.get(), &info) == 0) {
    device_ = info.st_dev;
    inode_ = info.st_ino;
  }
  // Ours if the trailer says so and agrees with the file's length; otherwise another program's segment.
  if (length_ >= sizeof(SegmentTrailer)) {
    auto* trailer = reinterpret_cast<SegmentTrailer*>(static_cast<char*>(data_) + length_ - sizeof(SegmentTrailer));
    if ((length_ - sizeof(SegmentTrailer)) % alignof(SegmentTrailer) == 0 &&
        trailer->magic.load(std::memory_order_acquire) == trailer_magic &&
        trailer_offset(trailer->size) == length_ - sizeof(SegmentTrailer)) {
      trailer_ = trailer;
      size_ = trailer->size;
    }
  }
}

std::shared_ptr<SharedMemorySegment> SharedMemorySegment::create(std::string name, std::size_t size, bool track) {
  if (size == 0) throw std::invalid_argument("SharedMemory: size must be positive when creating a segment");
  const bool generated = name.empty();
  if (!generated) name = checked_name(std::move(name));
  if (size > (std::size_t{1} << 48))
    throw std::invalid_argument(fmt::format("SharedMemory: size {} is too large", size));
  const std::size_t length = trailer_offset(size) + sizeof(SegmentTrailer);

  UniqueFd fd(::open(std::string(shm_directory).c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd) throw Error(fmt::format("SharedMemory: cannot create a segment in {}: {}", shm_directory, error_text()));
  if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0)
    throw Error(fmt::format("SharedMemory: cannot size a segment to {} bytes: {}", length, error_text()));
  Mapping mapping(fd.get(), length, name);
  auto* trailer = new (static_cast<char*>(mapping.get()) + trailer_offset(size)) SegmentTrailer{};
  trailer->size = size;
  trailer->auto_unlink = track ? 1 : 0;
  trailer->magic.store(trailer_magic, std::memory_order_release);

  // Naming it is the last step: linkat fails rather than replace an existing name.
  const std::string proc_path = fmt::format("/proc/self/fd/{}", fd.get());
  for (int attempt = 0;; ++attempt) {
    if (generated) name = random_name();
    if (::linkat(AT_FDCWD, proc_path.c_str(), AT_FDCWD, path_of(name).c_str(), AT_SYMLINK_FOLLOW) == 0) break;
    if (errno == EEXIST && generated && attempt < 100) continue;
    if (errno == EEXIST) throw Error(fmt::format("SharedMemory: a segment named '{}' already exists", name));
    throw Error(fmt::format("SharedMemory: cannot name a segment '{}': {}", name, error_text()));
  }

  std::shared_ptr<SharedMemorySegment> segment(new SharedMemorySegment(std::move(fd), mapping.release(), length, name));
  if (track) {
    TrailerLock lock(*trailer, segment->name_);
    segment->owner_slot_ = add_owner(*trailer, this_process());
    segment->owner_pid_ = ::getpid();
  }
  return segment;
}

std::shared_ptr<SharedMemorySegment> SharedMemorySegment::open(std::string name, bool track) {
  name = checked_name(std::move(name));
  UniqueFd fd(::shm_open(("/" + name).c_str(), O_RDWR, 0600));
  if (!fd) {
    if (errno == ENOENT) throw Error(fmt::format("SharedMemory: no segment named '{}'", name));
    throw Error(fmt::format("SharedMemory: cannot open '{}': {}", name, error_text()));
  }
  auto segment = adopt(std::move(fd), std::move(name));
  if (track && segment->trailer_ && segment->trailer_->auto_unlink) {
    TrailerLock lock(*segment->trailer_, segment->name_);
    segment->owner_slot_ = add_owner(*segment->trailer_, this_process());
    segment->owner_pid_ = ::getpid();
  }
  return segment;
}

std::shared_ptr<SharedMemorySegment> SharedMemorySegment::adopt(UniqueFd fd, std::string name) {
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0)
    throw Error(fmt::format("SharedMemory: cannot inspect '{}': {}", name, error_text()));
  if (info.st_size <= 0) throw Error(fmt::format("SharedMemory: segment '{}' is empty", name));
  const auto length = static_cast<std::size_t>(info.st_size);
  Mapping mapping(fd.get(), length, name);
  return std::shared_ptr<SharedMemorySegment>(
      new SharedMemorySegment(std::move(fd), mapping.release(), length, std::move(name)));
}

void SharedMemorySegment::unlink_name() const {
  struct stat info {};
  if (::stat(path_of(name_).c_str(), &info) != 0 || info.st_dev != device_ || info.st_ino != inode_) return;
  if (::shm_unlink(("/" + name_).c_str()) != 0 && errno != ENOENT)
    log_warning(fmt::format("SharedMemory '{}': cannot remove the name: {}", name_, error_text()));
}

void SharedMemorySegment::close() noexcept {
  std::lock_guard lock(mutex_);
  if (closed_.exchange(true)) return;
  if (trailer_ && owner_slot_ != -1 && owner_pid_ == ::getpid()) {
    try {
      TrailerLock hold(*trailer_, name_);
      if (owner_slot_ >= 0)
        trailer_->owners[static_cast<std::size_t>(owner_slot_)] = SegmentOwner{};
      else if (trailer_->untracked_owners > 0)
        --trailer_->untracked_owners;
      if (trailer_->auto_unlink && !trailer_->unlinked && live_owners(*trailer_, this_process()) == 0) {
        trailer_->unlinked = 1;
        unlink_name();
      }
    } catch (const std::exception& e) {
      log_warning(fmt::format("SharedMemory '{}': close: {}", name_, e.what()));
    }
  }
  ::munmap(data_, length_);
  trailer_ = nullptr;
  fd_.reset();
}

void SharedMemorySegment::unlink() {
  std::lock_guard lock(mutex_);
  if (!closed_.load() && trailer_) {
    TrailerLock hold(*trailer_, name_);
    trailer_->unlinked = 1;
    unlink_name();
  } else {
    unlink_name();
  }
}

std::shared_ptr<SharedMemorySegment> adopt_segment(UniqueFd fd, std::string name) {
  return SharedMemorySegment::adopt(std::move(fd), std::move(name));
}

}  // namespace detail

SharedMemory::SharedMemory(std::string name, bool create, std::size_t size, bool track)
    : segment_(create ? detail::SharedMemorySegment::create(std::move(name), size, track)
                      : detail::SharedMemorySegment::open(std::move(name), track)) {}

std::span<std::byte> SharedMemory::buf() const { return segment_->buf(); }
const std::string& SharedMemory::name() const noexcept { return segment_->name(); }
std::size_t SharedMemory::size() const noexcept { return segment_->size(); }
void SharedMemory::close() { segment_->close(); }
void SharedMemory::unlink() { segment_->unlink(); }

int SharedMemory::fd_for_transfer() const {
  const int fd = segment_->fd();
  if (fd < 0) throw SerializationError(fmt::format("SharedMemory: cannot pass '{}' to a child: it is closed", name()));
  return fd;
}

}  // namespace cohort
