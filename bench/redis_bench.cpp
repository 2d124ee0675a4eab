// RedisExecutor through one Redis, as anchors/redis_celery_tiny.py and anchors/dask_tiny.py measure
// their peers (same JSON lines, names "cohort_..."), and the transport underneath it:
//   redis_tiny_tasks:  10,000 tiny tasks submitted, then every result taken (as_completed), through a
//                      redis_worker with 2 processes; tasks/s.
//   redis_task_rtt:    one submit(fn, x).get() at a time, 1,000 times; us each (beside redis-benchmark's
//                      PING on the same server, which redis_bench.sh runs).
//   redis_ping_rtt_asio / redis_ping_rtt_hiredis_sync:
//                      one PING at a time, 5,000 times, on the Asio connection the executor uses and on
//                      hiredis' blocking API; us each.
//   redis_xadd_pipelined_asio / redis_xadd_pipelined_hiredis_sync:
//                      10,000 XADDs of a 64-byte field written back to back, then every answer; the
//                      executor's way of sending tasks, against hiredis' blocking pipeline; ops/s.
// Usage: redis_bench redis://127.0.0.1:PORT [workload...]   (a Redis of its own: keys are deleted)
#include <cohort/cohort.hpp>

#include <hiredis/hiredis.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "anchor_driver.hpp"
#include "redis/redis_connection.hpp"

namespace {

namespace asio = boost::asio;
using cohort::detail::RedisAddress;
using cohort::detail::RedisConnection;
using cohort::detail::RedisReply;
using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using Clock = std::chrono::steady_clock;

constexpr int tiny_tasks = 10'000;
constexpr int task_round_trips = 1'000;
constexpr int pings = 5'000;
constexpr int xadds = 10'000;
const std::string xadd_value(64, 'x');

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

long square(long x) { return x * x; }

void serve(std::string url) { cohort::redis_worker({.url = url, .queue = "bench", .processes = 2}); }

/// A connection of the executor's kind on a loop of the caller's thread.
struct AsioLink {
  explicit AsioLink(const std::string& url) {
    std::exception_ptr failed;
    bool done = false;
    asio::co_spawn(loop, RedisConnection::connect(loop, RedisAddress::parse(url), std::chrono::seconds(5)),
                   [&](std::exception_ptr error, std::shared_ptr<RedisConnection> opened) {
                     failed = error;
                     connection = std::move(opened);
                     done = true;
                   });
    while (!done) loop.run_one();  // (run() would not return: the connection keeps a read pending)
    if (failed) std::rethrow_exception(failed);
  }
  ~AsioLink() { connection->close(); }

  /// Sends `count` commands made by `command` (the next one from the previous one's answer when
  /// `one_at_a_time`), and runs the loop until every answer has come.
  void run(int count, bool one_at_a_time, const std::vector<std::string_view>& command) {
    int answered = 0;
    std::function<void(RedisReply)> on_reply = [&](RedisReply reply) {
      if (reply.is_lost() || reply.is_error()) throw std::runtime_error("redis_bench: a command failed");
      if (++answered < count && one_at_a_time) connection->send(command, on_reply);
    };
    for (int i = 0; i < (one_at_a_time ? 1 : count); ++i) connection->send(command, on_reply);
    while (answered < count) loop.run_one();
  }

  asio::io_context loop{1};
  std::shared_ptr<RedisConnection> connection;
};

struct SyncLink {
  explicit SyncLink(const std::string& url) {
    const auto address = RedisAddress::parse(url);
    context = redisConnect(address.host.c_str(), address.port);
    if (!context || context->err) throw std::runtime_error("redis_bench: hiredis could not connect");
  }
  ~SyncLink() { redisFree(context); }

  void expect_reply() {
    void* reply = nullptr;
    if (redisGetReply(context, &reply) != REDIS_OK || !reply ||
        static_cast<redisReply*>(reply)->type == REDIS_REPLY_ERROR)
      throw std::runtime_error("redis_bench: a command failed");
    freeReplyObject(reply);
  }

  redisContext* context = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  cohort::set_start_method(cohort::StartMethod::fork);
  if (argc < 2) {
    std::fprintf(stderr, "usage: redis_bench redis://127.0.0.1:PORT [workload...]\n");
    return 2;
  }
  const std::string url = argv[1];
  const auto wanted = [&](const std::string& name) {
    if (argc < 3) return true;
    for (int i = 2; i < argc; ++i)
      if (name == argv[i]) return true;
    return false;
  };

  if (wanted("redis_tiny_tasks") || wanted("redis_task_rtt")) {
    cohort::Process worker(serve, url);
    worker.start();
    {
      cohort::RedisExecutor executor({.url = url, .queue = "bench"});
      if (executor.submit(square, 3L).get(std::chrono::seconds(30)) != 9) throw std::logic_error("wrong square");
      if (wanted("redis_tiny_tasks")) {
        long expected = 0;
        for (long i = 0; i < tiny_tasks; ++i) expected += i * i;
        emit_like_anchor("cohort_redis_tiny_tasks", measure_like_anchor([&] {
                           const auto start = Clock::now();
                           std::vector<cohort::Future<long>> futures;
                           futures.reserve(tiny_tasks);
                           for (long i = 0; i < tiny_tasks; ++i) futures.push_back(executor.submit(square, i));
                           long total = 0;
                           for (auto& done : cohort::as_completed(futures)) total += done.get();
                           if (total != expected) throw std::logic_error("redis_tiny_tasks: wrong sum");
                           return tiny_tasks / seconds_since(start);
                         }),
                         "tasks/s");
      }
      if (wanted("redis_task_rtt")) {
        emit_like_anchor("cohort_redis_task_rtt", measure_like_anchor([&] {
                           const auto start = Clock::now();
                           for (long i = 0; i < task_round_trips; ++i)
                             if (executor.submit(square, i).get() != i * i) throw std::logic_error("wrong square");
                           return seconds_since(start) / task_round_trips * 1e6;
                         }),
                         "us/round trip");
      }
    }
    worker.terminate();
    worker.join();
  }

  if (wanted("redis_ping_rtt_asio")) {
    AsioLink link(url);
    emit_like_anchor("cohort_redis_ping_rtt_asio", measure_like_anchor([&] {
                       const auto start = Clock::now();
                       link.run(pings, true, {"PING"});
                       return seconds_since(start) / pings * 1e6;
                     }),
                     "us/round trip");
  }
  if (wanted("redis_ping_rtt_hiredis_sync")) {
    SyncLink link(url);
    emit_like_anchor("cohort_redis_ping_rtt_hiredis_sync", measure_like_anchor([&] {
                       const auto start = Clock::now();
                       for (int i = 0; i < pings; ++i) {
                         redisAppendCommand(link.context, "PING");
                         link.expect_reply();
                       }
                       return seconds_since(start) / pings * 1e6;
                     }),
                     "us/round trip");
  }
  if (wanted("redis_xadd_pipelined_asio")) {
    AsioLink link(url);
    emit_like_anchor("cohort_redis_xadd_pipelined_asio", measure_like_anchor([&] {
                       const auto start = Clock::now();
                       link.run(xadds, false, {"XADD", "bench:xadd", "*", "task", xadd_value});
                       const double rate = xadds / seconds_since(start);
                       link.run(1, false, {"DEL", "bench:xadd"});
                       return rate;
                     }),
                     "ops/s");
  }
  if (wanted("redis_xadd_pipelined_hiredis_sync")) {
    SyncLink link(url);
    emit_like_anchor("cohort_redis_xadd_pipelined_hiredis_sync", measure_like_anchor([&] {
                       const auto start = Clock::now();
                       for (int i = 0; i < xadds; ++i)
                         redisAppendCommand(link.context, "XADD bench:xadd * task %b", xadd_value.data(),
                                            xadd_value.size());
                       for (int i = 0; i < xadds; ++i) link.expect_reply();
                       const double rate = xadds / seconds_since(start);
                       redisAppendCommand(link.context, "DEL bench:xadd");
                       link.expect_reply();
                       return rate;
                     }),
                     "ops/s");
  }
  return 0;
}
