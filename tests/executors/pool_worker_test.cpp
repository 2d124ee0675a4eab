// A process pool's worker, driven by hand over its Pipe: what the pools build on.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/connection.hpp"
#include "cohort/detail/pool_protocol.hpp"
#include "cohort/process.hpp"

namespace {

namespace detail = cohort::detail;

int square(int x) { return x * x; }

int checked_sqrt(int x) {
  if (x < 0) throw std::invalid_argument("negative input: " + std::to_string(x));
  int r = 0;
  while ((r + 1) * (r + 1) <= x) ++r;
  return r;
}

int greeting_length = 0;
void remember_greeting() { greeting_length = 5; }
int greeting() { return greeting_length; }

void failing_initializer() { throw std::runtime_error("no database here"); }

/// A result whose serialization fails in the worker.
struct Unsendable {
  template <class Archive>
  void save(Archive&) const {
    throw std::runtime_error("this value refuses to be written");
  }
  template <class Archive>
  void load(Archive&) {}
};
Unsendable make_unsendable() { return {}; }

void worker_main(cohort::Connection& channel, const detail::PoolWorkerOptions& options) {
  detail::run_pool_worker(channel, options);
}

/// Starts a worker process; the Pipe end returned is the pool's.
std::pair<std::unique_ptr<cohort::Process>, cohort::Connection> start_worker(detail::PoolWorkerOptions options = {}) {
  auto [pool_end, worker_end] = cohort::Pipe();
  auto worker = std::make_unique<cohort::Process>(&worker_main, std::move(worker_end), std::move(options));
  worker->start();
  return {std::move(worker), std::move(pool_end)};
}

/// The replies to `count` tasks, one message each.
std::vector<detail::PoolReply> recv_replies(cohort::Connection& channel, std::size_t count) {
  std::vector<detail::PoolReply> replies;
  for (std::size_t i = 0; i < count; ++i) replies.push_back(channel.recv<detail::PoolReply>());
  return replies;
}

template <class... Calls>
detail::PoolTaskBatch batch_of(Calls... calls) {
  detail::PoolTaskBatch batch;
  std::uint64_t id = 100;
  (batch.push_back(detail::PoolTask{id++, std::move(calls)}), ...);
  return batch;
}

TEST(PoolWorker, RunsABatchAndRepliesInOrder) {
  auto [worker, channel] = start_worker();
  channel.send(batch_of(detail::make_call(&square, 3), detail::make_call(&square, 12),
                        detail::make_call([](std::string s) { return s + "!"; }, std::string("hi"))));
  const auto replies = recv_replies(channel, 3);
  EXPECT_EQ(replies[0].id, 100u);
  EXPECT_EQ(cohort::loads<int>(replies[0].result), 9);
  EXPECT_EQ(cohort::loads<int>(replies[1].result), 144);
  EXPECT_EQ(cohort::loads<std::string>(replies[2].result), "hi!");
  channel.send(detail::PoolTaskBatch{});  // exit
  worker->join();
  EXPECT_EQ(worker->exitcode(), 0);
}

TEST(PoolWorker, AFailingCallFailsOnlyItselfAndKeepsItsType) {
  auto [worker, channel] = start_worker();
  channel.send(batch_of(detail::make_call(&checked_sqrt, -4), detail::make_call(&make_unsendable),
                        detail::make_call(&checked_sqrt, 49)));
  const auto replies = recv_replies(channel, 3);
  ASSERT_FALSE(replies[0].ok);
  EXPECT_THROW(detail::rethrow_failure(replies[0].failure), std::invalid_argument);
  EXPECT_EQ(replies[0].failure.message, "negative input: -4");
  EXPECT_FALSE(replies[0].failure.traceback.empty());
  ASSERT_FALSE(replies[1].ok);
  EXPECT_NE(replies[1].failure.message.find("this value refuses to be written"), std::string::npos)
      << replies[1].failure.message;
  ASSERT_TRUE(replies[2].ok);
  EXPECT_EQ(cohort::loads<int>(replies[2].result), 7);
  channel.send(detail::PoolTaskBatch{});
  worker->join();
  EXPECT_EQ(worker->exitcode(), 0);
}

TEST(PoolWorker, RunsItsInitializerFirstAndStopsAfterMaxTasks) {
  detail::PoolWorkerOptions options;
  options.initializer = detail::make_call(&remember_greeting);
  options.max_tasks = 2;
  auto [worker, channel] = start_worker(std::move(options));
  channel.send(batch_of(detail::make_call(&greeting)));
  EXPECT_EQ(cohort::loads<int>(channel.recv<detail::PoolReply>().result), 5);
  channel.send(batch_of(detail::make_call(&greeting)));
  EXPECT_TRUE(channel.recv<detail::PoolReply>().ok);
  worker->join();  // two tasks ran: it left on its own
  EXPECT_EQ(worker->exitcode(), 0);
  EXPECT_THROW(channel.recv<detail::PoolReply>(), cohort::EOFError);
}

TEST(PoolWorker, AFailingInitializerIsReportedBeforeTheWorkerExits) {
  detail::PoolWorkerOptions options;
  options.initializer = detail::make_call(&failing_initializer);
  auto [worker, channel] = start_worker(std::move(options));
  const auto reply = channel.recv<detail::PoolReply>();
  EXPECT_EQ(reply.id, detail::initializer_failed_id);
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.failure.message, "no database here");
  worker->join();
  EXPECT_EQ(worker->exitcode(), 1);
}

TEST(PoolWorker, AReplyIsReadInPlaceAsCerealWroteIt) {
  detail::PoolReply reply;
  reply.id = 77;
  reply.ok = true;
  reply.result = cohort::dumps(std::string(1000, 'x'));
  const auto message = cohort::dumps(reply);
  const auto view = detail::view_reply(message);
  EXPECT_EQ(view.id, 77u);
  EXPECT_TRUE(view.ok);
  EXPECT_EQ(view.result, reply.result);
  EXPECT_EQ(cohort::loads<std::string>(view.result), std::string(1000, 'x'));

  detail::PoolReply failed;
  failed.id = 5;
  failed.failure = {"std::out_of_range", "too far", "#0 somewhere"};
  const auto failed_view = detail::view_reply(cohort::dumps(failed));
  EXPECT_FALSE(failed_view.ok);
  EXPECT_TRUE(failed_view.result.empty());
  EXPECT_EQ(failed_view.failure.message, "too far");
  EXPECT_EQ(failed_view.failure.traceback, "#0 somewhere");

  auto truncated = message;
  truncated.resize(truncated.size() - 3);
  EXPECT_THROW(detail::view_reply(truncated), cohort::SerializationError);
  EXPECT_THROW(detail::view_reply(cohort::dumps(std::string("not a reply"))), cohort::SerializationError);
}

}  // namespace
