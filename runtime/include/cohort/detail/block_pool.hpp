// A recycling allocator for the small, short-lived objects every task makes (a future's shared state
// with its work). A program that submits a hundred thousand tasks, drops their futures and submits again
// would otherwise have malloc give the memory back to the system after each batch and fault it in page
// by page for the next one, which costs more than everything else a tiny task does. Freed blocks are kept
// in per-thread caches and a shared reserve of bounded size (`block_pool_reserve_bytes`); what exceeds
// it goes back to malloc. Under AddressSanitizer every block comes straight from malloc, so that use
// after free is still caught.
#pragma once

#include <cstddef>
#include <new>

namespace cohort::detail {

/// Blocks up to this size are recycled; larger ones come from operator new directly.
inline constexpr std::size_t block_pool_max_size = 512;
/// The most the shared reserve keeps for reuse, over all sizes.
inline constexpr std::size_t block_pool_reserve_bytes = std::size_t{64} << 20;

void* block_pool_allocate(std::size_t bytes);
void block_pool_deallocate(void* block, std::size_t bytes) noexcept;

/// A standard allocator over the pool, for std::allocate_shared.
template <class T>
struct PoolAllocator {
  using value_type = T;
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "PoolAllocator: over-aligned type");

  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) { return static_cast<T*>(block_pool_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { block_pool_deallocate(p, n * sizeof(T)); }

  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace cohort::detail
