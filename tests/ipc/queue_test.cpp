#include "cohort/queue.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/detail/binary_archive.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/error.hpp"
#include "cohort/process.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"
#include "cohort/wait_for.hpp"
#include "resource_check.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Item = std::pair<int, int>;  // (producer, sequence number)

// How late a timed wait may return. Never early is checked exactly; late is bounded loosely because the
// suite runs two tests at once on two cores, where the scheduler alone has delayed a wake-up by 36 ms
// (idle, timed waits return within a few milliseconds). What it catches is a deadline not honoured: a wait
// that sleeps its whole timeout again or a fixed poll period past it.
constexpr auto timeout_slack = 100ms;

std::size_t entries_in(const char* directory) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory)) ++n;
  return n;
}

void start_all(std::deque<cohort::Process>& processes) {
  for (auto& p : processes) p.start();
}

void join_all_cleanly(std::deque<cohort::Process>& processes) {
  for (auto& p : processes) {
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
}

void run_to_completion(cohort::Process& p) {
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

/// The scheduling state of a process ('S': asleep in a system call), from /proc/<pid>/stat.
char process_state(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? '?' : text[paren + 2];
}

struct Order {
  std::string customer;
  std::vector<double> prices;
  std::map<std::string, int> counts;
  bool operator==(const Order&) const = default;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(customer, prices, counts);
  }
};

// --- one process ---------------------------------------------------------------------------------------

TEST(Queue, EveryPutAndGetFormKeepsFifoOrder) {
  cohort::Queue<int> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.maxsize(), 0u);
  for (int i = 0; i < 5; ++i) q.put(i);
  q.put(5, true);
  q.put(6, true, 10ms);
  q.put(7, false, 10ms);
  q.put_nowait(8);
  EXPECT_EQ(q.qsize(), 9u);
  EXPECT_FALSE(q.empty());
  EXPECT_FALSE(q.full());  // unbounded
  EXPECT_EQ(q.get(), 0);
  EXPECT_EQ(q.get(true), 1);
  EXPECT_EQ(q.get(false), 2);
  EXPECT_EQ(q.get(true, 10ms), 3);
  EXPECT_EQ(q.get(false, 10ms), 4);
  EXPECT_EQ(q.get_nowait(), 5);
  EXPECT_EQ(q.try_get(), std::optional<int>(6));
  EXPECT_EQ(q.get(), 7);
  EXPECT_EQ(q.get(), 8);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_THROW(q.get_nowait(), cohort::Empty);
  EXPECT_THROW(q.get(false), cohort::Empty);
}

TEST(Queue, CarriesAnyCerealSerializableType) {
  cohort::Queue<Order> orders;
  const Order order{"alice", {9.5, 0.25}, {{"apples", 3}, {"pears", 0}}};
  orders.put(order);
  orders.put(Order{});
  EXPECT_EQ(orders.get(), order);
  EXPECT_EQ(orders.get(), Order{});

  cohort::Queue<std::string> words;
  words.put("");
  words.put(std::string("\0binary\0", 8));
  EXPECT_EQ(words.get(), "");
  EXPECT_EQ(words.get(), std::string("\0binary\0", 8));
}

TEST(Queue, MessagesOfMixedSizesStayInOrderWhileTheBufferWrapsAndGrows) {
  // Sizes from bytes to several times the initial buffer, with the queue's fill going up and down, so the
  // buffer wraps and grows with its contents in every position.
  std::mt19937 random(2024);
  cohort::Queue<std::string> q;
  std::deque<std::string> expected;
  int next = 0;
  for (int step = 0; step < 3000; ++step) {
    const bool put = expected.empty() || random() % 100 < (step % 1000 < 600 ? 60 : 40);
    if (put) {
      const std::size_t size = random() % 50 == 0 ? 100000 + random() % 400000 : random() % 20000;
      expected.push_back(std::to_string(next++) + ":" + std::string(size, static_cast<char>('a' + next % 26)));
      q.put(expected.back());
    } else {
      ASSERT_EQ(q.get_nowait(), expected.front()) << "step " << step;
      expected.pop_front();
    }
    ASSERT_EQ(q.qsize(), expected.size());
  }
  while (!expected.empty()) {
    ASSERT_EQ(q.get_nowait(), expected.front());
    expected.pop_front();
  }
  EXPECT_TRUE(q.empty());
}

TEST(Queue, MaxsizeBoundsItemsAndTimeoutsAreHonoured) {
  cohort::Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2u);
  q.put(1);
  q.put(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), cohort::Full);
  EXPECT_THROW(q.put(3, false), cohort::Full);
  EXPECT_THROW(q.put(3, false, 1s), cohort::Full);  // !block: at once, whatever the timeout

  auto start = Clock::now();
  try {
    q.put(3, true, 100ms);
    FAIL() << "put on a full queue returned";
  } catch (const cohort::Full& e) {
    EXPECT_NE(std::string(e.what()).find("Queue.put"), std::string::npos) << e.what();
  }
  auto waited = Clock::now() - start;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 100ms + timeout_slack);
  EXPECT_EQ(q.qsize(), 2u);

  EXPECT_EQ(q.get(), 1);
  EXPECT_FALSE(q.full());
  q.put(3, true, 100ms);
  EXPECT_EQ(q.get(), 2);
  EXPECT_EQ(q.get(), 3);

  start = Clock::now();
  EXPECT_THROW(q.get(true, 100ms), cohort::Empty);
  waited = Clock::now() - start;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 100ms + timeout_slack);

  start = Clock::now();
  EXPECT_THROW(q.get(true, 0ms), cohort::Empty);
  EXPECT_THROW(q.get(false, 1s), cohort::Empty);
  EXPECT_LT(Clock::now() - start, 10ms);
}

TEST(Queue, ABlockedPutResumesWhenAConsumerMakesRoom) {
  cohort::Queue<int> q(1);
  q.put(1);
  std::thread producer([q]() mutable { q.put(2); });  // waits: the queue is full
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 2);  // waits for the producer's put, which waited for the first get
  producer.join();
}

TEST(Queue, CloseEndsPutsAndGetsOfThisProcessOnly) {
  cohort::Queue<int> q;
  cohort::Queue<int> results;
  q.put(1);
  EXPECT_THROW(q.join_thread(), cohort::Error);  // as Python: join_thread needs close first
  cohort::Queue<int> copy = q;
  q.close();
  q.join_thread();
  q.cancel_join_thread();
  try {
    copy.put(2);  // a copy is the same queue
    FAIL() << "put after close";
  } catch (const cohort::Error& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
  EXPECT_THROW(q.get(), cohort::Error);
  // Another process still uses it, and the item put before close is there.
  cohort::Process child([](cohort::Queue<int> q, cohort::Queue<int> results) { results.put(q.get() + 10); }, q,
                        results);
  run_to_completion(child);
  EXPECT_EQ(results.get(), 11);
}

TEST(Queue, MessagesBeyondMaxMessageSizeAreRefused) {
  const auto previous = cohort::max_message_size();
  cohort::set_max_message_size(1024);
  cohort::Queue<std::string> q;
  EXPECT_THROW(q.put(std::string(2048, 'x')), cohort::SerializationError);
  q.put(std::string(100, 'y'));
  cohort::set_max_message_size(previous);
  EXPECT_EQ(q.get(), std::string(100, 'y'));
  EXPECT_TRUE(q.empty());
}

TEST(Queue, ThreadsOfOneProcessShareIt) {
  constexpr int per_producer = 20000;
  cohort::Queue<Item> q(8);
  std::vector<std::vector<Item>> seen(2);
  std::vector<std::thread> threads;
  for (int c = 0; c < 2; ++c)
    threads.emplace_back([q, &got = seen[c]]() mutable {
      for (Item item = q.get(); item.first >= 0; item = q.get()) got.push_back(item);
    });
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([q, p]() mutable {
      for (int i = 0; i < per_producer; ++i) q.put({p, i});
    });
  threads[2].join();
  threads[3].join();
  q.put({-1, 0});
  q.put({-1, 0});
  threads[0].join();
  threads[1].join();
  std::set<Item> all;
  for (const auto& got : seen) {
    std::vector<int> last(2, -1);
    for (const auto& [producer, seq] : got) {
      EXPECT_GT(seq, last[producer]) << "producer " << producer;
      last[producer] = seq;
      all.insert({producer, seq});
    }
  }
  EXPECT_EQ(seen[0].size() + seen[1].size(), 2u * per_producer);
  EXPECT_EQ(all.size(), 2u * per_producer);
}

TEST(Queue, CrossesAnFdTransferScopeAsTheSameQueue) {
  cohort::Queue<int> q;
  std::vector<cohort::detail::UniqueFd> fds;
  std::string bytes;
  {
    cohort::detail::FdTransferScope scope(fds);
    cohort::detail::BinaryWriter writer(bytes);
    writer(q);
  }
  EXPECT_EQ(fds.size(), 2u);
  cohort::Queue<int> received;
  {
    cohort::detail::FdTransferScope scope(fds);
    cohort::detail::BinaryReader reader(bytes);
    reader(received);
  }
  q.put(1);
  EXPECT_EQ(received.get(), 1);
  received.put(2);
  EXPECT_EQ(q.get(), 2);

  cohort::Queue<std::string> other_type;
  {
    cohort::detail::FdTransferScope scope(fds);
    cohort::detail::BinaryReader reader(bytes);
    EXPECT_THROW(reader(other_type), cohort::SerializationError);
  }
  // Outside a transfer (in a message, in a file) a queue cannot be written.
  std::string message;
  cohort::detail::BinaryWriter writer(message);
  EXPECT_THROW(writer(q), cohort::SerializationError);
}

// --- across processes ----------------------------------------------------------------------------------

void produce_items(cohort::Queue<Item> q, int producer, int count) {
  for (int i = 0; i < count; ++i) q.put({producer, i});
}

void consume_items(cohort::Queue<Item> q, cohort::Queue<std::vector<Item>> results) {
  std::vector<Item> got;
  for (Item item = q.get(); item.first >= 0; item = q.get()) got.push_back(item);
  results.put(got);
}

void check_four_by_four(std::size_t maxsize) {
  constexpr int producers = 4;
  constexpr int consumers = 4;
  constexpr int per_producer = 5000;
  cohort::Queue<Item> q(maxsize);
  cohort::Queue<std::vector<Item>> results;
  std::deque<cohort::Process> consumer_processes;
  std::deque<cohort::Process> producer_processes;
  for (int c = 0; c < consumers; ++c) consumer_processes.emplace_back(consume_items, q, results);
  for (int p = 0; p < producers; ++p) producer_processes.emplace_back(produce_items, q, p, per_producer);
  start_all(consumer_processes);
  start_all(producer_processes);
  join_all_cleanly(producer_processes);
  for (int c = 0; c < consumers; ++c) q.put({-1, 0});

  std::set<Item> all;
  std::size_t total = 0;
  for (int c = 0; c < consumers; ++c) {
    const auto got = results.get(true, 30s);
    std::vector<int> last(producers, -1);
    for (const auto& [producer, seq] : got) {
      ASSERT_GE(producer, 0);
      ASSERT_LT(producer, producers);
      EXPECT_GT(seq, last[producer]) << "items of producer " << producer << " out of order";
      last[producer] = seq;
      all.insert({producer, seq});
    }
    total += got.size();
  }
  join_all_cleanly(consumer_processes);
  EXPECT_EQ(total, std::size_t{producers} * per_producer);       // none twice
  EXPECT_EQ(all.size(), std::size_t{producers} * per_producer);  // none lost
  EXPECT_TRUE(q.empty());
}

TEST(Queue, FourProducersAndFourConsumersGetEveryItemOnceInProducerOrder) { check_four_by_four(0); }

TEST(Queue, BoundedQueueWithFourProducersAndFourConsumers) { check_four_by_four(16); }

TEST(Queue, UnboundedPutsNeverWaitForAConsumer) {
  constexpr int count = 100000;
  cohort::Queue<int> q;
  cohort::Queue<long> results;
  for (int i = 0; i < count; ++i) q.put(i);  // no consumer exists yet
  EXPECT_EQ(q.qsize(), std::size_t{count});
  cohort::Process consumer(
      [](cohort::Queue<int> q, cohort::Queue<long> results, int count) {
        long sum = 0;
        for (int i = 0; i < count; ++i) {
          const int v = q.get();
          if (v != i) std::_Exit(7);
          sum += v;
        }
        results.put(sum);
      },
      q, results, count);
  run_to_completion(consumer);
  EXPECT_EQ(results.get(), long{count} * (count - 1) / 2);
  EXPECT_TRUE(q.empty());
}

std::string pattern(std::size_t size, int seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(seed)) % 251);
  return s;
}

TEST(Queue, MessagesOfSeveralMebibytesArriveWhole) {
  constexpr std::size_t size = 4 << 20;
  cohort::Queue<std::string> q;
  cohort::Queue<std::string> replies;
  for (int seed = 0; seed < 3; ++seed) q.put(pattern(size, seed));
  cohort::Process echo(
      [](cohort::Queue<std::string> q, cohort::Queue<std::string> replies) {
        for (int seed = 0; seed < 3; ++seed)
          if (q.get() != pattern(4 << 20, seed)) std::_Exit(7);
        replies.put(pattern(4 << 20, 9));
      },
      q, replies);
  run_to_completion(echo);
  EXPECT_EQ(replies.get(), pattern(size, 9));
}

TEST(Queue, AMessagePutJustBeforeTheProducerExitsIsNeverLost) {
  cohort::Queue<int> q;
  cohort::Process producer(
      [](cohort::Queue<int> q) {
        for (int i = 0; i < 1000; ++i) q.put(i);
        std::_Exit(0);  // no flushing at exit: there is nothing to flush
      },
      q);
  run_to_completion(producer);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(q.get_nowait(), i);
  EXPECT_TRUE(q.empty());
}

// Message `seq` of the flooding producer: its length and every element follow from seq, so a torn message
// cannot pass for a whole one.
std::vector<std::uint64_t> flood_message(std::uint64_t seq) {
  std::vector<std::uint64_t> v(1 + (seq * 7919) % 16384);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = seq * 1000003 + i;
  return v;
}

bool is_whole(const std::vector<std::uint64_t>& v) { return !v.empty() && v == flood_message(v[0] / 1000003); }

TEST(Queue, AProducerKilledInTheMiddleOfPutsLeavesAQueueOthersKeepUsing) {
  std::mt19937 random(12345);
  for (int round = 0; round < 8; ++round) {
    cohort::Queue<std::vector<std::uint64_t>> q(round % 2 == 0 ? 8 : 0);
    cohort::Process flood(
        [](cohort::Queue<std::vector<std::uint64_t>> q) {
          for (std::uint64_t seq = 0;; ++seq) q.put(flood_message(seq));
        },
        q);
    flood.start();
    const int before_kill = 1 + static_cast<int>(random() % 40);
    for (int i = 0; i < before_kill; ++i) ASSERT_TRUE(is_whole(q.get(true, 10s)));
    flood.kill();
    flood.join();
    std::size_t drained = 0;
    while (auto v = q.try_get()) {
      ASSERT_TRUE(is_whole(*v)) << "round " << round;
      ++drained;
    }
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.qsize(), 0u) << "round " << round << ", drained " << drained;
    // Both locks work again: another producer and this consumer carry on.
    cohort::Process next(
        [](cohort::Queue<std::vector<std::uint64_t>> q) {
          for (std::uint64_t seq = 100; seq < 105; ++seq) q.put(flood_message(seq));
        },
        q);
    run_to_completion(next);
    for (std::uint64_t seq = 100; seq < 105; ++seq) EXPECT_EQ(q.get(true, 10s), flood_message(seq));
  }
}

TEST(Queue, AConsumerKilledWhileWaitingLosesNothing) {
  cohort::Queue<int> q;
  cohort::Queue<int> ready;
  cohort::Process waiter(
      [](cohort::Queue<int> q, cohort::Queue<int> ready) {
        ready.put(1);
        q.get();
        std::_Exit(7);  // never reached: it is killed while it waits
      },
      q, ready);
  waiter.start();
  EXPECT_EQ(ready.get(true, 30s), 1);
  const auto limit = Clock::now() + 10s;
  while (process_state(waiter.pid()) != 'S' && Clock::now() < limit) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(process_state(waiter.pid()), 'S');
  waiter.kill();
  waiter.join();
  q.put(42);
  cohort::Process next([](cohort::Queue<int> q, cohort::Queue<int> results) { results.put(q.get()); }, q, ready);
  run_to_completion(next);
  EXPECT_EQ(ready.get(true, 10s), 42);
  EXPECT_TRUE(q.empty());
}

TEST(SimpleQueue, PutGetEmptyAndCloseAcrossProcesses) {
  cohort::SimpleQueue<std::string> requests;
  cohort::SimpleQueue<std::string> replies;
  EXPECT_TRUE(requests.empty());
  requests.put("ping");
  requests.put("");
  EXPECT_FALSE(requests.empty());
  cohort::Process echo(
      [](cohort::SimpleQueue<std::string> requests, cohort::SimpleQueue<std::string> replies) {
        for (int i = 0; i < 2; ++i) replies.put(requests.get() + "!");
        requests.close();
      },
      requests, replies);
  run_to_completion(echo);
  EXPECT_EQ(replies.get(), "ping!");
  EXPECT_EQ(replies.get(), "!");
  EXPECT_TRUE(requests.empty());
  replies.close();
  EXPECT_THROW(replies.put("late"), cohort::Error);
}

// --- JoinableQueue --------------------------------------------------------------------------------------

TEST(JoinableQueue, TaskDoneBeyondTheItemsPutThrows) {
  cohort::JoinableQueue<int> jq;
  EXPECT_THROW(jq.task_done(), cohort::Error);
  jq.put(1);
  jq.put(2);
  EXPECT_EQ(jq.get(), 1);
  jq.task_done();
  EXPECT_EQ(jq.get(), 2);
  jq.task_done();
  jq.join();  // every task is done: returns at once
  try {
    jq.task_done();
    FAIL() << "a third task_done after two items";
  } catch (const cohort::Error& e) {
    EXPECT_NE(std::string(e.what()).find("task_done() called too many times"), std::string::npos) << e.what();
  }
}

void square_worker(cohort::JoinableQueue<int> tasks, cohort::Queue<int> results) {
  for (;;) {
    const int n = tasks.get();
    if (n < 0) {
      tasks.task_done();
      return;
    }
    results.put(n * n);
    tasks.task_done();
  }
}

TEST(JoinableQueue, JoinWaitsUntilWorkersInOtherProcessesAreDone) {
  cohort::JoinableQueue<int> tasks;
  cohort::Queue<int> results;
  std::deque<cohort::Process> workers;
  for (int w = 0; w < 2; ++w) workers.emplace_back(square_worker, tasks, results);
  start_all(workers);
  for (int i = 0; i < 300; ++i) tasks.put(i);
  tasks.join();
  EXPECT_EQ(results.qsize(), 300u);  // each result was put before its task_done
  long sum = 0;
  for (int i = 0; i < 300; ++i) sum += results.get_nowait();
  EXPECT_EQ(sum, 299L * 300 * 599 / 6);
  for (int w = 0; w < 2; ++w) tasks.put(-1);
  tasks.join();
  join_all_cleanly(workers);
  EXPECT_THROW(tasks.task_done(), cohort::Error);
}

// --- coroutines -----------------------------------------------------------------------------------------

// Lets the relay go on, twice, a little later: only a loop that keeps running while the coroutine awaits
// gets there (if the awaits blocked it, the test would hang and time out).
cohort::task<void> release_twice(cohort::Queue<int> go) {
  for (int i = 0; i < 2; ++i) {
    co_await cohort::sleep(5ms);
    co_await go.async_put(1);
  }
}

TEST(Queue, AsyncPutAndGetWaitWithoutBlockingTheLoop) {
  cohort::Queue<int> q(1);
  cohort::Queue<int> back;
  cohort::Queue<int> go;
  cohort::Process relay(
      [](cohort::Queue<int> q, cohort::Queue<int> back, cohort::Queue<int> go) {
        for (int i = 0; i < 2; ++i) {
          go.get();
          back.put(q.get() * 10);
        }
      },
      q, back, go);
  relay.start();
  const int got = cohort::run([&]() -> cohort::task<int> {
    co_await q.async_put(1);
    auto releaser = cohort::spawn(release_twice(go));
    co_await q.async_put(2);  // the queue holds one item: waits for the relay's first get, after the first go
    const int first = co_await back.async_get();
    const int second = co_await back.async_get();  // waits for the second go
    co_await releaser.async_get();
    co_return first + second;
  }());
  relay.join();
  EXPECT_EQ(relay.exitcode(), 0);
  EXPECT_EQ(got, 30);
}

TEST(Queue, ACancelledAsyncGetTakesNoItem) {
  cohort::Queue<int> q;
  cohort::run([&]() -> cohort::task<void> {
    EXPECT_THROW(co_await cohort::wait_for(q.async_get(), 20ms), cohort::TimeoutError);
  }());
  q.put(5);
  EXPECT_EQ(q.get_nowait(), 5);

  // Gets cancelled at random moments while items arrive: a cancelled get has either returned its item or
  // taken none, so every item is got exactly once, by a get or by the final drain.
  constexpr int count = 300;
  std::vector<int> got;
  std::thread producer([q]() mutable {
    std::mt19937 random(7);
    for (int i = 0; i < count; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(random() % 1000));  // pacing, not synchronization
      q.put(i);
    }
  });
  int cancelled = 0;
  cohort::run([&]() -> cohort::task<void> {
    std::mt19937 random(11);
    while (got.size() < count / 2) {
      auto get = cohort::spawn(q.async_get());
      co_await cohort::sleep(std::chrono::microseconds(random() % 300));
      get.cancel();
      try {
        got.push_back(co_await get.async_get());
      } catch (const cohort::CancelledError&) {
        ++cancelled;
      }
    }
  }());
  producer.join();
  while (auto v = q.try_get()) got.push_back(*v);
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), std::size_t{count});
  for (int i = 0; i < count; ++i) EXPECT_EQ(got[i], i);
  // How many gets the cancellation beat depends on the machine's speed (under ThreadSanitizer, often
  // none); the deterministic case is the empty-queue wait_for above.
  RecordProperty("cancelled_gets", cancelled);
}

TEST(JoinableQueue, AsyncJoinWaitsForTheWorkers) {
  cohort::JoinableQueue<int> tasks;
  cohort::Queue<int> results;
  cohort::Process worker(square_worker, tasks, results);
  cohort::run([&]() -> cohort::task<void> {
    co_await tasks.async_join();  // nothing put yet: done at once
    for (int i = 1; i <= 3; ++i) co_await tasks.async_put(i);
    EXPECT_THROW(co_await cohort::wait_for(tasks.async_join(), 20ms), cohort::TimeoutError);  // no worker yet
    worker.start();
    co_await tasks.async_join();
    EXPECT_EQ(results.qsize(), 3u);
    co_await tasks.async_put(-1);
    co_await tasks.async_join();
  }());
  worker.join();
  EXPECT_EQ(worker.exitcode(), 0);
  EXPECT_EQ(results.get() + results.get() + results.get(), 1 + 4 + 9);
}

// --- resources ------------------------------------------------------------------------------------------

using cohort_test::shared_memory_mappings;

TEST(Queue, LeavesNoDescriptorsNorSharedMemoryBehind) {
  const auto fds_before = entries_in("/proc/self/fd");
  // This process's own mappings only: other tests may create /dev/shm segments at the same time.
  const auto shm_before = shared_memory_mappings();
  {
    cohort::Queue<std::string> q;
    cohort::JoinableQueue<int> jq;
    cohort::SimpleQueue<int> sq;
    q.put(std::string(1 << 20, 'a'));  // grows the ring
    cohort::Process child(
        [](cohort::Queue<std::string> q, cohort::JoinableQueue<int> jq, cohort::SimpleQueue<int> sq) {
          jq.put(static_cast<int>(q.get().size()));
          sq.put(1);
        },
        q, jq, sq);
    run_to_completion(child);
    EXPECT_EQ(jq.get(), 1 << 20);
    jq.task_done();
    EXPECT_EQ(sq.get(), 1);
    cohort::run([&]() -> cohort::task<void> {
      EXPECT_THROW(co_await cohort::wait_for(q.async_get(), 5ms), cohort::TimeoutError);  // a stopped waiter
      co_await jq.async_join();
    }());
  }
  EXPECT_EQ(entries_in("/proc/self/fd"), fds_before);
  EXPECT_EQ(shared_memory_mappings(), shm_before);
}

}  // namespace
