// The block pool: per size class (multiples of 64 bytes), a free list per thread and a shared reserve.
// A thread allocates from and frees to its own list without locking; it trades whole batches with the
// reserve when its list runs empty or grows long, so the reserve's mutex is taken once per batch.
#include "cohort/detail/block_pool.hpp"

#include <array>
#include <algorithm>
#include <mutex>
#include <utility>

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
constexpr std::size_t batch = 64;              // blocks moved between a thread and the reserve at once
constexpr std::size_t thread_limit = 4 * batch;  // a thread's list beyond this gives a batch back

struct FreeBlock {
  FreeBlock* next;
};

constexpr std::size_t size_class(std::size_t bytes) { return (bytes - 1) / granule; }
constexpr std::size_t class_bytes(std::size_t c) { return (c + 1) * granule; }

/// A chain of free blocks; the reserve keeps whole batches so that trading one is a pointer swap.
struct Chain {
  FreeBlock* first = nullptr;
  FreeBlock* last = nullptr;
  std::size_t count = 0;

  void push(FreeBlock* block) {
    block->next = first;
    first = block;
    if (!last) last = block;
    ++count;
  }
  FreeBlock* pop() {
    FreeBlock* block = first;
    first = block->next;
    if (!first) last = nullptr;
    --count;
    return block;
  }
  /// Moves the first n blocks into a chain of their own.
  Chain split(std::size_t n) {
    Chain head;
    head.first = first;
    FreeBlock* end = first;
    for (std::size_t i = 1; i < n; ++i) end = end->next;
    head.last = end;
    head.count = n;
    first = end->next;
    end->next = nullptr;
    if (!first) last = nullptr;
    count -= n;
    return head;
  }
  void append(Chain other) {
    if (!other.first) return;
    if (last) {
      last->next = other.first;
    } else {
      first = other.first;
    }
    last = other.last;
    count += other.count;
  }
};

struct Reserve {
  std::mutex mutex;
  std::array<Chain, class_count> chains{};
  std::size_t bytes = 0;
};

Reserve& reserve() {
  // Never destroyed: threads may free blocks while the program's statics are being torn down.
  static auto* instance = new Reserve;
  return *instance;
}

void release(Chain chain) noexcept {
  while (chain.first) ::operator delete(chain.pop());
}

/// Hands a chain to the reserve, or back to malloc what the reserve has no room for.
void give_back(std::size_t c, Chain chain) noexcept {
  auto& r = reserve();
  {
    std::lock_guard lock(r.mutex);
    const std::size_t room = r.bytes >= block_pool_reserve_bytes ? 0 : (block_pool_reserve_bytes - r.bytes) / class_bytes(c);
    const std::size_t kept = std::min(room, chain.count);
    if (kept > 0) {
      r.bytes += kept * class_bytes(c);
      r.chains[c].append(chain.split(kept));
    }
  }
  release(chain);
}

Chain take_from_reserve(std::size_t c) {
  auto& r = reserve();
  std::lock_guard lock(r.mutex);
  auto& chain = r.chains[c];
  const std::size_t n = std::min(batch, chain.count);
  if (n == 0) return {};
  r.bytes -= n * class_bytes(c);
  return chain.split(n);
}

struct ThreadCache {
  std::array<Chain, class_count> chains{};
  bool alive = true;

  ~ThreadCache() {
    alive = false;
    for (std::size_t c = 0; c < class_count; ++c)
      if (chains[c].count > 0) give_back(c, std::exchange(chains[c], {}));
  }
};

thread_local ThreadCache cache;

}  // namespace

void* block_pool_allocate(std::size_t bytes) {
  if (!pooling || bytes == 0 || bytes > block_pool_max_size) return ::operator new(bytes);
  const std::size_t c = size_class(bytes);
  if (cache.alive) {
    auto& chain = cache.chains[c];
    if (chain.count == 0) chain = take_from_reserve(c);
    if (chain.count > 0) return chain.pop();
  }
  return ::operator new(class_bytes(c));
}

void block_pool_deallocate(void* block, std::size_t bytes) noexcept {
  if (!pooling || bytes == 0 || bytes > block_pool_max_size) return ::operator delete(block);
  const std::size_t c = size_class(bytes);
  auto* free_block = static_cast<FreeBlock*>(block);
  if (!cache.alive) {
    Chain single;
    single.push(free_block);
    return give_back(c, single);
  }
  auto& chain = cache.chains[c];
  chain.push(free_block);
  if (chain.count > thread_limit) give_back(c, chain.split(batch));
}

}  // namespace cohort::detail
