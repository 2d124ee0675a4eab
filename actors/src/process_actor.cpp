// Process actors: the parent's forwarding side (the worker's launch, a writer and a reader coroutine on
// the actor's loop, the calls in flight, the worker's death) and the worker's loop that hosts the object.
#include "cohort/detail/process_actor.hpp"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <map>
#include <vector>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/actor_message.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/process_actor_protocol.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "cohort/runtime.hpp"
#include "cohort/spawn.hpp"

namespace cohort::detail {

namespace asio = boost::asio;

namespace {

/// The thread that starts process actors' workers. A daemon child is killed when the thread that
/// forked it ends (PR_SET_PDEATHSIG), so workers are started from this one, which lasts as long as the
/// program, not from whichever thread spawned the actor (a Runtime's helper threads end with each run).
class LauncherThread {
 public:
  static LauncherThread& instance() {
    // Never destroyed: it may be used until exit. A child forked from this process has no launcher
    // thread (only the forking thread survives a fork), so it starts its own.
    static std::mutex mutex;
    static LauncherThread* launcher = nullptr;
    static pid_t owner = 0;
    std::lock_guard lock(mutex);
    if (launcher == nullptr || owner != ::getpid()) {
      launcher = new LauncherThread;
      owner = ::getpid();
    }
    return *launcher;
  }

  /// Runs `job` on the launcher thread and waits for it; rethrows what it threw.
  void run(const std::function<void()>& job) {
    std::exception_ptr error;
    bool done = false;
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back([&] {
        try {
          job();
        } catch (...) {
          error = std::current_exception();
        }
        std::lock_guard done_lock(mutex_);
        done = true;
        done_.notify_all();
      });
      wake_.notify_one();
    }
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return done; });
    if (error) std::rethrow_exception(error);
  }

 private:
  LauncherThread() {
    std::thread([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(mutex_);
          wake_.wait(lock, [&] { return !jobs_.empty(); });
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    }).detach();
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<std::function<void()>> jobs_;
};

}  // namespace

void run_on_launcher_thread(const std::function<void()>& job) { LauncherThread::instance().run(job); }

namespace {

/// The id of the worker's first reply: its object is built (or its constructor failed).
constexpr std::uint64_t hello_id = 0;

/// Writes `bytes` into the pipe if they fit now; false (nothing written) if not, or if the other end is
/// gone (the reader sees that and reports it).
bool sent_directly(Connection& connection, std::string_view bytes) noexcept {
  try {
    return connection.try_send_bytes(bytes);
  } catch (...) {
    return false;
  }
}

/// Decodes a reply, or fails with a SerializationError that names the actor.
ProcessActorReply decode_reply(std::string_view bytes) { return loads<ProcessActorReply>(bytes); }

}  // namespace

std::string encode_member_pointer(const MemberPointerBits& bits) {
  // A virtual member's "pointer" is 1 + its vtable offset, the same in every process; a non-virtual
  // member's is its code address, which travels module-relative as every function of a call frame does.
  const bool is_virtual = (bits.pointer & 1) != 0;
  std::string out;
  BinaryWriter archive(out);
  archive(is_virtual, static_cast<std::int64_t>(bits.adjustment));
  if (is_virtual)
    archive(static_cast<std::uint64_t>(bits.pointer));
  else
    archive(address_of(reinterpret_cast<const void*>(bits.pointer)));
  return out;
}

MemberPointerBits decode_member_pointer(std::string_view bytes) {
  BinaryReader archive(bytes);
  bool is_virtual = false;
  std::int64_t adjustment = 0;
  MemberPointerBits bits{};
  try {
    archive(is_virtual, adjustment);
    if (is_virtual) {
      std::uint64_t pointer = 0;
      archive(pointer);
      bits.pointer = static_cast<std::uintptr_t>(pointer);
    } else {
      FunctionAddress address;
      archive(address);
      bits.pointer = reinterpret_cast<std::uintptr_t>(resolve(address));
    }
  } catch (const SerializationError&) {
    throw;
  } catch (...) {
    rethrow_as_serialization_error("a member function pointer", true);
  }
  bits.adjustment = static_cast<std::ptrdiff_t>(adjustment);
  return bits;
}

void throw_not_remote_method(std::string_view method_type) {
  throw SerializationError(fmt::format(
      "process actor: the method {} cannot be called in another process; pass a member function "
      "(&Class::method) or a captureless lambda",
      method_type));
}

void throw_not_transferable_call(std::string_view type, std::string_view what) {
  throw SerializationError(fmt::format(
      "process actor: the {} of type {} cannot cross to the actor's process; give it a cereal "
      "serialize() (or save/load) function",
      what, type));
}

// ----- the parent's side -----

/// The forwarding state of a process actor, shared by its core and the reader and writer coroutines of
/// its current worker. A restart replaces the worker (a new generation); the calls sent to the old one
/// and not answered, but the one it was handling, go to the new one first, in order.
struct ProcessActorCore::Link {
  std::weak_ptr<ProcessActorCore> core;

  std::mutex mutex;  // guards what follows
  std::uint64_t generation = 0;
  std::shared_ptr<Process> process;
  std::shared_ptr<Connection> connection;
  bool open = false;  // a worker is running and takes requests
  std::uint64_t next_id = hello_id;
  std::map<std::uint64_t, std::unique_ptr<ActorMessage>> in_flight;  // by id: in the order sent
  std::deque<std::unique_ptr<ActorMessage>> held;  // to send once a worker runs again
  std::deque<std::string> outgoing;
  std::shared_ptr<FutureState<void>> writer_wake;  // set while the writer waits for something to send
  std::uint64_t stop_id = 0;  // the stop request's id, once sent
  bool restart_after_stop = false;  // a graceful restart: a new worker follows the stop
  bool restart_on_death = false;    // a forced restart: the worker was killed on purpose

  /// Encodes and queues `message` for the worker, or holds it while there is none. With the lock held.
  void send_locked(std::unique_ptr<ActorMessage> message, const std::string& actor) {
    if (!open) {
      held.push_back(std::move(message));
      return;
    }
    ProcessActorRequest request;
    try {
      message->encode_remote(request);
    } catch (...) {
      const auto error = std::current_exception();
      if (request.kind == ProcessActorKind::tell) log_unobserved_failure(actor, error);
      message->fail(error);
      return;
    }
    request.id = ++next_id;
    in_flight.emplace(request.id, std::move(message));
    queue_locked(dumps(request));
  }

  void queue_locked(std::string bytes) {
    // A parked writer is not writing: the bytes go straight into the pipe when they fit, which saves
    // the writer's resumption (a post and a coroutine switch) on every call.
    if (writer_wake && outgoing.empty() && connection && sent_directly(*connection, bytes)) return;
    outgoing.push_back(std::move(bytes));
    if (auto wake = std::move(writer_wake)) wake->try_set_value();  // it only posts the writer's resumption
  }

  /// Asks the worker to stop once it has handled what it has. With the lock held.
  void queue_stop_locked() {
    ProcessActorRequest request;
    request.kind = ProcessActorKind::stop;
    request.id = stop_id = ++next_id;
    queue_locked(dumps(request));
  }

  /// The current worker is gone: stops its writer. With the lock held.
  void close_locked() {
    open = false;
    outgoing.clear();
    if (auto wake = std::move(writer_wake)) wake->try_set_value();
  }

  /// Every message in flight and held, failed with `error`. With the lock held; they are failed after.
  std::vector<std::unique_ptr<ActorMessage>> take_all_locked() {
    std::vector<std::unique_ptr<ActorMessage>> all;
    for (auto& [id, message] : in_flight) all.push_back(std::move(message));
    in_flight.clear();
    for (auto& message : held) all.push_back(std::move(message));
    held.clear();
    return all;
  }
};

namespace {

task<void> write_requests(std::shared_ptr<ProcessActorCore::Link> link, std::uint64_t generation,
                          std::shared_ptr<Connection> connection) {
  for (;;) {
    std::deque<std::string> batch;
    std::shared_ptr<FutureState<void>> wake;
    {
      std::lock_guard lock(link->mutex);
      if (link->generation != generation || !link->open) co_return;
      if (link->outgoing.empty())
        link->writer_wake = wake = std::make_shared<FutureState<void>>();
      else
        batch.swap(link->outgoing);
    }
    if (wake) {
      co_await async_wait_done(wake);
      continue;
    }
    for (auto& bytes : batch) {
      try {
        co_await connection->async_send_bytes(std::move(bytes));
      } catch (...) {
        co_return;  // the worker is gone: the reader sees it too
      }
    }
  }
}

/// "its process (pid 42) was killed by signal 9 (SIGKILL)".
std::string describe_worker_end(Process& process) {
  const auto code = process.exitcode();
  return fmt::format("its process (pid {}) {}", process.pid(),
                     code ? describe_exit(*code) : std::string("closed its connection"));
}

}  // namespace

task<void> ProcessActorCore::read_replies(asio::io_context& loop, std::shared_ptr<Link> link, std::uint64_t generation,
                                          std::shared_ptr<Connection> connection, std::shared_ptr<Process> process) {
  bool stopped = false;
  for (;;) {
    std::string bytes;
    try {
      bytes = co_await connection->async_recv_bytes();
    } catch (...) {
      break;  // EOF: the worker has died (or ended without answering the stop)
    }
    ProcessActorReply reply;
    try {
      reply = decode_reply(bytes);
    } catch (...) {
      log_warning("process actor: an undecodable reply from its worker; stopping it");
      process->kill();
      break;
    }
    std::unique_ptr<ActorMessage> answered;
    {
      std::lock_guard lock(link->mutex);
      if (reply.id == link->stop_id) {
        stopped = true;
      } else if (const auto found = link->in_flight.find(reply.id); found != link->in_flight.end()) {
        answered = std::move(found->second);
        link->in_flight.erase(found);
      }
    }
    if (stopped) break;
    if (answered) {
      // No lock is held here: the asker resumes at once (on a one-thread loop) rather than after a post,
      // and its next ask goes straight into the pipe (an idle forwarding actor handles it in place).
      InlineResumeScope resume_asker_here(loop);
      answered->settle_remote(reply);
    }
  }
  // The worker has ended, or is about to (after a stop): reap it without blocking the loop.
  try {
    co_await process->async_join();
  } catch (...) {
  }
  const auto core = link->core.lock();
  if (!core) co_return;
  core->worker_ended(stopped, "died: " + describe_worker_end(*process));
}

void ProcessActorCore::worker_ended(bool stopped, const std::string& reason) noexcept {
  bool relaunch = false;
  std::vector<std::unique_ptr<ActorMessage>> failed;
  std::unique_ptr<ActorMessage> in_progress;
  const bool supervised = !watcher_expired();
  {
    std::lock_guard lock(link_->mutex);
    link_->close_locked();
    if (stopped && !link_->restart_after_stop) {
      failed = link_->take_all_locked();  // nothing: the worker answered all before the stop
    } else if (stopped || link_->restart_on_death) {
      relaunch = true;  // a restart the supervisor asked for: what was not answered goes again
    } else if (supervised) {
      // The first call not answered is the one the worker was handling: it fails; the others wait.
      if (!link_->in_flight.empty()) {
        in_progress = std::move(link_->in_flight.begin()->second);
        link_->in_flight.erase(link_->in_flight.begin());
      }
    } else {
      failed = link_->take_all_locked();
    }
    if (relaunch || (supervised && !stopped)) {
      for (auto it = link_->in_flight.rbegin(); it != link_->in_flight.rend(); ++it)
        link_->held.push_front(std::move(it->second));
      link_->in_flight.clear();
    }
    link_->restart_after_stop = link_->restart_on_death = false;
    link_->stop_id = 0;
  }
  const auto died = std::make_exception_ptr(ActorDeadError("actor '" + name() + "' " + reason + " during the call"));
  if (in_progress) in_progress->fail(died);
  if (stopped && !relaunch) {
    for (auto& message : failed) message->fail(dead_error());
    finish_stop();
    return;
  }
  if (relaunch) {
    relaunch_worker();
    return;
  }
  log_warning("actor '" + name() + "' " + reason);
  for (auto& message : failed) message->fail(died);
  const auto why = std::make_exception_ptr(ActorDeadError("actor '" + name() + "' " + reason));
  if (!report_failure(why)) die(reason);
}

ProcessActorCore::ProcessActorCore(asio::io_context& loop, std::string name, std::type_index type,
                                   std::size_t mailbox_size, bool named)
    : ActorCore(loop, std::move(name), type, mailbox_size, named), link_(std::make_shared<Link>()) {
  forward_messages();
}

ProcessActorCore::~ProcessActorCore() {
  // Nobody can reach the actor any more: its worker goes too.
  std::shared_ptr<Process> process;
  {
    std::lock_guard lock(link_->mutex);
    process = link_->process;
  }
  if (process && process->is_alive()) process->kill();
}

int ProcessActorCore::pid() const noexcept {
  std::lock_guard lock(link_->mutex);
  return link_->process ? link_->process->pid() : 0;
}

void ProcessActorCore::launch(WorkerFactory make_worker) {
  make_worker_ = std::move(make_worker);
  link_->core = std::static_pointer_cast<ProcessActorCore>(shared_from_this());
  start_worker();
}

void ProcessActorCore::start_worker() {
  auto [parent_end, child_end] = Pipe();
  std::shared_ptr<Process> process;
  run_on_launcher_thread([&] {
    process = make_worker_(std::move(child_end));
    process->start();
  });
  // The worker answers first with its object built, or with its constructor's exception.
  ProcessActorReply hello;
  try {
    hello = decode_reply(parent_end.recv_bytes());
  } catch (const EOFError&) {
    process->join();
    throw ActorDeadError("actor '" + name() + "' " + describe_worker_end(*process) + " before its object was built");
  }
  if (!hello.ok) {
    process->join();
    rethrow_failure(hello.failure);
  }
  auto connection = std::make_shared<Connection>(std::move(parent_end));
  std::uint64_t generation = 0;
  std::deque<std::unique_ptr<ActorMessage>> held;
  {
    std::lock_guard lock(link_->mutex);
    generation = ++link_->generation;
    link_->process = process;
    link_->connection = connection;
    link_->open = true;
    held.swap(link_->held);
    for (auto& message : held) link_->send_locked(std::move(message), name());
  }
  asio::co_spawn(context(), write_requests(link_, generation, connection), asio::detached);
  asio::co_spawn(context(), read_replies(context(), link_, generation, connection, process), asio::detached);
}

void ProcessActorCore::relaunch_worker() noexcept {
  try {
    start_worker();
  } catch (...) {
    log_warning("actor '" + name() + "': its worker failed to start again");
    if (!report_failure(std::current_exception())) die("failed to restart its worker");
    return;
  }
  resume();
}

void ProcessActorCore::forward(std::unique_ptr<ActorMessage> message) {
  std::lock_guard lock(link_->mutex);
  link_->send_locked(std::move(message), name());
}

void ProcessActorCore::forward_stop() {
  std::vector<std::unique_ptr<ActorMessage>> failed;
  {
    std::lock_guard lock(link_->mutex);
    if (link_->open) {
      // Answered once the worker's actor has handled everything before it and run on_stop; the reader
      // then finishes the stop here.
      link_->queue_stop_locked();
      return;
    }
    failed = link_->take_all_locked();  // no worker (it failed and is being stopped for good)
  }
  for (auto& message : failed) message->fail(dead_error());
  finish_stop();
}

void ProcessActorCore::restart(bool graceful) {
  std::shared_ptr<Process> kill;
  {
    std::lock_guard lock(link_->mutex);
    if (link_->open) {
      if (graceful) {
        // The worker handles what it has, runs on_stop and exits; a new one takes the rest.
        link_->restart_after_stop = true;
        link_->queue_stop_locked();
      } else {
        link_->restart_on_death = true;
        kill = link_->process;
      }
    }
  }
  if (kill) {
    kill->kill();
    return;
  }
  {
    std::lock_guard lock(link_->mutex);
    if (link_->open) return;  // the stop is on its way; the reader starts the new worker
  }
  relaunch_worker();
}

void ProcessActorCore::abandon_forwarding() noexcept {
  // The loop that ran the reader and the writer is being destroyed: the worker goes now.
  std::vector<std::unique_ptr<ActorMessage>> failed;
  std::shared_ptr<Process> process;
  {
    std::lock_guard lock(link_->mutex);
    link_->close_locked();
    failed = link_->take_all_locked();
    process = link_->process;
  }
  const auto error = std::make_exception_ptr(ActorDeadError("actor '" + name() + "' is stopped: its Runtime was destroyed"));
  for (auto& message : failed) message->fail(error);
  if (process && process->is_alive()) {
    process->kill();
    process->join();
  }
}

ProcessActorReply failure_reply(std::uint64_t id, const std::exception_ptr& error) {
  ProcessActorReply reply;
  reply.id = id;
  reply.ok = false;
  reply.failure = describe_failure(error);
  return reply;
}

// ----- the worker's side -----

namespace {

struct WorkerState {
  Connection parent;
  std::deque<std::string> outgoing;
  std::shared_ptr<FutureState<void>> writer_wake;
  bool done = false;

  void send(const ProcessActorReply& reply) {
    std::string bytes = dumps(reply);
    // As the parent's queue_locked: a parked writer lets the reply go straight into the pipe.
    if (writer_wake && outgoing.empty() && sent_directly(parent, bytes)) return;
    outgoing.push_back(std::move(bytes));
    if (auto wake = std::move(writer_wake)) wake->try_set_value();
  }
};

task<void> write_replies(std::shared_ptr<WorkerState> state) {
  for (;;) {
    if (state->outgoing.empty()) {
      if (state->done) co_return;
      auto wake = state->writer_wake = std::make_shared<FutureState<void>>();
      co_await async_wait_done(wake);
      continue;
    }
    auto bytes = std::move(state->outgoing.front());
    state->outgoing.pop_front();
    co_await state->parent.async_send_bytes(std::move(bytes));
  }
}

task<void> serve(std::shared_ptr<WorkerState> state, std::shared_ptr<ActorCore> hosted) {
  // Everything here runs on the worker's one loop thread: replies are queued from done-callbacks that
  // run there too.
  for (;;) {
    std::string bytes;
    try {
      bytes = co_await state->parent.async_recv_bytes();
    } catch (...) {
      break;  // the parent is gone
    }
    ProcessActorRequest request;
    try {
      request = loads<ProcessActorRequest>(bytes);
    } catch (...) {
      log_warning("process actor: an undecodable request from the parent; stopping");
      break;
    }
    if (request.kind == ProcessActorKind::stop) {
      hosted->request_stop();
      co_await async_wait_done(hosted->stopped());
      ProcessActorReply reply;
      reply.id = request.id;
      state->send(reply);
      break;
    }
    // A tell is answered too, once handled (its failure is logged here): the parent keeps each call
    // until its answer, so that a restart can hand the unanswered ones to the next worker.
    auto reply = std::make_shared<FutureState<std::string>>();
    reply->on_done([state, reply, hosted, id = request.id, tell = request.kind == ProcessActorKind::tell] {
      ProcessActorReply done;
      done.id = id;
      if (const auto error = reply->error()) {
        if (!tell) {
          state->send(failure_reply(id, error));
          return;
        }
        log_unobserved_failure(hosted->name(), error);
      } else if (!tell) {
        done.result = reply->value();
      }
      state->send(done);
    });
    try {
      const auto entry = reinterpret_cast<ProcessActorEntry>(const_cast<void*>(resolve(request.entry)));
      entry(*hosted, request.method, request.arguments, reply);
    } catch (...) {
      reply->try_set_exception(std::current_exception());
    }
  }
  state->done = true;
  if (auto wake = std::move(state->writer_wake)) wake->try_set_value();
}

}  // namespace

void serve_process_actor(Connection parent, std::string name, const HostedActorFactory& make) {
  Runtime runtime(1);
  auto state = std::make_shared<WorkerState>();
  state->parent = std::move(parent);
  std::shared_ptr<ActorCore> hosted;
  try {
    hosted = make(runtime.context(), std::move(name));
  } catch (...) {
    state->parent.send_bytes(dumps(failure_reply(hello_id, std::current_exception())));
    return;
  }
  state->parent.send_bytes(dumps(ProcessActorReply{}));
  runtime.run([](std::shared_ptr<WorkerState> worker, std::shared_ptr<ActorCore> actor) -> task<void> {
    auto writer = spawn(write_replies(worker));
    co_await serve(worker, std::move(actor));
    co_await writer.async_get();
  }(state, hosted));
}

}  // namespace cohort::detail
