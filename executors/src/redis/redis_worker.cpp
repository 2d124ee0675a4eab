// redis_worker: takes a Redis queue's tasks through the consumer group, runs them on a local process
// pool (a process that dies running a task is replaced, and the task counted as a claim and retried),
// and stores each result with the acknowledgement in one script. Two connections: one blocks in
// XREADGROUP while there is room for more tasks, the other carries the scripts (acknowledgements,
// claims of dead workers' tasks, heartbeats of the tasks held). Everything but the pool's own I/O thread
// runs on the calling thread's event loop.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <spdlog/logger.h>

#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/detail/command_line_role.hpp"
#include "cohort/detail/pool_protocol.hpp"
#include "cohort/detail/process_pool_core.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/log.hpp"
#include "cohort/redis_executor.hpp"
#include "redis/redis_connection.hpp"
#include "redis/redis_protocol.hpp"

namespace cohort {

namespace detail {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void log_info(std::string_view message) noexcept {
  try {
    get_logger()->info("{}", message);
  } catch (...) {
  }
}

/// The reply a failure makes, as a client reads it.
std::string failure_reply(std::uint64_t id, const std::exception_ptr& error) {
  PoolReply reply;
  reply.id = id;
  reply.failure = describe_failure(error);
  return dumps(reply);
}

class RedisWorker;

/// One task on the local pool. Its completion comes on the pool's I/O thread and goes to the loop.
class WorkJob final : public PoolJob {
 public:
  WorkJob(RedisWorker& worker, std::string entry, redis::RedisTask task)
      : PoolJob(std::move(task.call)), worker_(&worker), entry_(std::move(entry)), task_(std::move(task)) {}
  ~WorkJob() = default;

  bool start() noexcept override { return true; }
  void succeed(std::string_view result) noexcept override;
  void fail(std::exception_ptr error) noexcept override;
  void lose(std::exception_ptr error) noexcept override;
  void cancel() noexcept override;

  const std::string& entry() const noexcept { return entry_; }
  const redis::RedisTask& task() const noexcept { return task_; }

 private:
  RedisWorker* worker_;
  std::string entry_;
  redis::RedisTask task_;  // its call moved into the job
};

class RedisWorker : public std::enable_shared_from_this<RedisWorker> {
 public:
  explicit RedisWorker(RedisWorkerOptions options)
      : options_(std::move(options)),
        address_(RedisAddress::parse(options_.url)),
        consumer_(redis::process_identity("worker")),
        tasks_key_(redis::tasks_key(options_.queue)),
        claims_key_(redis::claims_key(options_.queue)),
        processes_(options_.processes ? options_.processes : static_cast<std::size_t>(cpu_count())),
        prefetch_(options_.prefetch ? options_.prefetch : 16 * processes_),
        period_(std::clamp<Clock::duration>(options_.claim_after / 4, 10ms, 5s)) {
    if (options_.claim_after <= 0ms) throw std::invalid_argument("redis_worker: claim_after must be positive");
  }

  void serve();
  /// From the pool's I/O thread: the task ended with `reply` (empty: the task goes back to Redis).
  void finished(WorkJob* job, std::string reply);
  void lost_process(WorkJob* job, std::exception_ptr error);

 private:
  task<void> connect(Clock::duration timeout);
  task<void> reconnect(std::string why);
  void lost(const std::string& why);
  void fetch();
  void take_entries(const redisReply& entries, const std::vector<long long>* claims);
  void start_task(std::string entry, const redisReply* fields, long long claims);
  void acknowledge(std::string entry, std::string client, std::uint32_t ttl, std::string reply);
  void send_ack(std::size_t index);
  void count_claim(WorkJob* job, std::exception_ptr error);
  task<void> every_period();
  void claim();
  void heartbeat();
  void stop();
  void maybe_leave();
  std::size_t room() const noexcept { return held_ >= prefetch_ ? 0 : prefetch_ - held_; }

  const RedisWorkerOptions options_;
  const RedisAddress address_;
  const std::string consumer_;
  const std::string tasks_key_;
  const std::string claims_key_;
  const std::size_t processes_;
  const std::size_t prefetch_;
  const Clock::duration period_;

  asio::io_context loop_{1};
  asio::steady_timer period_timer_{loop_};
  std::unique_ptr<ProcessPoolCore> pool_;
  std::shared_ptr<RedisConnection> fetcher_;
  std::shared_ptr<RedisConnection> commands_;
  long long fetcher_id_ = 0;  // its CLIENT ID, for CLIENT UNBLOCK
  struct Scripts {
    std::string ack, claim, heartbeat, leave;
  } sha_;
  bool connected_ = false;
  bool fetching_ = false;
  bool stopping_ = false;
  bool left_ = false;
  Clock::time_point stop_deadline_{};  // stopping without Redis: when to give up on storing results
  std::size_t held_ = 0;  // entries read or claimed and not acknowledged yet
  std::string claim_cursor_ = "0-0";
  std::unordered_map<std::string, WorkJob*> running_;  // by entry
  struct Ack {
    std::string entry, client, reply;
    std::uint32_t ttl = 0;
    bool sent = false;
  };
  std::map<std::uint64_t, Ack> acks_;  // not answered by Redis yet, in the order made
  std::uint64_t next_ack_ = 0;
};

void WorkJob::succeed(std::string_view result) noexcept {
  try {
    PoolReply reply;
    reply.id = task_.id;
    reply.ok = true;
    reply.result = result;
    worker_->finished(this, dumps(reply));
  } catch (...) {
    fail(std::current_exception());
  }
}

void WorkJob::fail(std::exception_ptr error) noexcept {
  try {
    worker_->finished(this, failure_reply(task_.id, error));
  } catch (const std::exception& e) {
    log_error(fmt::format("redis_worker: cannot report a failed task: {}", e.what()));
  }
}

void WorkJob::lose(std::exception_ptr error) noexcept { worker_->lost_process(this, std::move(error)); }

void WorkJob::cancel() noexcept {
  // Only when the local pool is torn down: the entry stays pending and is claimed by a live worker.
  worker_->finished(this, {});
}

void RedisWorker::finished(WorkJob* job, std::string reply) {
  asio::post(loop_, [this, job, reply = std::move(reply)]() mutable {
    std::unique_ptr<WorkJob> owned(job);
    running_.erase(job->entry());
    if (reply.empty()) {
      --held_;
      maybe_leave();
      return;
    }
    acknowledge(job->entry(), job->task().client, job->task().result_ttl, std::move(reply));
  });
}

void RedisWorker::lost_process(WorkJob* job, std::exception_ptr error) {
  asio::post(loop_, [this, job, error = std::move(error)] { count_claim(job, error); });
}

/// A local process died running the job: that counts as a claim of the task, as a dead worker's would.
void RedisWorker::count_claim(WorkJob* job, std::exception_ptr error) {
  if (!connected_) {
    // Without Redis the count cannot be kept: the task stays pending here, and is claimed after us.
    running_.erase(job->entry());
    delete job;
    --held_;
    return;
  }
  commands_->send({"HINCRBY", claims_key_, job->entry(), "1"}, [this, job, error](RedisReply reply) {
    const auto claims = reply.is_lost() || reply.is_error() ? -1 : reply_integer(*reply, -1);
    if (claims < 0 || stopping_) {
      running_.erase(job->entry());
      delete job;
      --held_;
      maybe_leave();
      return;
    }
    if (claims > static_cast<long long>(job->task().max_retries)) {
      job->fail(error);
      return;
    }
    log_warning(fmt::format("redis_worker: task {} lost its process ({} of {} retries): running it again", job->entry(),
                            claims, job->task().max_retries));
    try {
      pool_->submit(*job);
    } catch (...) {
      job->fail(std::current_exception());
    }
  });
}

void RedisWorker::serve() {
  std::exception_ptr failure;
  bool connect_ended = false;
  asio::co_spawn(loop_, connect(options_.connect_timeout), [&](std::exception_ptr error) {
    failure = error;
    connect_ended = true;
  });
  while (!connect_ended) loop_.run_one();
  if (failure) std::rethrow_exception(failure);

  ProcessPoolConfig config;
  config.workers = processes_;
  config.start_method = options_.start_method.value_or(get_start_method());
  config.on_worker_loss = WorkerLoss::replace_worker;
  config.name_prefix = "RedisWorker";
  pool_ = std::make_unique<ProcessPoolCore>(std::move(config));
  log_info(fmt::format("redis_worker {}: serving queue '{}' at {} with {} processes", consumer_, options_.queue,
                       address_.to_string(), processes_));

  asio::signal_set signals(loop_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });
  fetch();
  asio::co_spawn(loop_, every_period(), asio::detached);
  while (!left_) loop_.run_one();

  signals.cancel();
  period_timer_.cancel();
  // Tasks still held only when Redis stayed away past the stop: they are pending there, and claimed.
  if (held_ != 0) pool_->terminate();
  pool_->close();
  pool_->join();
  loop_.poll();  // the jobs' last words, the timer's end
}

task<void> RedisWorker::connect(Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  auto remaining = [&] { return std::max<Clock::duration>(deadline - Clock::now(), 1ms); };
  auto fetcher = co_await RedisConnection::connect(loop_, address_, remaining());
  auto commands = co_await RedisConnection::connect(loop_, address_, remaining());
  co_await redis::make_queue(*commands, options_.queue);
  sha_.ack = co_await commands->load_script(redis::ack_script);
  sha_.claim = co_await commands->load_script(redis::claim_script);
  sha_.heartbeat = co_await commands->load_script(redis::heartbeat_script);
  sha_.leave = co_await commands->load_script(redis::leave_script);
  std::vector<std::string> client_id{"CLIENT", "ID"};
  fetcher_id_ = reply_integer((co_await fetcher->call(std::move(client_id))).check());
  fetcher_ = std::move(fetcher);
  commands_ = std::move(commands);
  const std::weak_ptr<RedisWorker> weak = weak_from_this();
  const auto on_lost = [weak](const std::string& why) {
    if (auto self = weak.lock()) self->lost(why);
  };
  fetcher_->on_lost(on_lost);
  commands_->on_lost(on_lost);
  connected_ = true;
}

void RedisWorker::lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  fetching_ = false;
  fetcher_->close(why);
  commands_->close(why);
  for (auto& [id, ack] : acks_) ack.sent = false;
  if (left_) return;
  log_warning(fmt::format("redis_worker {}: lost Redis at {} ({}); reconnecting", consumer_, address_.to_string(), why));
  asio::co_spawn(loop_, reconnect(why), asio::detached);
}

task<void> RedisWorker::reconnect(std::string why) {
  auto backoff = 20ms;
  for (;;) {
    try {
      co_await connect(options_.connect_timeout);
      log_info(fmt::format("redis_worker {}: connected to Redis at {} again", consumer_, address_.to_string()));
      for (auto& [id, ack] : acks_) send_ack(id);
      if (stopping_) {
        maybe_leave();
        co_return;
      }
      fetch();
      co_return;
    } catch (const std::exception& error) {
      why = error.what();
    }
    if (stopping_ && (held_ == 0 || Clock::now() > stop_deadline_)) {  // nothing more can be reported
      if (held_ != 0)
        log_error(fmt::format("redis_worker {}: stopping without Redis; {} task(s) stay pending there for another worker",
                              consumer_, held_));
      left_ = true;
      co_return;
    }
    asio::steady_timer timer(loop_, backoff);
    co_await timer.async_wait(asio::use_awaitable);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

void RedisWorker::fetch() {
  if (fetching_ || stopping_ || !connected_ || room() == 0) return;
  fetching_ = true;
  fetcher_->send({"XREADGROUP", "GROUP", redis::group, consumer_, "COUNT", std::to_string(room()), "BLOCK", "1000",
                  "STREAMS", tasks_key_, ">"},
                 [this, self = shared_from_this()](RedisReply reply) {
                   if (reply.is_lost()) return;
                   fetching_ = false;
                   if (reply.is_error()) {
                     // NOGROUP: Redis restarted without the queue; the reconnection makes it again.
                     log_warning(fmt::format("redis_worker {}: XREADGROUP failed: {}", consumer_, reply_text(*reply)));
                     fetcher_->close(std::string(reply_text(*reply)));
                     return;
                   }
                   // [[stream, [[id, [field, value, ...]], ...]]] or nil when nothing came
                   for (const auto* stream : reply_elements(*reply)) {
                     const auto parts = reply_elements(*stream);
                     if (parts.size() == 2) take_entries(*parts[1], nullptr);
                   }
                   if (stopping_) maybe_leave();
                   else fetch();
                 });
}

void RedisWorker::take_entries(const redisReply& entries, const std::vector<long long>* claims) {
  std::size_t i = 0;
  for (const auto* entry : reply_elements(entries)) {
    const long long count = claims && i < claims->size() ? (*claims)[i] : 0;
    ++i;
    const auto parts = reply_elements(*entry);
    if (parts.size() != 2) continue;  // an entry deleted while pending
    start_task(std::string(reply_text(*parts[0])), parts[1], count);
  }
}

void RedisWorker::start_task(std::string entry, const redisReply* fields, long long claims) {
  if (running_.contains(entry)) return;  // claimed back while still running here
  ++held_;
  std::string_view payload;
  bool found = false;
  const auto values = reply_elements(*fields);
  for (std::size_t i = 0; i + 1 < values.size(); i += 2) {
    if (reply_text(*values[i]) == redis::task_field) {
      payload = reply_text(*values[i + 1]);
      found = true;
    }
  }
  redis::RedisTask task;
  try {
    if (!found) throw SerializationError("the entry has no 'task' field");
    task = loads<redis::RedisTask>(payload);
  } catch (const std::exception& error) {
    // Nobody to tell: the entry goes, so that it cannot stop the queue.
    log_error(fmt::format("redis_worker {}: entry {} of queue '{}' is not a cohort task ({}); dropped", consumer_,
                          entry, options_.queue, error.what()));
    acknowledge(std::move(entry), {}, 0, {});
    return;
  }
  const auto refuse = [&](const std::string& why) {
    acknowledge(std::move(entry), task.client, task.result_ttl, failure_reply(task.id, std::make_exception_ptr(ProcessError(why))));
  };
  if (claims > static_cast<long long>(task.max_retries)) {
    return refuse(fmt::format("the task's worker died {} time(s) while running it (max_retries {}); it is not retried",
                              claims, task.max_retries));
  }
  if (task.build != redis::program_build()) {
    CallFrame frame;
    try {
      BinaryReader archive(task.call);
      archive(frame);
    } catch (const std::exception& error) {
      return refuse(fmt::format("the task's call cannot be read: {}", error.what()));
    }
    if (frame.name.empty())
      return refuse(fmt::format("this worker runs another build of the program ({}, the client's {}): a call by address "
                                "needs the same build, or a function named with COHORT_REMOTE",
                                redis::program_build(), task.build));
  }
  auto job = std::make_unique<WorkJob>(*this, entry, std::move(task));
  try {
    pool_->submit(*job);
  } catch (...) {
    --held_;  // the pool is closing: the entry stays pending for another worker
    return;
  }
  running_.emplace(std::move(entry), job.release());
}

void RedisWorker::acknowledge(std::string entry, std::string client, std::uint32_t ttl, std::string reply) {
  const auto id = next_ack_++;
  acks_.emplace(id, Ack{std::move(entry), std::move(client), std::move(reply), ttl});
  send_ack(id);
}

void RedisWorker::send_ack(std::size_t id) {
  auto& ack = acks_.at(id);
  if (!connected_ || ack.sent) return;
  ack.sent = true;
  const auto results = ack.client.empty() ? tasks_key_ : redis::results_key(options_.queue, ack.client);
  const auto ttl = std::to_string(std::max<std::uint32_t>(ack.ttl, 1));
  commands_->send({"EVALSHA", sha_.ack, "3", tasks_key_, results, claims_key_, redis::group, ack.entry, ack.reply, ttl},
                  [this, id, self = shared_from_this()](RedisReply reply) {
                    if (reply.is_lost()) return;  // sent again after the reconnection
                    if (reply.is_error())
                      log_error(fmt::format("redis_worker {}: storing a result failed: {}", consumer_, reply_text(*reply)));
                    acks_.erase(id);
                    --held_;
                    if (stopping_) maybe_leave();
                    else fetch();
                  });
}

task<void> RedisWorker::every_period() {
  while (!left_) {
    period_timer_.expires_after(period_);
    boost::system::error_code ec;
    co_await period_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || left_) co_return;
    if (!connected_) continue;
    heartbeat();
    if (!stopping_) claim();
  }
}

void RedisWorker::heartbeat() {
  if (running_.empty()) return;
  std::vector<std::string_view> command{"EVALSHA", sha_.heartbeat, "1", tasks_key_, redis::group, consumer_};
  for (const auto& [entry, job] : running_) command.push_back(entry);
  commands_->send(command, [](RedisReply) {});
}

void RedisWorker::claim() {
  if (room() == 0) return;
  const auto idle = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(options_.claim_after).count());
  commands_->send({"EVALSHA", sha_.claim, "2", tasks_key_, claims_key_, redis::group, consumer_, idle,
                   std::to_string(room()), claim_cursor_},
                  [this, self = shared_from_this()](RedisReply reply) {
                    if (reply.is_lost()) return;
                    if (reply.is_error()) {
                      log_warning(fmt::format("redis_worker {}: claiming failed: {}", consumer_, reply_text(*reply)));
                      return;
                    }
                    const auto parts = reply_elements(*reply);  // {cursor, entries, counts}
                    if (parts.size() != 3) return;
                    claim_cursor_ = reply_text(*parts[0]);
                    if (claim_cursor_.empty()) claim_cursor_ = "0-0";
                    std::vector<long long> counts;
                    for (const auto* count : reply_elements(*parts[2])) counts.push_back(reply_integer(*count));
                    if (!counts.empty())
                      log_warning(fmt::format("redis_worker {}: claimed {} task(s) of a worker that stopped", consumer_,
                                              counts.size()));
                    take_entries(*parts[1], &counts);
                  });
}

void RedisWorker::stop() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = Clock::now() + options_.connect_timeout;
  log_info(fmt::format("redis_worker {}: stopping once the {} task(s) held are done", consumer_, held_));
  if (connected_ && fetching_) commands_->send({"CLIENT", "UNBLOCK", std::to_string(fetcher_id_)}, [](RedisReply) {});
  maybe_leave();
}

void RedisWorker::maybe_leave() {
  if (!stopping_ || held_ != 0 || fetching_ || left_) return;
  if (!connected_) {
    left_ = true;
    return;
  }
  commands_->send({"EVALSHA", sha_.leave, "1", tasks_key_, redis::group, consumer_}, [this, self = shared_from_this()](RedisReply) {
    left_ = true;
    fetcher_->close("the worker stopped");
    commands_->close("the worker stopped");
  });
}

}  // namespace
}  // namespace detail

void redis_worker(RedisWorkerOptions options) {
  auto worker = std::make_shared<detail::RedisWorker>(std::move(options));
  worker->serve();
}

namespace detail {

namespace {

void run_redis_worker_role(const std::vector<std::string>& arguments) {
  RedisWorkerOptions options;
  for (std::size_t i = 0; i + 1 < arguments.size(); ++i) {
    if (arguments[i] == "--cohort-redis-worker") options.url = arguments[i + 1];
    else if (arguments[i] == "--cohort-redis-queue") options.queue = arguments[i + 1];
    else if (arguments[i] == "--cohort-redis-processes") options.processes = std::stoul(arguments[i + 1]);
  }
  redis_worker(std::move(options));
}

}  // namespace

bool register_redis_worker_role() noexcept {
  return register_command_line_role("--cohort-redis-worker", &run_redis_worker_role);
}

}  // namespace detail
}  // namespace cohort
