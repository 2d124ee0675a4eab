// The byte ring behind Queue, JoinableQueue and SimpleQueue: whole messages of bytes in shared memory that
// any number of producer and consumer processes (and their threads) exchange, in FIFO order.
//
// Two memfds: a control block (two robust mutexes, one per side, so producers contend only with producers
// and consumers with consumers; head and tail byte counters; item counters; futex words) and the payload
// ring, which grows when a message does not fit, so that a put on an unbounded queue never waits for a
// consumer. Every message is [u32 length | bytes]; a put becomes visible by one release-store of the tail
// after its bytes are written, so a producer killed mid-put leaves nothing half-written behind, and a
// consumer killed mid-get has not moved the head, so its message stays for the next one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cohort/detail/clock.hpp"
#include "cohort/detail/unique_fd.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

class SharedMapping;
struct RingControl;

/// Receives one message while the consumers' lock is held: the bytes are valid only during the call. If it
/// throws, the message is consumed all the same (a message that cannot be read must not block the queue).
struct MessageSink {
  void* context;
  void (*consume)(void* context, std::string_view message);
};

class SharedRing {
 public:
  /// What a waiter waits for.
  enum class Condition { not_empty, not_full, all_tasks_done };

  /// A new ring. `maxsize`: how many messages it may hold (0: unbounded). `name` ("Queue") prefixes errors
  /// and must be a string literal. `element_type` identifies the element type, checked by attach().
  static std::shared_ptr<SharedRing> create(std::uint64_t maxsize, std::uint64_t element_type, const char* name);
  /// The same ring in another process: the descriptors of control_fd() and ring_fd(). SerializationError if
  /// they do not hold a ring of `element_type`.
  static std::shared_ptr<SharedRing> attach(UniqueFd control, UniqueFd ring, std::uint64_t element_type,
                                            const char* name);

  SharedRing(std::shared_ptr<SharedMapping> control, UniqueFd ring, const char* name);
  ~SharedRing();
  SharedRing(const SharedRing&) = delete;
  SharedRing& operator=(const SharedRing&) = delete;

  int control_fd() const noexcept;
  int ring_fd() const noexcept { return ring_fd_.get(); }
  const char* name() const noexcept { return name_; }

  /// Appends one message. Only the item limit makes it wait: when maxsize messages are queued, Full at once
  /// if !block, else after waiting `timeout` (nullopt: as long as it takes).
  void put(std::string_view message, bool block, std::optional<Clock::duration> timeout);
  /// Appends one message unless the queue is full (false); may wait for the locks, never for room.
  bool try_put(std::string_view message);

  /// Removes the oldest message and hands it to `sink`. Empty at once if !block, else after `timeout`.
  void get(MessageSink sink, bool block, std::optional<Clock::duration> timeout);
  /// Hands the oldest message to `sink` and removes it; false (and no call) if there is none.
  bool try_get(MessageSink sink);

  std::uint64_t qsize() const noexcept;
  bool empty() const noexcept;
  bool full() const noexcept;
  std::uint64_t maxsize() const noexcept;

  /// JoinableQueue: one more message (of all ever put) is processed. Error past the number put.
  void task_done();
  /// Blocks until every message put so far has had its task_done().
  void join();

  /// This process puts and gets no more through this ring (Python: Queue.close()). Per process: a child
  /// started later by fork gets an open queue, as in Python.
  void close() noexcept;
  bool closed() const noexcept;
  /// Error "<name>.<operation>: the queue is closed" if close() was called in this process.
  void check_open(const char* operation) const;

  /// Whether `condition` holds now (it may stop holding at once: other processes run too).
  bool holds(Condition condition) const noexcept;
  /// Sleeps until `condition` holds (true), `deadline` passes (false) or `*stop` is set and wake_all() was
  /// called after it (true). Spins briefly first.
  bool wait(Condition condition, std::optional<Clock::time_point> deadline, const std::atomic<bool>* stop = nullptr);
  /// Wakes every waiter of `condition`, whatever it is waiting for: to stop a wait that has a stop flag.
  void wake_all(Condition condition) noexcept;

 private:
  struct View;
  enum class Attempt { done, no_room, timed_out };

  Attempt put_once(std::string_view message, std::optional<Clock::time_point> lock_deadline);
  Attempt get_once(MessageSink sink, std::optional<Clock::time_point> lock_deadline);
  bool lock_producers(std::optional<Clock::time_point> deadline);
  bool lock_consumers(std::optional<Clock::time_point> deadline);
  void sync_view(View& view);
  bool make_room(std::uint64_t tail, std::uint64_t need, std::optional<Clock::time_point> deadline);
  bool grow(std::uint64_t tail, std::uint64_t need, std::optional<Clock::time_point> deadline);

  std::shared_ptr<SharedMapping> control_mapping_;
  RingControl* control_;
  UniqueFd ring_fd_;
  const char* name_;
  // One view of the payload per side, each touched only by the thread holding that side's lock, so that a
  // producer remapping after growth never pulls the mapping out from under a consumer of this process.
  std::unique_ptr<View> producer_view_;
  std::unique_ptr<View> consumer_view_;
  std::atomic<int> closed_by_pid_{0};
};

/// Suspends the calling coroutine until `condition` holds, without blocking its event loop: a thread of its
/// own sleeps on the futex and completes a future the coroutine awaits. Cancelling the coroutine stops and
/// joins that thread; nothing is taken from the ring either way.
task<void> async_wait_until(std::shared_ptr<SharedRing> ring, SharedRing::Condition condition);

/// The calling thread's serialization buffer for puts, reused so that a stream of puts allocates nothing.
class PutBuffer {
 public:
  PutBuffer() noexcept;
  ~PutBuffer();
  PutBuffer(const PutBuffer&) = delete;
  PutBuffer& operator=(const PutBuffer&) = delete;
  std::string& bytes() noexcept { return *bytes_; }

 private:
  std::string own_;  // used instead when the thread's buffer is busy (a put from inside a serializer)
  std::string* bytes_;
  bool borrowed_;
};

}  // namespace cohort::detail
