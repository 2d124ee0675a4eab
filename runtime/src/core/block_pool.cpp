// The block pool: per size class (multiples of 64 bytes), a stack of free blocks per thread and a shared
// reserve. A thread allocates from and frees to its own stack without locking; it trades whole batches
// with the reserve when its stack runs empty or full, so the reserve's mutex is taken once per batch.
#include "cohort/detail/block_pool.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

namespace cohort::detail {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool pooling = false;
#else
constexpr bool pooling = true;
#endif
#else
constexpr bool pooling = true;
#endif

constexpr std::size_t granule = 64;
constexpr std::size_t class_count = block_pool_max_size / granule;
constexpr std::size_t batch = 64;                   // blocks moved between a thread and the reserve at once
constexpr std::size_t thread_capacity = 4 * batch;  // a thread's stack beyond this gives a batch back

constexpr std::size_t size_class(std::size_t bytes) { return (bytes - 1) / granule; }
constexpr std::size_t class_bytes(std::size_t c) { return (c + 1) * granule; }

// Free blocks are kept as arrays of pointers, not as lists threaded through the blocks: taking or
// trading a batch then reads no freed block, where walking a list of cold blocks cost a cache miss per
// block, one after the other (a quarter of the time of a burst of actor messages went there).

struct Reserve {
  std::mutex mutex;
  std::array<std::vector<void*>, class_count> blocks{};
  std::size_t bytes = 0;
};

Reserve& reserve() {
  // Never destroyed: threads may free blocks while the program's statics are being torn down.
  static auto* instance = new Reserve;
  return *instance;
}

/// Hands `count` blocks of class `c` to the reserve, or back to malloc what the reserve has no room for.
void give_back(std::size_t c, void* const* blocks, std::size_t count) noexcept {
  auto& r = reserve();
  std::size_t kept = 0;
  {
    std::lock_guard lock(r.mutex);
    const std::size_t room = r.bytes >= block_pool_reserve_bytes ? 0 : (block_pool_reserve_bytes - r.bytes) / class_bytes(c);
    kept = std::min(room, count);
    try {
      r.blocks[c].insert(r.blocks[c].end(), blocks, blocks + kept);
      r.bytes += kept * class_bytes(c);
    } catch (...) {
      kept = 0;  // no memory for the reserve's array: the blocks go back to malloc
    }
  }
  for (std::size_t i = kept; i < count; ++i) ::operator delete(blocks[i]);
}

/// Up to a batch of class `c` from the reserve into `out`; returns how many.
std::size_t take_from_reserve(std::size_t c, void** out) {
  auto& r = reserve();
  std::lock_guard lock(r.mutex);
  auto& blocks = r.blocks[c];
  const std::size_t n = std::min(batch, blocks.size());
  std::copy(blocks.end() - static_cast<std::ptrdiff_t>(n), blocks.end(), out);
  blocks.resize(blocks.size() - n);
  r.bytes -= n * class_bytes(c);
  return n;
}

struct Stack {
  std::size_t count = 0;
  void* blocks[thread_capacity];
};

struct ThreadCache {
  std::array<Stack, class_count> stacks{};
  bool alive = true;

  ~ThreadCache() {
    alive = false;
    for (std::size_t c = 0; c < class_count; ++c)
      if (stacks[c].count > 0) give_back(c, stacks[c].blocks, std::exchange(stacks[c].count, 0));
  }
};

thread_local ThreadCache cache;

}  // namespace

void* block_pool_allocate(std::size_t bytes) {
  if (!pooling || bytes == 0 || bytes > block_pool_max_size) return ::operator new(bytes);
  const std::size_t c = size_class(bytes);
  if (cache.alive) {
    auto& stack = cache.stacks[c];
    if (stack.count == 0) stack.count = take_from_reserve(c, stack.blocks);
    if (stack.count > 0) return stack.blocks[--stack.count];
  }
  return ::operator new(class_bytes(c));
}

void block_pool_deallocate(void* block, std::size_t bytes) noexcept {
  if (!pooling || bytes == 0 || bytes > block_pool_max_size) return ::operator delete(block);
  const std::size_t c = size_class(bytes);
  if (!cache.alive) return give_back(c, &block, 1);
  auto& stack = cache.stacks[c];
  if (stack.count == thread_capacity) {
    // The oldest batch (at the bottom) goes; the newest blocks, likely still in cache, stay.
    give_back(c, stack.blocks, batch);
    std::copy(stack.blocks + batch, stack.blocks + thread_capacity, stack.blocks);
    stack.count -= batch;
  }
  stack.blocks[stack.count++] = block;
}

}  // namespace cohort::detail
