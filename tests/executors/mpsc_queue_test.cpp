#include "cohort/detail/mpsc_queue.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace {

using cohort::detail::MpscNode;
using cohort::detail::MpscQueue;

struct Item : MpscNode {
  int producer = 0;
  int sequence = 0;
};

Item* pop_item(MpscQueue& queue) { return static_cast<Item*>(queue.pop()); }

TEST(MpscQueue, IsFifoForOneProducer) {
  MpscQueue queue;
  std::vector<Item> items(5);
  for (int i = 0; i < 5; ++i) {
    items[i].sequence = i;
    queue.push(&items[i]);
  }
  EXPECT_EQ(queue.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    auto* item = pop_item(queue);
    ASSERT_NE(item, nullptr);
    EXPECT_EQ(item->sequence, i);
  }
  EXPECT_EQ(queue.pop(), nullptr);
  EXPECT_EQ(queue.size(), 0u);
}

TEST(MpscQueue, EmptiesAndFillsAgain) {
  MpscQueue queue;
  Item a, b;
  for (int round = 0; round < 3; ++round) {
    queue.push(&a);
    EXPECT_EQ(queue.pop(), &a);
    EXPECT_EQ(queue.pop(), nullptr);
    queue.push(&a);
    queue.push(&b);
    EXPECT_EQ(queue.pop(), &a);
    EXPECT_EQ(queue.pop(), &b);
    EXPECT_EQ(queue.pop(), nullptr);
  }
}

// Four producers against one consumer: every item arrives once, and each producer's items in order.
TEST(MpscQueue, ManyProducersLoseNothingAndKeepEachProducersOrder) {
  constexpr int producers = 4;
  constexpr int per_producer = 50'000;
  MpscQueue queue;
  std::vector<std::unique_ptr<Item[]>> items;
  for (int p = 0; p < producers; ++p) items.push_back(std::make_unique<Item[]>(per_producer));
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        items[p][i].producer = p;
        items[p][i].sequence = i;
        queue.push(&items[p][i]);
      }
    });
  }
  std::vector<int> next(producers, 0);
  int received = 0;
  while (received < producers * per_producer) {
    auto* item = pop_item(queue);
    if (!item) continue;  // empty, or a push between its exchange and its link
    ASSERT_EQ(item->sequence, next[item->producer]) << "producer " << item->producer;
    ++next[item->producer];
    ++received;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(queue.pop(), nullptr);
  EXPECT_EQ(queue.size(), 0u);
}

}  // namespace
