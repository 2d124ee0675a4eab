// Queue, JoinableQueue and SimpleQueue (Python: multiprocessing.Queue, JoinableQueue, SimpleQueue): FIFO
// queues of values that any number of processes and threads put into and get from.
//
// The messages live in shared memory (detail::SharedRing), not in a pipe, and a put is done when it
// returns: there is no feeder thread, so a message put before its producer exits is never lost, and a
// producer killed in the middle of a put leaves the queue intact for the others. Copies of a queue share
// it; passed as an argument of a Process it is the same queue in the child, under every start method.
//
//   cohort::Queue<std::string> q(/*maxsize=*/8);      // 0: unbounded; a put never waits for a consumer
//   q.put("job");  q.put("job", true, 100ms);          // Full when still full after 100 ms
//   std::string s = q.get();  q.get(true, 1s);         // Empty when nothing came within 1 s
//   if (auto s = q.try_get()) ...                      // nullopt instead of Empty
//   co_await q.async_put("x");  auto y = co_await q.async_get();   // without blocking the event loop
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/shared_ring.hpp"
#include "cohort/detail/type_name.hpp"
#include "cohort/error.hpp"
#include "cohort/task.hpp"

namespace cohort {

namespace detail {

/// Types whose cereal binary form is just their bytes: their messages skip the archive machinery (the
/// bytes are the same either way), which is most of what a put or get of a small number costs.
template <class T>
inline constexpr bool is_raw_message = std::is_arithmetic_v<T> || std::is_enum_v<T>;

/// Serializes `value` into `out` (cleared first): the element type is fixed by the queue, so a message is
/// the bare cereal payload, without the codec's frame.
template <class T>
void encode_message(const T& value, std::string& out) {
  out.clear();
  if constexpr (is_raw_message<T>) {
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
  } else {
    try {
      BinaryWriter archive(out);
      archive(value);
    } catch (...) {
      rethrow_as_serialization_error(type_name<T>(), false);
    }
  }
}

/// A sink that decodes the message into `value`.
template <class T>
MessageSink decode_into(T& value) {
  return {&value, [](void* context, std::string_view bytes) {
            if constexpr (is_raw_message<T>) {
              if (bytes.size() != sizeof(T))
                throw SerializationError("reading " + std::string(type_name<T>()) + ": a message of " +
                                         std::to_string(bytes.size()) + " bytes, expected " +
                                         std::to_string(sizeof(T)));
              std::memcpy(context, bytes.data(), sizeof(T));
            } else {
              BinaryReader archive(bytes);
              try {
                archive(*static_cast<T*>(context));
              } catch (...) {
                rethrow_as_serialization_error(type_name<T>(), true);
              }
              if (archive.remaining() != 0) throw_trailing_bytes(type_name<T>(), archive.remaining());
            }
          }};
}

template <class T>
void put_value(SharedRing& ring, const T& value, bool block, std::optional<Clock::duration> timeout) {
  if constexpr (is_raw_message<T>) {
    ring.put(std::string_view(reinterpret_cast<const char*>(&value), sizeof value), block, timeout);
  } else {
    ring.check_open("put");
    PutBuffer buffer;
    encode_message(value, buffer.bytes());
    ring.put(buffer.bytes(), block, timeout);
  }
}

template <class T>
T get_value(SharedRing& ring, bool block, std::optional<Clock::duration> timeout) {
  T value{};
  ring.get(decode_into(value), block, timeout);
  return value;
}

template <class T>
std::optional<T> try_get_value(SharedRing& ring) {
  T value{};
  if (!ring.try_get(decode_into(value))) return std::nullopt;
  return value;
}

// Static coroutines holding their own reference to the ring: the task may outlive the queue object.
template <class T>
task<void> async_put_value(std::shared_ptr<SharedRing> ring, T value) {
  ring->check_open("async_put");
  std::string message;
  encode_message(value, message);
  while (!ring->try_put(message)) co_await async_wait_until(ring, SharedRing::Condition::not_full);
}

template <class T>
task<T> async_get_value(std::shared_ptr<SharedRing> ring) {
  for (;;) {
    // The waiting thread only watches for a message; taking it happens here, on the coroutine's own thread,
    // so a coroutine cancelled while it waits has taken nothing.
    if (auto value = try_get_value<T>(*ring)) co_return std::move(*value);
    co_await async_wait_until(ring, SharedRing::Condition::not_empty);
  }
}

/// cereal: a queue crosses to a child process as its two descriptors.
template <class Archive>
void save_ring(Archive& archive, const std::shared_ptr<SharedRing>& ring, const char* name) {
  archive(export_fd(ring->control_fd(), name), export_fd(ring->ring_fd(), name));
}

template <class T, class Archive>
std::shared_ptr<SharedRing> load_ring(Archive& archive, const char* name) {
  std::uint32_t control = 0;
  std::uint32_t payload = 0;
  archive(control, payload);
  return SharedRing::attach(import_fd(control, name), import_fd(payload, name), type_hash<T>, name);
}

}  // namespace detail

/// A process-shared FIFO queue of T (Python: multiprocessing.Queue). T must be serializable with cereal
/// and default-constructible. Every put() of one producer is got in the order it was put.
template <class T>
class Queue {
  static_assert(std::is_default_constructible_v<T>,
                "cohort::Queue<T>: T must be default-constructible so that get() can load into it");

 public:
  using value_type = T;

  /// A new queue holding at most `maxsize` items (0: unbounded, and put() never waits).
  explicit Queue(std::size_t maxsize = 0) : Queue(maxsize, "Queue") {}
  Queue(const Queue&) = default;  // copies are the same queue; moves copy too, so no handle is ever empty
  Queue& operator=(const Queue&) = default;

  /// Waits while the queue is full (block), or throws Full at once (!block).
  void put(const T& item, bool block = true) { detail::put_value(*ring_, item, block, std::nullopt); }
  /// Throws Full if the queue is still full after `timeout` (or at once if !block).
  template <class Rep, class Period>
  void put(const T& item, bool block, std::chrono::duration<Rep, Period> timeout) {
    detail::put_value(*ring_, item, block, detail::to_clock_duration(timeout));
  }
  void put_nowait(const T& item) { put(item, false); }

  /// The oldest item; waits for one (block) or throws Empty at once (!block).
  T get(bool block = true) { return detail::get_value<T>(*ring_, block, std::nullopt); }
  /// Throws Empty if nothing came within `timeout` (or at once if !block).
  template <class Rep, class Period>
  T get(bool block, std::chrono::duration<Rep, Period> timeout) {
    return detail::get_value<T>(*ring_, block, detail::to_clock_duration(timeout));
  }
  T get_nowait() { return get(false); }
  /// The oldest item, or nullopt if there is none right now.
  std::optional<T> try_get() { return detail::try_get_value<T>(*ring_); }

  /// Items in the queue (approximate while other processes put and get).
  std::size_t qsize() const noexcept { return static_cast<std::size_t>(ring_->qsize()); }
  bool empty() const noexcept { return ring_->empty(); }
  bool full() const noexcept { return ring_->full(); }
  std::size_t maxsize() const noexcept { return static_cast<std::size_t>(ring_->maxsize()); }

  /// This process will put and get no more through this queue; later calls throw Error. Other processes
  /// keep using it, and nothing already put is lost.
  void close() noexcept { ring_->close(); }
  /// Python waits here for its feeder thread to flush; a put here is complete when it returns, so there is
  /// nothing to wait for. Like Python, it is an error (Error) to call it on a queue not closed.
  void join_thread() const {
    if (!ring_->closed())
      throw Error(std::string(ring_->name()) + ".join_thread: the queue is not closed; call close() first");
  }
  /// Python's way to exit without flushing; with synchronous puts nothing is ever pending, so it does nothing.
  void cancel_join_thread() const noexcept {}

  /// put() and get() for coroutines: when they must wait, a helper thread sleeps instead of the event
  /// loop. A cancelled async_get has taken nothing; a cancelled async_put has put nothing.
  task<void> async_put(T item) { return detail::async_put_value(ring_, std::move(item)); }
  task<T> async_get() { return detail::async_get_value<T>(ring_); }

  template <class Archive>
  void save(Archive& archive) const {
    detail::save_ring(archive, ring_, ring_->name());
  }
  template <class Archive>
  void load(Archive& archive) {
    ring_ = detail::load_ring<T>(archive, ring_->name());
  }

 protected:
  Queue(std::size_t maxsize, const char* name)
      : ring_(detail::SharedRing::create(maxsize, detail::type_hash<T>, name)) {}

  std::shared_ptr<detail::SharedRing> ring_;
};

/// A Queue whose consumers report each item done (Python: multiprocessing.JoinableQueue).
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(std::size_t maxsize = 0) : Queue<T>(maxsize, "JoinableQueue") {}

  /// One item got earlier is processed. Error "task_done() called too many times" beyond the items put.
  void task_done() { this->ring_->task_done(); }
  /// Waits until every item put so far has been got and marked done.
  void join() { this->ring_->join(); }
  task<void> async_join() {
    return detail::async_wait_until(this->ring_, detail::SharedRing::Condition::all_tasks_done);
  }
};

/// An unbounded queue with just put, get, empty and close (Python: multiprocessing.SimpleQueue).
template <class T>
class SimpleQueue {
  static_assert(std::is_default_constructible_v<T>,
                "cohort::SimpleQueue<T>: T must be default-constructible so that get() can load into it");

 public:
  using value_type = T;

  SimpleQueue() : ring_(detail::SharedRing::create(0, detail::type_hash<T>, "SimpleQueue")) {}
  SimpleQueue(const SimpleQueue&) = default;
  SimpleQueue& operator=(const SimpleQueue&) = default;

  void put(const T& item) { detail::put_value(*ring_, item, true, std::nullopt); }
  T get() { return detail::get_value<T>(*ring_, true, std::nullopt); }
  bool empty() const noexcept { return ring_->empty(); }
  void close() noexcept { ring_->close(); }

  template <class Archive>
  void save(Archive& archive) const {
    detail::save_ring(archive, ring_, ring_->name());
  }
  template <class Archive>
  void load(Archive& archive) {
    ring_ = detail::load_ring<T>(archive, ring_->name());
  }

 private:
  std::shared_ptr<detail::SharedRing> ring_;
};

}  // namespace cohort
