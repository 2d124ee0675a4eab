#include "cohort/map_result.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <list>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cohort/thread_pool_executor.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Map, ResultsComeInInputOrder) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<int> inputs{5, 1, 4, 2, 3};
  std::vector<int> outputs;
  for (int x : pool.map(
           [](int v) {
             std::this_thread::sleep_for(std::chrono::milliseconds(v * 5));
             return v * 10;
           },
           inputs))
    outputs.push_back(x);
  EXPECT_EQ(outputs, (std::vector<int>{50, 10, 40, 20, 30}));
}

TEST(Map, ChunksizeGroupsWorkAndKeepsOrder) {
  cohort::ThreadPoolExecutor pool(2);
  std::vector<int> inputs(1000);
  for (int i = 0; i < 1000; ++i) inputs[i] = i;
  for (std::size_t chunksize : {1u, 3u, 64u, 1000u, 5000u}) {
    auto results = pool.map([](int v) { return v + 1; }, inputs, {.chunksize = chunksize}).collect();
    ASSERT_EQ(results.size(), 1000u);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(results[i], i + 1) << "chunksize " << chunksize;
  }
}

TEST(Map, AcceptsAnyInputRange) {
  cohort::ThreadPoolExecutor pool(1);
  const std::list<std::string> words{"a", "bb", "ccc"};
  auto sizes = pool.map([](const std::string& w) { return w.size(); }, words).collect();
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 2, 3}));
  auto empty = pool.map([](int v) { return v; }, std::vector<int>{}).collect();
  EXPECT_TRUE(empty.empty());
}

TEST(Map, ResultsAreLazy) {
  cohort::ThreadPoolExecutor pool(2);
  std::latch release(1);
  auto results = pool.map(
      [&](int v) {
        if (v == 2) release.wait();
        return v;
      },
      std::vector<int>{0, 1, 2});
  auto it = results.begin();
  EXPECT_EQ(*it, 0);  // available while the third item still blocks
  ++it;
  EXPECT_EQ(*it, 1);
  release.count_down();
  ++it;
  EXPECT_EQ(*it, 2);
  ++it;
  EXPECT_TRUE(it == results.end());
}

TEST(Map, ExceptionIsRaisedWhenIterationReachesIt) {
  cohort::ThreadPoolExecutor pool(2);
  auto results = pool.map(
      [](int v) {
        if (v == 2) throw std::invalid_argument("two");
        return v;
      },
      std::vector<int>{0, 1, 2, 3});
  auto it = results.begin();
  EXPECT_EQ(*it, 0);
  ++it;
  EXPECT_EQ(*it, 1);
  EXPECT_THROW(++it, std::invalid_argument);
}

TEST(Map, TimeoutCountsFromTheCall) {
  cohort::ThreadPoolExecutor pool(1);
  auto results = pool.map(
      [](int v) {
        std::this_thread::sleep_for(200ms);
        return v;
      },
      std::vector<int>{1, 2}, {.timeout = 50ms});
  EXPECT_THROW(results.begin(), cohort::TimeoutError);
}

TEST(Map, DroppingTheResultCancelsWorkNotStarted) {
  cohort::ThreadPoolExecutor pool(1);
  std::atomic<int> ran{0};
  {
    auto results = pool.map(
        [&](int v) {
          std::this_thread::sleep_for(20ms);
          ++ran;
          return v;
        },
        std::vector<int>(50, 1));
  }
  pool.shutdown();
  EXPECT_LT(ran.load(), 50);
}

}  // namespace
