// What shared_ring.cpp and shared_ring_wait.cpp share: the control block every process maps, which the
// ring moves messages through and its waiters sleep on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cohort/detail/robust_mutex.hpp"

namespace cohort::detail {

/// Bit 0 of a futex word: set by a thread about to sleep; the rest counts wake-ups.
inline constexpr std::uint32_t ring_waiting_bit = 1;

/// A change a side is about to make to its position and counter. A process that dies between the two
/// stores leaves the record valid; the next holder of the lock (which comes back `recovered`) completes
/// the change if the position moved, and undoes it otherwise.
struct RingIntent {
  std::atomic<std::uint32_t> valid;
  std::uint64_t new_position;
  std::uint64_t old_count;
};

/// Where position p of the byte stream lives: at (p + shift) mod capacity. Capacity is a power of two.
struct RingLayout {
  std::uint64_t capacity;
  std::uint64_t shift;
};

struct RingControl {
  static constexpr std::size_t cache_line = 64;

  RingControl(std::uint64_t maxsize_, std::uint64_t element_type_);

  // Fixed at creation.
  std::uint64_t magic;
  std::uint64_t element_type;
  std::uint64_t maxsize;

  // Changed only while both locks are held: the unused slot is written, then its generation published.
  alignas(cache_line) std::atomic<std::uint32_t> layout_generation{0};
  RingLayout layouts[2] = {};

  // The producers' private lines: touched only by the holder of put_lock.
  alignas(cache_line) RobustMutex put_lock;
  std::uint64_t cached_head = 0;
  std::uint64_t cached_get_count = 0;
  RingIntent put_intent{};
  // What producers publish and consumers read.
  alignas(cache_line) std::atomic<std::uint64_t> tail{0};  // bytes ever committed
  std::atomic<std::uint64_t> put_count{0};                 // messages ever put (or being put)

  alignas(cache_line) RobustMutex get_lock;
  std::uint64_t cached_tail = 0;
  RingIntent get_intent{};
  alignas(cache_line) std::atomic<std::uint64_t> head{0};  // bytes ever consumed
  std::atomic<std::uint64_t> get_count{0};

  alignas(cache_line) std::atomic<std::uint64_t> done_count{0};  // task_done() calls

  // Futex words (ring_waiting_bit).
  alignas(cache_line) std::atomic<std::uint32_t> not_empty{0};
  alignas(cache_line) std::atomic<std::uint32_t> not_full{0};
  alignas(cache_line) std::atomic<std::uint32_t> all_done{0};
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "ring counters must be address-free atomics");

inline std::uint64_t ring_items(std::uint64_t put, std::uint64_t got) noexcept { return put > got ? put - got : 0; }

}  // namespace cohort::detail
