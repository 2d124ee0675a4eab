// Manager: shared dicts, lists and queues in a server process, changed by child processes that got
// their proxies as Process arguments (ctest runs this binary under every start method).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cohort/manager.hpp"
#include "cohort/process.hpp"
#include "cohort/runtime.hpp"
#include "resource_check.hpp"
#include "sanitizers.hpp"

namespace {

using Dict = cohort::Proxy<cohort::managed::Dict<std::string, int>>;
using List = cohort::Proxy<cohort::managed::List<int>>;
using Queue = cohort::Proxy<cohort::managed::Queue<std::string>>;

void change_from_child(Dict d, List l, Queue q, int i) {
  d.set("child" + std::to_string(i), i);
  d.add("total", i);
  l.append(i);
  q.put("hello from " + std::to_string(i));
}

void add_from_threads(Dict d) {
  // The child's first calls come from several threads at once (a forked child reconnects on its first).
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([d] {
      for (int j = 0; j < 25; ++j) d.add("hits", 1);
    });
  for (auto& thread : threads) thread.join();
}

TEST(Manager, AChildsThreadsShareTheProxiesItGot) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  auto d = manager.dict<std::string, int>();
  cohort::Process child(&add_from_threads, d);
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(d.get("hits"), 100);
}

TEST(Manager, ADictAListAndAQueueChangedByChildProcesses) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // its children start threads to call the manager
  cohort::Manager manager;
  const std::string path = manager.address().path();
  EXPECT_TRUE(std::filesystem::exists(path));
  auto d = manager.dict<std::string, int>();
  auto l = manager.list<int>();
  auto q = manager.queue<std::string>();

  d["a"] = 1;
  EXPECT_EQ(static_cast<int>(d["a"]), 1);
  EXPECT_EQ(d.get("missing", 5), 5);
  EXPECT_THROW(d.get("missing"), std::out_of_range);
  EXPECT_TRUE(d.contains("a"));

  std::vector<std::unique_ptr<cohort::Process>> children;
  for (int i = 1; i <= 3; ++i) children.push_back(std::make_unique<cohort::Process>(&change_from_child, d, l, q, i));
  for (auto& child : children) child->start();
  for (auto& child : children) {
    child->join();
    EXPECT_EQ(child->exitcode(), 0);
  }

  EXPECT_EQ(d.get("total"), 6);
  EXPECT_EQ(d.size(), 5u);  // a, child1..3, total
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"a", "child1", "child2", "child3", "total"}));
  auto values = l.to_vector();
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<int>{1, 2, 3}));
  std::vector<std::string> greetings;
  for (int i = 0; i < 3; ++i) greetings.push_back(q.get(true, std::chrono::seconds(2)));
  std::sort(greetings.begin(), greetings.end());
  EXPECT_EQ(greetings.front(), "hello from 1");

  l[0] = 9;
  EXPECT_EQ(static_cast<int>(l[0]), 9);
  EXPECT_EQ(l.get(-1), l.to_vector().back());
  EXPECT_THROW(l.get(3), std::out_of_range);
  l.pop();
  EXPECT_EQ(l.size(), 2u);

  cohort::Runtime runtime(1);
  EXPECT_EQ(runtime.run([](Dict dict) -> cohort::task<int> {
              co_await dict.async_set("b", 2);
              co_return co_await dict.async_get("b");
            }(d)),
            2);

  manager.shutdown();
  EXPECT_THROW(d.get("a"), cohort::ActorDeadError);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(cohort_test::zombie_children().empty());
}

TEST(Manager, ANamespaceHoldsFieldsOfAnyTypeAndAValueOneValue) {
  cohort::Manager manager;
  auto ns = manager.namespace_();
  ns.set("x", 1.5);
  ns.set("name", std::string("cohort"));
  ns.set("primes", std::vector<int>{2, 3, 5});
  EXPECT_EQ(ns.get<double>("x"), 1.5);
  EXPECT_EQ(ns.get<std::string>("name"), "cohort");
  EXPECT_EQ(ns.get<std::vector<int>>("primes"), (std::vector<int>{2, 3, 5}));
  EXPECT_THROW(ns.get<int>("nothing"), std::out_of_range);
  EXPECT_THROW(ns.get<int>("name"), cohort::SerializationError);
  EXPECT_EQ(ns.names(), (std::vector<std::string>{"name", "primes", "x"}));

  auto v = manager.value<long>(40);
  EXPECT_EQ(v.get(), 40);
  EXPECT_EQ(v.exchange(42), 40);
  cohort::Runtime runtime(1);
  EXPECT_EQ(runtime.run([](cohort::Proxy<cohort::managed::Value<long>> value) -> cohort::task<long> {
              co_await value.async_set(43);
              co_return co_await value.async_get();
            }(v)),
            43);
}

}  // namespace
