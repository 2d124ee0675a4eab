// Ask cycles: an actor handles one whole method at a time, so an ask that waits (directly or through
// other actors) for the method that makes it could never be answered. It fails at once instead.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cohort/actor.hpp"
#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"

namespace {

using namespace std::chrono_literals;

/// Asks the next actor of a ring, which asks the next, ...: `hops` asks deep.
class Node {
 public:
  explicit Node(std::string label) : label_(std::move(label)) {}
  void link(cohort::ActorRef<Node> next) { next_ = std::move(next); }
  cohort::task<std::string> relay(int hops) {
    if (hops == 0) co_return label_;
    co_return label_ + "," + co_await next_->ask(&Node::relay, hops - 1);
  }
  /// Asks the next actor through a gather, as a method that fans out would.
  cohort::task<std::string> fan_out(int hops) {
    std::vector<cohort::task<std::string>> asks;
    asks.push_back(next_->ask(&Node::relay, hops - 1));
    const auto replies = co_await cohort::gather(std::move(asks));
    co_return label_ + "," + replies.front();
  }
  cohort::task<int> ask_myself(cohort::ActorRef<Node> self) {
    co_await cohort::sleep(1ms);
    co_return co_await self.ask(&Node::plain);
  }
  int plain() const { return 1; }

 private:
  std::string label_;
  std::optional<cohort::ActorRef<Node>> next_;
};

std::vector<cohort::ActorRef<Node>> ring(int size) {
  std::vector<cohort::ActorRef<Node>> nodes;
  for (int i = 0; i < size; ++i) {
    const auto number = std::to_string(i);
    nodes.push_back(cohort::spawn_actor<Node>({.name = std::string("node").append(number)}, std::string("n").append(number)));
  }
  for (int i = 0; i < size; ++i) nodes[i].tell(&Node::link, nodes[(i + 1) % size]);
  return nodes;
}

std::string deadlock_message(cohort::task<std::string> work) {
  try {
    (void)cohort::run(std::move(work));
  } catch (const cohort::DeadlockError& e) {
    return e.what();
  }
  return "no DeadlockError";
}

TEST(AskCycle, AnAskToItselfFailsAtOnce) {
  const auto start = std::chrono::steady_clock::now();
  cohort::run([]() -> cohort::task<void> {
    auto n = cohort::spawn_actor<Node>({.name = "lonely"}, "x");
    EXPECT_THROW(co_await n.ask(&Node::ask_myself, n), cohort::DeadlockError);
    EXPECT_EQ(co_await n.ask(&Node::plain), 1);  // the actor is fine
    co_await n.stop();
  }());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(AskCycle, TwoActorsAskingEachOtherFailWithTheCycleNamed) {
  const auto what = deadlock_message([]() -> cohort::task<std::string> {
    auto nodes = ring(2);
    auto reply = co_await nodes[0].ask(&Node::relay, 2);  // n0 asks n1, which asks n0
    for (auto& n : nodes) co_await n.stop();
    co_return reply;
  }());
  EXPECT_NE(what.find("'node0' -> 'node1' -> 'node0'"), std::string::npos) << what;
}

TEST(AskCycle, ALongerCycleThroughThreeActorsIsFound) {
  const auto what = deadlock_message([]() -> cohort::task<std::string> {
    auto nodes = ring(3);
    auto reply = co_await nodes[0].ask(&Node::relay, 3);
    for (auto& n : nodes) co_await n.stop();
    co_return reply;
  }());
  EXPECT_NE(what.find("'node0' -> 'node1' -> 'node2' -> 'node0'"), std::string::npos) << what;
}

TEST(AskCycle, ACycleThroughAGatherInsideAMethodIsFound) {
  const auto what = deadlock_message([]() -> cohort::task<std::string> {
    auto nodes = ring(2);
    auto reply = co_await nodes[0].ask(&Node::fan_out, 2);
    for (auto& n : nodes) co_await n.stop();
    co_return reply;
  }());
  EXPECT_NE(what.find("'node0' -> 'node1' -> 'node0'"), std::string::npos) << what;
}

TEST(AskCycle, ChainsWithoutACycleAreServed) {
  cohort::run([]() -> cohort::task<void> {
    auto nodes = ring(3);
    // n0 -> n1 -> n2 and back out: no actor is asked while it waits.
    EXPECT_EQ(co_await nodes[0].ask(&Node::relay, 2), "n0,n1,n2");
    // The same actors again, one after the other: nothing of the first chain is left.
    EXPECT_EQ(co_await nodes[1].ask(&Node::relay, 2), "n1,n2,n0");
    EXPECT_EQ(co_await nodes[2].ask(&Node::fan_out, 2), "n2,n0,n1");
    for (auto& n : nodes) co_await n.stop();
  }());
}

TEST(AskCycle, AlsoOnAMultiThreadedRuntime) {
  cohort::Runtime runtime(2);
  const bool refused = runtime.run([]() -> cohort::task<bool> {
    auto nodes = ring(2);
    bool deadlock = false;
    try {
      (void)co_await nodes[0].ask(&Node::relay, 2);
    } catch (const cohort::DeadlockError&) {
      deadlock = true;
    }
    for (auto& n : nodes) co_await n.stop();
    co_return deadlock;
  }());
  EXPECT_TRUE(refused);
}

}  // namespace
