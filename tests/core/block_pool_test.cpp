#include "cohort/detail/block_pool.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace {

using cohort::detail::block_pool_allocate;
using cohort::detail::block_pool_deallocate;
using cohort::detail::block_pool_max_size;

TEST(BlockPool, BlocksAreDistinctWritableAndAligned) {
  std::vector<void*> blocks;
  std::set<void*> seen;
  for (std::size_t size : {1u, 16u, 63u, 64u, 65u, 200u, 512u, 513u, 4096u}) {
    for (int i = 0; i < 100; ++i) {
      void* block = block_pool_allocate(size);
      ASSERT_NE(block, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % alignof(std::max_align_t), 0u);
      std::memset(block, 0xab, size);
      EXPECT_TRUE(seen.insert(block).second);
      blocks.push_back(block);
    }
  }
  std::size_t k = 0;
  for (std::size_t size : {1u, 16u, 63u, 64u, 65u, 200u, 512u, 513u, 4096u})
    for (int i = 0; i < 100; ++i) block_pool_deallocate(blocks[k++], size);
}

// Blocks freed on another thread than the one that allocated them, in amounts beyond a thread's cache,
// come back intact: a block is never handed out twice.
TEST(BlockPool, BlocksCrossThreadsAndAreNeverHandedOutTwice) {
  constexpr int count = 5000;
  std::vector<std::uint64_t*> blocks(count);
  for (int i = 0; i < count; ++i) {
    blocks[i] = static_cast<std::uint64_t*>(block_pool_allocate(200));
    *blocks[i] = static_cast<std::uint64_t>(i);
  }
  std::thread freer([&] {
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(*blocks[i], static_cast<std::uint64_t>(i));
      block_pool_deallocate(blocks[i], 200);
    }
  });
  freer.join();
  std::set<void*> again;
  std::vector<void*> reused;
  for (int i = 0; i < count; ++i) {
    void* block = block_pool_allocate(200);
    EXPECT_TRUE(again.insert(block).second);
    reused.push_back(block);
  }
  for (void* block : reused) block_pool_deallocate(block, 200);
}

TEST(BlockPool, AllocatorWorksWithAllocateShared) {
  struct Payload {
    int a = 1;
    double b = 2;
  };
  auto p = std::allocate_shared<Payload>(cohort::detail::PoolAllocator<Payload>{});
  EXPECT_EQ(p->a, 1);
  std::weak_ptr<Payload> weak = p;
  p.reset();
  EXPECT_TRUE(weak.expired());
  static_assert(block_pool_max_size >= 256);
}

}  // namespace
