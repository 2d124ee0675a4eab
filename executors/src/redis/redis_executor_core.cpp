// RedisExecutorCore: a client of a Redis queue. Its I/O thread runs one event loop with two connections:
// one for commands (the tasks' XADDs, pipelined, scripts, trims), one that waits on the client's results
// stream (XREAD BLOCK), so that neither holds up the other. When Redis goes away, the loop reconnects with
// backoff for up to connect_timeout; then it asks Redis, atomically, which of its tasks survived (a
// server restarted without persistence has none) and fails the futures of the lost ones, resends what it
// never saw arrive, and carries on.
#include "cohort/detail/redis_executor_core.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <pthread.h>

#include "cohort/codec.hpp"
#include "cohort/detail/pool_protocol.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/log.hpp"
#include "cohort/redis_executor.hpp"
#include "redis/redis_connection.hpp"
#include "redis/redis_protocol.hpp"

namespace cohort::detail {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

/// Results taken per XREAD.
constexpr int results_per_read = 1024;

/// The stream id just after `id` ("ms-seq"): XTRIM MINID of it removes `id` and all before.
std::string next_stream_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos) return std::string(id);
  return fmt::format("{}-{}", id.substr(0, dash), std::stoull(std::string(id.substr(dash + 1))) + 1);
}

}  // namespace

struct RedisExecutorCore::State : std::enable_shared_from_this<State> {
  State(RedisExecutorOptions options)
      : options(std::move(options)),
        address(RedisAddress::parse(this->options.url)),
        client(redis::process_identity("client")),
        tasks_key(redis::tasks_key(this->options.queue)),
        results_key(redis::results_key(this->options.queue, client)) {
    if (this->options.max_retries < 0) throw std::invalid_argument("RedisExecutor: max_retries must not be negative");
    if (this->options.result_ttl.count() <= 0) throw std::invalid_argument("RedisExecutor: result_ttl must be positive");
  }

  void start();
  void run() noexcept;
  task<void> connect_all(Clock::duration timeout);
  task<void> reconnect(std::string why);
  void lost(const std::string& why);
  void flush();
  void send_task(std::uint64_t id);
  void read_results();
  void read_up_to(std::string_view id);
  void take_reply(std::string_view bytes);
  void complete(std::uint64_t id, const std::function<void(PoolJob&)>& finish);
  void fail_all(const std::string& why);
  task<void> resync();
  void cancel_queued();
  void finished(std::size_t count);

  const RedisExecutorOptions options;
  const RedisAddress address;
  const std::string client;
  const std::string tasks_key;
  const std::string results_key;

  asio::io_context loop{1};
  // Keeps the loop running while the connection is down and nothing else waits on it; join() drops it.
  asio::executor_work_guard<asio::io_context::executor_type> keep_running = asio::make_work_guard(loop);
  std::thread thread;

  std::mutex mutex;  // guards what follows, up to the loop's own state
  std::condition_variable all_done;
  std::vector<PoolJob*> submitted;
  bool flush_posted = false;
  bool accepting = true;
  std::size_t outstanding = 0;  // submitted jobs not completed yet

  // The loop's own state.
  struct InFlight {
    PoolJob* job = nullptr;
    std::string entry;  // the stream entry's id once XADD answered; empty before
    std::string task;   // the RedisTask sent, kept until XADD answered (to resend after a loss)
  };
  std::unordered_map<std::uint64_t, InFlight> in_flight;
  std::vector<PoolJob*> held;  // submitted while the connection is down
  std::uint64_t next_id = 0;
  std::shared_ptr<RedisConnection> commands;
  std::shared_ptr<RedisConnection> results;
  std::string last_read = "0-0";  // the id of the last reply read from the results stream
  std::string resync_sha;
  std::string cancel_sha;
  enum class Link { connected, reconnecting, down } link = Link::down;
  bool stopping = false;
};

RedisExecutorCore::RedisExecutorCore(RedisExecutorOptions options)
    : state_(std::make_shared<State>(std::move(options))) {
  state_->start();
}

RedisExecutorCore::~RedisExecutorCore() {
  close(false);
  join();
}

const std::string& RedisExecutorCore::queue() const noexcept { return state_->options.queue; }

void RedisExecutorCore::State::start() {
  std::promise<void> connected;
  auto ready = connected.get_future();
  asio::co_spawn(loop, connect_all(options.connect_timeout), [&connected, this](std::exception_ptr error) {
    if (error) connected.set_exception(error);
    else {
      link = Link::connected;
      read_results();
      connected.set_value();
    }
  });
  thread = std::thread([self = shared_from_this()] { self->run(); });
  try {
    ready.get();
  } catch (...) {
    loop.stop();
    thread.join();
    throw;
  }
}

void RedisExecutorCore::State::run() noexcept {
  ::pthread_setname_np(::pthread_self(), "cohort-redis");
  try {
    loop.run();
  } catch (const std::exception& error) {
    log_error(fmt::format("RedisExecutor: the I/O thread failed: {}", error.what()));
  }
}

task<void> RedisExecutorCore::State::connect_all(Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  auto remaining = [&] { return std::max<Clock::duration>(deadline - Clock::now(), 1ms); };
  auto command_link = co_await RedisConnection::connect(loop, address, remaining());
  auto results_link = co_await RedisConnection::connect(loop, address, remaining());
  co_await redis::make_queue(*command_link, options.queue);
  resync_sha = co_await command_link->load_script(redis::resync_script);
  cancel_sha = co_await command_link->load_script(redis::cancel_script);
  commands = std::move(command_link);
  results = std::move(results_link);
  const std::weak_ptr<State> weak = weak_from_this();
  const auto on_lost = [weak](const std::string& why) {
    if (auto self = weak.lock()) self->lost(why);
  };
  commands->on_lost(on_lost);
  results->on_lost(on_lost);
}

void RedisExecutorCore::submit(PoolJob& job) {
  auto& state = *state_;
  bool post = false;
  {
    std::lock_guard lock(state.mutex);
    if (!state.accepting) throw Error("RedisExecutor: cannot schedule new futures after shutdown");
    state.submitted.push_back(&job);
    ++state.outstanding;
    post = !std::exchange(state.flush_posted, true);
  }
  if (post) asio::post(state.loop, [self = state_] { self->flush(); });
}

void RedisExecutorCore::State::flush() {
  std::vector<PoolJob*> jobs;
  {
    std::lock_guard lock(mutex);
    jobs.swap(submitted);
    flush_posted = false;
  }
  if (link != Link::connected) {
    held.insert(held.end(), jobs.begin(), jobs.end());
    if (link == Link::down && !stopping)
      asio::co_spawn(loop, reconnect("the connection was down"), asio::detached);
    return;
  }
  std::size_t dropped = 0;
  for (auto* job : jobs) {
    if (!job->start()) {  // cancelled before it left
      ++dropped;
      continue;
    }
    const auto id = ++next_id;
    job->id = id;
    redis::RedisTask task{client,
                          id,
                          static_cast<std::uint32_t>(options.max_retries),
                          static_cast<std::uint32_t>(options.result_ttl.count()),
                          redis::program_build(),
                          std::string(job->call())};
    in_flight.emplace(id, InFlight{job, {}, dumps(task)});
    job->take_call();  // the copy in the task is what is kept
    send_task(id);
  }
  if (dropped) finished(dropped);
}

void RedisExecutorCore::State::send_task(std::uint64_t id) {
  auto& item = in_flight.at(id);
  commands->send({"XADD", tasks_key, "*", redis::task_field, item.task},
                 [this, id, self = shared_from_this()](RedisReply reply) {
                   if (reply.is_lost()) return;  // resent once the connection is back
                   const auto it = in_flight.find(id);
                   if (it == in_flight.end()) return;
                   if (reply.is_error() || reply->type != REDIS_REPLY_STRING) {
                     const auto why = fmt::format("Redis at {} refused the task: {}", address.to_string(), reply_text(*reply));
                     complete(id, [&](PoolJob& job) { job.fail(std::make_exception_ptr(Error(why))); });
                     return;
                   }
                   it->second.entry = reply_text(*reply);
                   std::string().swap(it->second.task);
                 });
}

void RedisExecutorCore::State::read_results() {
  if (link != Link::connected) return;
  results->send({"XREAD", "COUNT", std::to_string(results_per_read), "BLOCK", "0", "STREAMS", results_key, last_read},
                [this, self = shared_from_this()](RedisReply reply) {
                  if (reply.is_lost()) return;
                  if (reply.is_error()) {
                    log_error(fmt::format("RedisExecutor: reading results from Redis at {} failed: {}",
                                          address.to_string(), reply_text(*reply)));
                    results->close("XREAD failed");
                    return;
                  }
                  // [[key, [[id, [field, reply]], ...]]]
                  const auto streams = reply_elements(*reply);
                  if (streams.size() == 1 && reply_elements(*streams[0]).size() == 2) {
                    std::string_view last;
                    for (const auto* entry : reply_elements(*reply_elements(*streams[0])[1])) {
                      const auto parts = reply_elements(*entry);
                      if (parts.size() != 2 || reply_elements(*parts[1]).size() != 2) continue;
                      take_reply(reply_text(*reply_elements(*parts[1])[1]));
                      last = reply_text(*parts[0]);
                    }
                    if (!last.empty()) read_up_to(last);
                  }
                  read_results();
                });
}

void RedisExecutorCore::State::read_up_to(std::string_view id) {
  last_read = std::string(id);
  // What is read goes; if the trim is lost with the connection, the next one takes it too.
  commands->send({"XTRIM", results_key, "MINID", next_stream_id(id)}, [](RedisReply) {});
}

void RedisExecutorCore::State::take_reply(std::string_view bytes) {
  PoolReplyView reply;
  try {
    reply = view_reply(bytes);
  } catch (const std::exception& error) {
    log_error(fmt::format("RedisExecutor: a result in Redis at {} is not one: {}", address.to_string(), error.what()));
    return;
  }
  complete(reply.id, [&](PoolJob& job) {
    if (reply.ok) job.succeed(reply.result);
    else job.fail(exception_of(reply.failure));
  });
}

void RedisExecutorCore::State::complete(std::uint64_t id, const std::function<void(PoolJob&)>& finish) {
  const auto it = in_flight.find(id);
  if (it == in_flight.end()) return;  // a second answer: the first one counted
  auto* job = it->second.job;
  in_flight.erase(it);
  finish(*job);
  finished(1);
}

void RedisExecutorCore::State::finished(std::size_t count) {
  std::lock_guard lock(mutex);
  outstanding -= count;
  if (outstanding == 0) all_done.notify_all();
}

void RedisExecutorCore::State::lost(const std::string& why) {
  if (link != Link::connected) return;
  link = Link::reconnecting;
  commands->close(why);
  results->close(why);
  if (stopping) return;
  asio::co_spawn(loop, reconnect(why), asio::detached);
}

task<void> RedisExecutorCore::State::reconnect(std::string why) {
  link = Link::reconnecting;
  const auto deadline = Clock::now() + options.connect_timeout;
  auto backoff = 20ms;
  std::string last = why;
  while (!stopping) {
    try {
      co_await connect_all(std::max<Clock::duration>(deadline - Clock::now(), 1ms));
      link = Link::connected;
      if (stopping) {  // join() came meanwhile: nothing is left to wait for
        commands->close("the executor shut down");
        results->close("the executor shut down");
        co_return;
      }
      co_await resync();
      if (link != Link::connected) continue;  // lost again during the resync
      read_results();
      auto waiting = std::move(held);
      held.clear();
      {
        std::lock_guard lock(mutex);
        submitted.insert(submitted.begin(), waiting.begin(), waiting.end());
      }
      flush();
      co_return;
    } catch (const std::exception& error) {
      last = error.what();
    }
    if (Clock::now() + backoff >= deadline) break;
    asio::steady_timer timer(loop, backoff);
    co_await timer.async_wait(asio::use_awaitable);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  link = Link::down;
  fail_all(fmt::format("RedisExecutor: lost the connection to Redis at {} ({}) and could not get it back within {} ms: {}",
                       address.to_string(), why, options.connect_timeout.count(), last));
}

task<void> RedisExecutorCore::State::resync() {
  // Tasks whose XADD was answered are looked for in the stream; the others are sent again (a second
  // copy that did arrive gives a second answer, which is dropped).
  std::vector<std::uint64_t> ids;
  std::vector<std::string> command{"EVALSHA", resync_sha, "2", tasks_key, results_key, last_read};
  for (auto& [id, item] : in_flight) {
    if (item.entry.empty()) continue;
    ids.push_back(id);
    command.push_back(item.entry);
  }
  const auto reply = co_await commands->call(std::move(command));
  const auto parts = reply_elements(reply.check());
  if (parts.size() != 3) throw Error("RedisExecutor: the resync script answered in an unknown shape");
  for (const auto* element : reply_elements(*parts[0])) take_reply(reply_text(*element));
  if (reply_text(*parts[2]) != last_read) read_up_to(reply_text(*parts[2]));
  std::size_t lost_count = 0;
  for (const auto* index : reply_elements(*parts[1])) {
    const auto at = reply_integer(*index);
    if (at < 1 || static_cast<std::size_t>(at) > ids.size()) continue;
    ++lost_count;
    complete(ids[static_cast<std::size_t>(at - 1)], [&](PoolJob& job) {
      job.fail(std::make_exception_ptr(Error(fmt::format(
          "RedisExecutor: Redis at {} lost this task (it restarted without persistence, or its data was flushed)",
          address.to_string()))));
    });
  }
  if (lost_count) log_warning(fmt::format("RedisExecutor: Redis at {} lost {} task(s)", address.to_string(), lost_count));
  for (auto& [id, item] : in_flight)
    if (item.entry.empty()) send_task(id);
}

void RedisExecutorCore::State::fail_all(const std::string& why) {
  std::vector<PoolJob*> jobs;
  for (auto& [id, item] : in_flight) jobs.push_back(item.job);
  in_flight.clear();
  jobs.insert(jobs.end(), held.begin(), held.end());
  held.clear();
  {
    std::lock_guard lock(mutex);
    jobs.insert(jobs.end(), submitted.begin(), submitted.end());
    submitted.clear();
  }
  if (!jobs.empty()) log_error(why);
  for (auto* job : jobs) job->fail(std::make_exception_ptr(Error(why)));
  finished(jobs.size());
}

void RedisExecutorCore::State::cancel_queued() {
  std::vector<PoolJob*> jobs = std::move(held);
  held.clear();
  {
    std::lock_guard lock(mutex);
    jobs.insert(jobs.end(), submitted.begin(), submitted.end());
    submitted.clear();
  }
  for (auto* job : jobs) job->cancel();
  if (!jobs.empty()) finished(jobs.size());
  if (link != Link::connected) return;
  // Of the tasks in Redis, those no worker has read yet are deleted there, atomically with the check.
  std::vector<std::uint64_t> ids;
  std::vector<std::string_view> command{"EVALSHA", cancel_sha, "1", tasks_key, redis::group};
  for (auto& [id, item] : in_flight) {
    if (item.entry.empty()) continue;
    ids.push_back(id);
    command.push_back(item.entry);
  }
  if (ids.empty()) return;
  commands->send(command, [this, ids = std::move(ids), self = shared_from_this()](RedisReply reply) {
    if (reply.is_lost() || reply.is_error()) return;  // they stay and run
    for (const auto* index : reply_elements(*reply)) {
      const auto at = reply_integer(*index);
      if (at >= 1 && static_cast<std::size_t>(at) <= ids.size())
        complete(ids[static_cast<std::size_t>(at - 1)], [](PoolJob& job) { job.cancel(); });
    }
  });
}

void RedisExecutorCore::close(bool cancel_queued) {
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->accepting && !cancel_queued) return;
    state_->accepting = false;
  }
  if (cancel_queued) asio::post(state_->loop, [self = state_] { self->cancel_queued(); });
}

void RedisExecutorCore::join() {
  auto& state = *state_;
  if (!state.thread.joinable()) return;
  {
    std::unique_lock lock(state.mutex);
    state.all_done.wait(lock, [&] { return state.outstanding == 0; });
  }
  // Every task answered: this client's results stream goes (a late second answer may bring it back for
  // result_ttl), and the loop ends.
  asio::post(state.loop, [self = state_] {
    self->stopping = true;
    self->keep_running.reset();
    if (self->link == State::Link::connected) {
      self->commands->send({"DEL", self->results_key}, [self](RedisReply) {
        self->commands->close("the executor shut down");
        self->results->close("the executor shut down");
      });
    }  // else the loop ends once a reconnection under way gives up
  });
  state.thread.join();
}

}  // namespace cohort::detail
