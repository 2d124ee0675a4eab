// RedisExecutor and redis_worker against a real redis-server on a loopback port of the test's own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cohort/cohort.hpp>
#include <csignal>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.hpp"
#include "resource_check.hpp"
#include "sanitizers.hpp"

using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }

int checked_half(int x) {
  if (x % 2 != 0) throw std::invalid_argument("odd: " + std::to_string(x));
  return x / 2;
}

int pid_after(int milliseconds) {
  std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
  return static_cast<int>(::getpid());
}

int kill_own_process(int) {
  ::raise(SIGKILL);
  return 0;
}

/// An argument that a worker cannot read back: its task fails, the worker does not.
struct Unreadable {
  template <class Archive>
  void save(Archive& archive) const {
    archive(1);
  }
  template <class Archive>
  void load(Archive&) {
    throw std::runtime_error("this argument cannot be read");
  }
};

int take_unreadable(Unreadable) { return 1; }

void serve(std::string url, std::string queue, int processes, int claim_after_ms) {
  cohort::redis_worker({.url = url,
                        .queue = queue,
                        .processes = static_cast<std::size_t>(processes),
                        .claim_after = std::chrono::milliseconds(claim_after_ms)});
}

/// A worker process serving `queue`, stopped by SIGTERM (or killed) at the end of the test.
struct Worker {
  Worker(const std::string& url, const std::string& queue, int processes = 1, int claim_after_ms = 30000)
      : process(serve, url, queue, processes, claim_after_ms) {
    process.start();
  }
  ~Worker() {
    if (process.is_alive()) process.terminate();
    if (!process.join(10s)) process.kill();
    process.join();
  }
  cohort::Process process;
};

/// The futures' errors, in order; "" for one that succeeded.
std::vector<std::string> outcomes(std::vector<cohort::Future<int>>& futures) {
  std::vector<std::string> errors;
  for (auto& future : futures) {
    try {
      future.get(30s);
      errors.emplace_back();
    } catch (const std::exception& error) {
      errors.emplace_back(error.what());
    }
  }
  return errors;
}

void wait_for_stream_length(const cohort_test::RedisServer& redis, const std::string& queue, int length) {
  const auto key = "cohort:{" + queue + "}:tasks";
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (redis.cli("XLEN " + key) != std::to_string(length) + "\n" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_EQ(redis.cli("XLEN " + key), std::to_string(length) + "\n");
}

class RedisExecutorTest : public testing::Test {
 protected:
  cohort_test::RedisServer redis;
};

TEST(RedisExecutorSetup, AnUnreachableRedisFailsWithinTheConnectTimeoutNamingTheAddress) {
  int port = 0;
  {
    cohort_test::RedisServer server;  // a port that was free: nothing listens there once it stopped
    port = server.port();
  }
  const auto started = std::chrono::steady_clock::now();
  try {
    cohort::RedisExecutor executor({.url = "redis://127.0.0.1:" + std::to_string(port), .connect_timeout = 500ms});
    FAIL() << "connected to nothing";
  } catch (const cohort::Error& error) {
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << error.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_THROW(cohort::redis_worker({.url = "redis://127.0.0.1:" + std::to_string(port), .connect_timeout = 300ms}),
               cohort::Error);
}

TEST(RedisExecutorSetup, AMalformedUrlIsRefused) {
  EXPECT_THROW(cohort::RedisExecutor({.url = "http://127.0.0.1:6379"}), std::invalid_argument);
  EXPECT_THROW(cohort::RedisExecutor({.url = "redis://127.0.0.1:notaport"}), std::invalid_argument);
}

TEST_F(RedisExecutorTest, SubmitMapAndAsCompletedGetTheWorkersResults) {
  Worker worker(redis.url(), "basics", 2);
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "basics"});
  auto future = executor.submit(square, 7);
  EXPECT_EQ(future.get(20s), 49);

  std::vector<int> inputs(100);
  for (int i = 0; i < 100; ++i) inputs[i] = i;
  std::vector<int> squares;
  for (int value : executor.map(square, inputs, {.chunksize = 8})) squares.push_back(value);
  ASSERT_EQ(squares.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(squares[i], i * i);

  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(executor.submit([](int x) { return x + 1; }, i));
  int sum = 0;
  for (auto& done : cohort::as_completed(futures, 20s)) sum += done.get();
  EXPECT_EQ(sum, 210);

  auto failing = executor.submit(checked_half, 3);
  EXPECT_THROW(failing.get(20s), std::invalid_argument);
}

TEST_F(RedisExecutorTest, ACoroutineAwaitsTheFuture) {
  Worker worker(redis.url(), "awaited");
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "awaited"});
  const int value = cohort::run([&]() -> cohort::task<int> {
    auto a = executor.submit(square, 5);
    auto b = executor.submit(square, 6);
    co_return co_await a.async_get() + co_await b.async_get();
  }());
  EXPECT_EQ(value, 61);
}

TEST_F(RedisExecutorTest, TwoWorkersShareAQueue) {
  Worker first(redis.url(), "shared");
  Worker second(redis.url(), "shared");
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "shared"});
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 40; ++i) futures.push_back(executor.submit(pid_after, 50));
  std::set<int> pids;
  for (auto& future : futures) pids.insert(future.get(30s));
  EXPECT_EQ(pids.size(), 2u) << "both workers' processes ran tasks";
}

TEST_F(RedisExecutorTest, ATaskWhoseWorkerIsKilledIsClaimedByAnotherAndCompletesOnce) {
  COHORT_SKIP_THREADED_FORK_UNDER_TSAN();  // the workers are forked while the executor's thread runs
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "claimed"});
  std::vector<cohort::Future<int>> futures;
  {
    Worker doomed(redis.url(), "claimed", 1, 300);
    for (int i = 0; i < 4; ++i) futures.push_back(executor.submit(pid_after, 400));
    std::this_thread::sleep_for(200ms);  // it holds them all, and runs the first
    doomed.process.kill();
    doomed.process.join();
  }
  Worker rescuer(redis.url(), "claimed", 2, 300);
  for (auto& future : futures) EXPECT_GT(future.get(30s), 0);
  executor.shutdown();
  EXPECT_EQ(redis.cli("EXISTS cohort:{claimed}:claims"), "0\n") << "claims are forgotten once answered";
}

TEST_F(RedisExecutorTest, ATaskThatKillsItsProcessIsRetriedMaxRetriesTimesThenFailsWithTheReason) {
  Worker worker(redis.url(), "deadly", 1);
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "deadly", .max_retries = 1});
  auto future = executor.submit(kill_own_process, 0);
  try {
    future.get(30s);
    FAIL() << "the task returned";
  } catch (const cohort::ProcessError& error) {
    EXPECT_NE(std::string(error.what()).find("SIGKILL"), std::string::npos) << error.what();
  }
  EXPECT_EQ(executor.submit(square, 4).get(20s), 16) << "the worker replaced its process and serves on";
}

TEST_F(RedisExecutorTest, AnyProgramStartedWithTheWorkerFlagServesTheQueue) {
  std::vector<std::string> arguments{"/proc/self/exe", "--cohort-redis-worker", redis.url(), "--cohort-redis-queue",
                                     "flagged", "--cohort-redis-processes", "1"};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ), 0);
  {
    cohort::RedisExecutor executor({.url = redis.url(), .queue = "flagged"});
    EXPECT_EQ(executor.submit(square, 12).get(20s), 144);
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "SIGTERM ends the worker cleanly: " << status;
}

TEST_F(RedisExecutorTest, GarbageInTheStreamIsDroppedAndTheWorkerServesOn) {
  Worker worker(redis.url(), "garbage");
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "garbage"});
  redis.cli("XADD cohort:{garbage}:tasks '*' task not-a-task");
  redis.cli("XADD cohort:{garbage}:tasks '*' other field");
  EXPECT_EQ(executor.submit(square, 9).get(20s), 81);
  executor.shutdown();
  wait_for_stream_length(redis, "garbage", 0);
}

TEST_F(RedisExecutorTest, ATaskThatCannotBeReadFailsAloneAndTheWorkerServesOn) {
  Worker worker(redis.url(), "unreadable");
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "unreadable"});
  auto bad = executor.submit(take_unreadable, Unreadable{});
  try {
    bad.get(20s);
    ADD_FAILURE() << "a task whose argument cannot be read returned";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("this argument cannot be read"), std::string::npos) << error.what();
  }
  EXPECT_EQ(executor.submit(square, 7).get(20s), 49);
  executor.shutdown();
  wait_for_stream_length(redis, "unreadable", 0);
}

TEST_F(RedisExecutorTest, ShutdownLeavesOnlyTheQueueBehind) {
  {
    Worker worker(redis.url(), "tidy");
    cohort::RedisExecutor executor({.url = redis.url(), .queue = "tidy"});
    for (int i = 0; i < 10; ++i) executor.submit(square, i);
  }  // the executor waits for its results, the worker stops
  EXPECT_EQ(redis.cli("--raw KEYS 'cohort:*'"), "cohort:{tidy}:tasks\n");
  EXPECT_EQ(redis.cli("XLEN cohort:{tidy}:tasks"), "0\n");
  EXPECT_EQ(redis.cli("XINFO CONSUMERS cohort:{tidy}:tasks workers"), "\n") << "the worker left the group";
}

TEST_F(RedisExecutorTest, ShutdownCancellingFuturesRemovesTheTasksNoWorkerTook) {
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "cancelled"});
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back(executor.submit(square, i));
  std::this_thread::sleep_for(100ms);
  executor.shutdown(true, true);  // no worker: nothing to wait for once they are cancelled
  for (auto& future : futures) EXPECT_TRUE(future.cancelled());
  EXPECT_EQ(redis.cli("XLEN cohort:{cancelled}:tasks"), "0\n");
}

std::string consume(std::string text, std::vector<int> numbers) { return text + std::to_string(numbers.size()); }

TEST_F(RedisExecutorTest, EveryUserSpellingOfACallWorks) {
  Worker worker(redis.url(), "spellings", 2);
  const cohort::RedisExecutor& named = cohort::RedisExecutor({.url = redis.url(), .queue = "spellings"});
  EXPECT_EQ(named.queue(), "spellings") << "queue() on a const executor (a temporary bound to a const&)";
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "spellings"});
  // Arguments by value, moved in from temporaries; a generic lambda; a capture-less lambda in map.
  EXPECT_EQ(executor.submit(consume, "n=", std::vector<int>{1, 2, 3}).get(20s), "n=3");
  EXPECT_EQ(executor.submit([](auto text, auto n) { return text + "!" + std::to_string(n); }, std::string("a"), 1).get(20s),
            "a!1");
  std::vector<std::string> words{"x", "yy", "zzz"};
  std::vector<std::size_t> sizes;
  for (auto size : executor.map([](const std::string& word) { return word.size(); }, words)) sizes.push_back(size);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 2, 3}));
  // From a plain thread and from a coroutine at the same time, on one executor.
  int from_thread = 0;
  std::thread thread([&] { from_thread = executor.submit(square, 11).get(20s); });
  const int from_coroutine = cohort::run([&]() -> cohort::task<int> { co_return co_await executor.submit(square, 12).async_get(); }());
  thread.join();
  EXPECT_EQ(from_thread, 121);
  EXPECT_EQ(from_coroutine, 144);
}

TEST(RedisRestart, WithPersistenceTheTasksInFlightCompleteOnceRedisIsBack) {
  cohort_test::RedisServer redis(cohort_test::RedisServer::Persistence::append_only);
  // A worker whose read Redis recorded but never answered finds that task idle after claim_after.
  Worker worker(redis.url(), "durable", 2, 1000);
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "durable", .connect_timeout = 10s});
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(executor.submit(pid_after, 50));
  std::this_thread::sleep_for(150ms);  // some done, some running, some waiting in the stream
  redis.restart();
  for (int i = 0; i < 20; ++i) futures.push_back(executor.submit(pid_after, 1));  // while it reconnects
  for (const auto& error : outcomes(futures)) EXPECT_EQ(error, "");
  EXPECT_EQ(executor.submit(square, 3).get(20s), 9);
}

TEST(RedisRestart, WithoutPersistenceTheFuturesOfTheLostTasksFailSayingSoAndWorkGoesOn) {
  cohort_test::RedisServer redis;
  Worker worker(redis.url(), "forgetful", 1);
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "forgetful", .connect_timeout = 10s});
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 4; ++i) futures.push_back(executor.submit(pid_after, 300));  // one runs, three wait
  std::this_thread::sleep_for(100ms);
  redis.restart();
  for (const auto& error : outcomes(futures)) EXPECT_NE(error.find("lost this task"), std::string::npos) << error;
  EXPECT_EQ(executor.submit(square, 5).get(20s), 25) << "client and worker reconnected";
}

TEST(RedisRestart, ARedisThatStaysAwayFailsThePendingFuturesWithinTheConnectTimeout) {
  cohort_test::RedisServer redis;
  const auto address = "127.0.0.1:" + std::to_string(redis.port());
  cohort::RedisExecutor executor({.url = redis.url(), .queue = "gone", .connect_timeout = 500ms});
  std::vector<cohort::Future<int>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(executor.submit(square, i));
  wait_for_stream_length(redis, "gone", 3);
  redis.stop();
  const auto stopped = std::chrono::steady_clock::now();
  for (const auto& error : outcomes(futures)) EXPECT_NE(error.find(address), std::string::npos) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, 3s);
  auto late = executor.submit(square, 1);  // tries again, and fails the same way
  EXPECT_THROW(late.get(10s), cohort::Error);
}

}  // namespace
