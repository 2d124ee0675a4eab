// SharedRing: the control block and the growable payload ring (its waits are in shared_ring_wait.cpp).
//
// Memory ordering, in short. A producer (holding the producers' lock) writes the message bytes, counts the
// message in put_count and publishes it with a release-store of tail; a consumer (holding the consumers'
// lock) acquire-loads tail, reads the bytes, counts the message in get_count and frees the bytes with a
// release-store of head. put_count is raised before tail and get_count only after tail was seen, so
// put_count - get_count never goes negative. Sleepers announce themselves with a read-modify-write of a
// futex word before they re-check their condition; wakers change the state, fence, and only then look at
// the word: one of the two always sees the other, so no wake-up is lost and nobody pays a system call
// when nobody sleeps.
#include "cohort/detail/shared_ring.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <new>

#include <fmt/format.h>

#include "cohort/codec.hpp"
#include "cohort/detail/futex.hpp"
#include "cohort/detail/robust_mutex.hpp"
#include "cohort/detail/shared_mapping.hpp"
#include "cohort/error.hpp"
#include "ipc/shared_ring_internal.hpp"

namespace cohort::detail {
namespace {

constexpr std::uint64_t ring_magic = 0x31474e4952484f43;  // "COHRING1"
/// The payload ring starts small and doubles whenever a message does not fit.
constexpr std::uint64_t initial_capacity = 128 * 1024;
constexpr std::uint64_t largest_capacity = std::uint64_t{1} << 46;
using Length = std::uint32_t;

}  // namespace

RingControl::RingControl(std::uint64_t maxsize_, std::uint64_t element_type_)
    : magic(ring_magic), element_type(element_type_), maxsize(maxsize_) {
  layouts[0] = {initial_capacity, 0};
}

/// This process's mapping of the payload, twice in a row, so that a message that wraps around the end of
/// the ring is still one contiguous range of addresses.
struct SharedRing::View {
  View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  ~View() { unmap(); }

  char* at(std::uint64_t position) const noexcept { return base + ((position + shift) & (capacity - 1)); }

  void unmap() noexcept {
    if (base) ::munmap(base, 2 * capacity);
    base = nullptr;
  }

  void replace(View& other) noexcept {
    unmap();
    generation = other.generation;
    base = std::exchange(other.base, nullptr);
    capacity = other.capacity;
    shift = other.shift;
  }

  std::uint32_t generation = 0;
  char* base = nullptr;
  std::uint64_t capacity = 0;
  std::uint64_t shift = 0;
};

namespace {

char* map_ring(int fd, std::uint64_t capacity, const char* name) {
  void* reserved = ::mmap(nullptr, 2 * capacity, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED)
    throw Error(
        fmt::format("{}: cannot reserve {} bytes of address space: {}", name, 2 * capacity, std::strerror(errno)));
  auto* base = static_cast<char*>(reserved);
  for (int copy = 0; copy < 2; ++copy) {
    // Populated now: faulting the pages in one by one as messages first touch them costs far more.
    void* half =
        ::mmap(base + copy * capacity, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0);
    if (half == MAP_FAILED) {
      const int error = errno;
      ::munmap(base, 2 * capacity);
      throw Error(fmt::format("{}: cannot map the queue's buffer: {}", name, std::strerror(error)));
    }
  }
  return base;
}

/// Reserves the memory up front: touching a page that a sparse memfd cannot back would be SIGBUS.
void allocate_ring(int fd, std::uint64_t offset, std::uint64_t length, const char* name) {
  int result = 0;
  do {
    result = ::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (result != 0 && errno == EINTR);
  if (result != 0)
    throw Error(fmt::format("{}.put: cannot grow the queue's buffer to {} bytes: {}", name, offset + length,
                            std::strerror(errno)));
}

void repair(RingIntent& intent, const std::atomic<std::uint64_t>& position, std::atomic<std::uint64_t>& count) {
  if (!intent.valid.load(std::memory_order_acquire)) return;
  const bool moved = position.load(std::memory_order_relaxed) == intent.new_position;
  count.store(intent.old_count + (moved ? 1 : 0), std::memory_order_release);
  intent.valid.store(0, std::memory_order_release);
}


/// Wakes every sleeper on `word`, if there is one. Called after the state change it announces.
void notify(std::atomic<std::uint32_t>& word) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::uint32_t seen = word.load(std::memory_order_relaxed);
  while (seen & ring_waiting_bit) {
    if (word.compare_exchange_weak(seen, (seen + 2) & ~ring_waiting_bit, std::memory_order_relaxed)) {
      futex_wake(word, INT_MAX);
      return;
    }
  }
}

/// Takes a robust mutex: try first (the common, uncontended case costs no clock read), then wait.
RobustMutex::Locked take(RobustMutex& mutex, std::optional<Clock::time_point> deadline) {
  const auto locked = mutex.try_lock();
  return locked != RobustMutex::Locked::no ? locked : mutex.lock_until(deadline);
}

class Unlocker {
 public:
  explicit Unlocker(RobustMutex& mutex) noexcept : mutex_(&mutex) {}
  ~Unlocker() { unlock(); }
  Unlocker(const Unlocker&) = delete;
  Unlocker& operator=(const Unlocker&) = delete;
  void unlock() noexcept {
    if (mutex_) std::exchange(mutex_, nullptr)->unlock();
  }

 private:
  RobustMutex* mutex_;
};

void check_size(std::size_t size, const char* name) {
  const std::uint64_t limit = std::min<std::uint64_t>(max_message_size(), std::numeric_limits<Length>::max());
  if (size > limit)
    throw SerializationError(fmt::format(
        "{}.put: message of {} bytes exceeds the limit of {} bytes (max_message_size())", name, size, limit));
}

std::uint64_t milliseconds(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

std::shared_ptr<SharedRing> SharedRing::create(std::uint64_t maxsize, std::uint64_t element_type, const char* name) {
  auto control = SharedMapping::create(sizeof(RingControl), "cohort-queue");
  UniqueFd ring(::memfd_create("cohort-queue-ring", MFD_CLOEXEC));
  if (!ring) throw Error(fmt::format("{}: memfd_create failed: {}", name, std::strerror(errno)));
  allocate_ring(ring.get(), 0, initial_capacity, name);
  new (control->data()) RingControl(maxsize, element_type);
  return std::make_shared<SharedRing>(std::move(control), std::move(ring), name);
}

std::shared_ptr<SharedRing> SharedRing::attach(UniqueFd control, UniqueFd ring, std::uint64_t element_type,
                                               const char* name) {
  auto mapping = SharedMapping::attach(std::move(control), sizeof(RingControl), name);
  const auto* block = static_cast<const RingControl*>(mapping->data());
  if (block->magic != ring_magic)
    throw SerializationError(fmt::format("{}: the received shared memory does not hold a queue", name));
  if (block->element_type != element_type)
    throw SerializationError(fmt::format("{}: the received queue holds elements of another type", name));
  return std::make_shared<SharedRing>(std::move(mapping), std::move(ring), name);
}

SharedRing::SharedRing(std::shared_ptr<SharedMapping> control, UniqueFd ring, const char* name)
    : control_mapping_(std::move(control)),
      control_(static_cast<RingControl*>(control_mapping_->data())),
      ring_fd_(std::move(ring)),
      name_(name),
      producer_view_(std::make_unique<View>()),
      consumer_view_(std::make_unique<View>()) {}

SharedRing::~SharedRing() = default;

int SharedRing::control_fd() const noexcept { return control_mapping_->fd(); }

std::uint64_t SharedRing::maxsize() const noexcept { return control_->maxsize; }

std::uint64_t SharedRing::qsize() const noexcept {
  // get_count first: every message it counts was already counted by put_count.
  const auto got = control_->get_count.load(std::memory_order_acquire);
  return ring_items(control_->put_count.load(std::memory_order_acquire), got);
}

bool SharedRing::empty() const noexcept {
  const auto head = control_->head.load(std::memory_order_acquire);
  return control_->tail.load(std::memory_order_acquire) == head;
}

bool SharedRing::full() const noexcept { return control_->maxsize != 0 && qsize() >= control_->maxsize; }

void SharedRing::close() noexcept { closed_by_pid_.store(::getpid(), std::memory_order_relaxed); }

bool SharedRing::closed() const noexcept {
  // getpid() only when some process closed it: a forked child inherits the flag but not the closing.
  const int pid = closed_by_pid_.load(std::memory_order_relaxed);
  return pid != 0 && pid == ::getpid();
}

void SharedRing::check_open(const char* operation) const {
  if (closed()) throw Error(fmt::format("{}.{}: the queue is closed", name_, operation));
}

void SharedRing::sync_view(View& view) {
  const auto generation = control_->layout_generation.load(std::memory_order_acquire);
  if (view.base && view.generation == generation) return;
  const RingLayout layout = control_->layouts[generation & 1];
  View fresh;
  fresh.base = map_ring(ring_fd_.get(), layout.capacity, name_);
  fresh.generation = generation;
  fresh.capacity = layout.capacity;
  fresh.shift = layout.shift;
  view.replace(fresh);
}

bool SharedRing::lock_producers(std::optional<Clock::time_point> deadline) {
  auto& c = *control_;
  const auto locked = take(c.put_lock, deadline);
  if (locked == RobustMutex::Locked::no) return false;
  if (locked == RobustMutex::Locked::recovered) repair(c.put_intent, c.tail, c.put_count);
  try {
    sync_view(*producer_view_);
  } catch (...) {
    c.put_lock.unlock();
    throw;
  }
  return true;
}

bool SharedRing::lock_consumers(std::optional<Clock::time_point> deadline) {
  auto& c = *control_;
  const auto locked = take(c.get_lock, deadline);
  if (locked == RobustMutex::Locked::no) return false;
  if (locked == RobustMutex::Locked::recovered) repair(c.get_intent, c.head, c.get_count);
  return true;
}

SharedRing::Attempt SharedRing::put_once(std::string_view message, std::optional<Clock::time_point> lock_deadline) {
  auto& c = *control_;
  if (!lock_producers(lock_deadline)) return Attempt::timed_out;
  Unlocker producers(c.put_lock);
  const auto count = c.put_count.load(std::memory_order_relaxed);
  if (c.maxsize != 0 && ring_items(count, c.cached_get_count) >= c.maxsize) {
    c.cached_get_count = c.get_count.load(std::memory_order_acquire);
    if (ring_items(count, c.cached_get_count) >= c.maxsize) return Attempt::no_room;
  }
  const auto tail = c.tail.load(std::memory_order_relaxed);
  const std::uint64_t need = sizeof(Length) + message.size();
  if (!make_room(tail, need, lock_deadline)) return Attempt::timed_out;

  char* at = producer_view_->at(tail);
  const auto length = static_cast<Length>(message.size());
  std::memcpy(at, &length, sizeof length);
  if (!message.empty()) std::memcpy(at + sizeof length, message.data(), message.size());

  c.put_intent.new_position = tail + need;
  c.put_intent.old_count = count;
  c.put_intent.valid.store(1, std::memory_order_release);
  c.put_count.store(count + 1, std::memory_order_release);
  c.tail.store(tail + need, std::memory_order_release);  // the commit
  c.put_intent.valid.store(0, std::memory_order_release);
  producers.unlock();
  notify(c.not_empty);
  return Attempt::done;
}

bool SharedRing::make_room(std::uint64_t tail, std::uint64_t need, std::optional<Clock::time_point> deadline) {
  auto& c = *control_;
  const auto capacity = producer_view_->capacity;
  if (capacity - (tail - c.cached_head) >= need) return true;
  c.cached_head = c.head.load(std::memory_order_acquire);
  if (capacity - (tail - c.cached_head) >= need) return true;
  return grow(tail, need, deadline);
}

bool SharedRing::grow(std::uint64_t tail, std::uint64_t need, std::optional<Clock::time_point> deadline) {
  auto& c = *control_;
  View& old = *producer_view_;
  // Consumers only ever free bytes, so a capacity that fits now still fits once they are locked out. The
  // slow part (allocating, zeroing and mapping the larger buffer) happens before that, while they go on.
  std::uint64_t capacity = old.capacity * 2;
  while (capacity < (tail - c.cached_head) + need) {
    if (capacity >= largest_capacity)
      throw Error(fmt::format("{}.put: the queue would need more than {} bytes", name_, largest_capacity));
    capacity *= 2;
  }
  allocate_ring(ring_fd_.get(), old.capacity, capacity - old.capacity, name_);
  View fresh;
  fresh.base = map_ring(ring_fd_.get(), capacity, name_);
  fresh.capacity = capacity;

  // Moving bytes needs the consumers out of the ring.
  if (!lock_consumers(deadline)) return false;
  Unlocker consumers(c.get_lock);
  const auto head = c.head.load(std::memory_order_acquire);
  c.cached_head = head;
  if (old.capacity - (tail - head) >= need) return true;  // consumers made room meanwhile

  // The live bytes sit at [start, old capacity) and, if they wrap, also at [0, wrapped). One of the two
  // parts stays where it is; the other is copied next to it, into bytes the old layout never used, so a
  // producer that dies while copying leaves the old layout intact (the new one exists once published).
  const auto live = tail - head;
  const auto start = (head + old.shift) & (old.capacity - 1);
  const auto before_wrap = std::min(live, old.capacity - start);
  const auto wrapped = live - before_wrap;
  if (wrapped <= before_wrap) {
    fresh.shift = (start - head) & (capacity - 1);  // head keeps its offset
    if (wrapped != 0) std::memcpy(fresh.base + old.capacity, fresh.base, wrapped);
  } else {
    fresh.shift = (0 - (head + before_wrap)) & (capacity - 1);  // the wrapped part keeps offset 0
    std::memcpy(fresh.base + capacity - before_wrap, fresh.base + start, before_wrap);
  }
  const auto generation = c.layout_generation.load(std::memory_order_relaxed) + 1;
  c.layouts[generation & 1] = {capacity, fresh.shift};
  c.layout_generation.store(generation, std::memory_order_release);
  fresh.generation = generation;
  old.replace(fresh);
  return true;
}

SharedRing::Attempt SharedRing::get_once(MessageSink sink, std::optional<Clock::time_point> lock_deadline) {
  auto& c = *control_;
  if (!lock_consumers(lock_deadline)) return Attempt::timed_out;
  Unlocker consumers(c.get_lock);
  const auto head = c.head.load(std::memory_order_relaxed);
  if (head == c.cached_tail) {
    c.cached_tail = c.tail.load(std::memory_order_acquire);
    if (head == c.cached_tail) return Attempt::no_room;
  }
  sync_view(*consumer_view_);
  const char* at = consumer_view_->at(head);
  Length length = 0;
  std::memcpy(&length, at, sizeof length);
  const std::uint64_t size = sizeof length + std::uint64_t{length};
  if (size > c.cached_tail - head)
    throw Error(fmt::format("{}.get: corrupt queue: a message of {} bytes where {} are committed", name_, length,
                            c.cached_tail - head));

  const auto count = c.get_count.load(std::memory_order_relaxed);
  auto commit = [&]() noexcept {
    c.get_intent.new_position = head + size;
    c.get_intent.old_count = count;
    c.get_intent.valid.store(1, std::memory_order_release);
    c.get_count.store(count + 1, std::memory_order_release);
    c.head.store(head + size, std::memory_order_release);  // the commit: the bytes are free again
    c.get_intent.valid.store(0, std::memory_order_release);
    consumers.unlock();
    if (c.maxsize != 0) notify(c.not_full);
  };
  try {
    sink.consume(sink.context, std::string_view(at + sizeof length, length));
  } catch (...) {
    commit();
    throw;
  }
  commit();
  return Attempt::done;
}

void SharedRing::put(std::string_view message, bool block, std::optional<Clock::duration> timeout) {
  check_open("put");
  check_size(message.size(), name_);
  const std::optional<Clock::time_point> deadline =
      block && timeout ? std::optional(Clock::now() + *timeout) : std::nullopt;
  for (;;) {
    const auto attempt = put_once(message, deadline);
    if (attempt == Attempt::done) return;
    if (attempt == Attempt::no_room && !block)
      throw Full(fmt::format("{}.put: the queue is full ({} items)", name_, control_->maxsize));
    if (attempt == Attempt::timed_out || !wait(Condition::not_full, deadline))
      throw Full(fmt::format("{}.put: the queue is still full after {} ms", name_, milliseconds(*timeout)));
  }
}

bool SharedRing::try_put(std::string_view message) {
  check_open("put");
  check_size(message.size(), name_);
  return put_once(message, std::nullopt) == Attempt::done;
}

void SharedRing::get(MessageSink sink, bool block, std::optional<Clock::duration> timeout) {
  check_open("get");
  const std::optional<Clock::time_point> deadline =
      block && timeout ? std::optional(Clock::now() + *timeout) : std::nullopt;
  for (;;) {
    const auto attempt = get_once(sink, deadline);
    if (attempt == Attempt::done) return;
    if (attempt == Attempt::no_room && !block) throw Empty(fmt::format("{}.get: the queue is empty", name_));
    if (attempt == Attempt::timed_out || !wait(Condition::not_empty, deadline))
      throw Empty(fmt::format("{}.get: timed out after {} ms", name_, milliseconds(*timeout)));
  }
}

bool SharedRing::try_get(MessageSink sink) {
  check_open("get");
  return get_once(sink, std::nullopt) == Attempt::done;
}

void SharedRing::task_done() {
  auto& c = *control_;
  auto done = c.done_count.load(std::memory_order_acquire);
  for (;;) {
    if (done >= c.put_count.load(std::memory_order_acquire))
      throw Error(fmt::format("{}.task_done: task_done() called too many times", name_));
    if (c.done_count.compare_exchange_weak(done, done + 1, std::memory_order_seq_cst)) break;
  }
  // Only the call that finishes the last task can make join()'s condition true.
  if (done + 1 >= c.put_count.load(std::memory_order_seq_cst)) notify(c.all_done);
}

void SharedRing::join() { wait(Condition::all_tasks_done, std::nullopt); }

namespace {

/// A put buffer keeps its capacity up to this size; one that held a larger message is given back.
constexpr std::size_t kept_buffer_capacity = 4 << 20;

struct ThreadPutBuffer {
  std::string bytes;
  bool busy = false;
};
thread_local ThreadPutBuffer thread_put_buffer;

}  // namespace

PutBuffer::PutBuffer() noexcept : bytes_(&own_), borrowed_(!thread_put_buffer.busy) {
  if (borrowed_) {
    thread_put_buffer.busy = true;
    bytes_ = &thread_put_buffer.bytes;
  }
  bytes_->clear();
}

PutBuffer::~PutBuffer() {
  if (!borrowed_) return;
  if (bytes_->capacity() > kept_buffer_capacity) std::string().swap(*bytes_);
  thread_put_buffer.busy = false;
}

}  // namespace cohort::detail
