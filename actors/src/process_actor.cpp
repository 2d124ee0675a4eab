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
#include <unordered_map>
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

/// The id of the worker's first reply: its object is built (or its constructor failed).
constexpr std::uint64_t hello_id = 0;

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

struct ProcessActorCore::Link {
  std::weak_ptr<ProcessActorCore> core;
  Connection connection;
  std::unique_ptr<Process> process;

  std::mutex mutex;  // guards what follows
  std::uint64_t next_id = hello_id;
  std::unordered_map<std::uint64_t, std::unique_ptr<ActorMessage>> in_flight;
  std::deque<std::string> outgoing;
  std::shared_ptr<FutureState<void>> writer_wake;  // set while the writer waits for something to send
  std::uint64_t stop_id = 0;  // the stop request's id, once sent
  bool closed = false;        // the worker has stopped or died: nothing more is sent

  /// Queues a request for the writer; false once the worker is gone.
  bool queue(std::string bytes) {
    std::shared_ptr<FutureState<void>> wake;
    {
      std::lock_guard lock(mutex);
      if (closed) return false;
      outgoing.push_back(std::move(bytes));
      wake = std::move(writer_wake);
    }
    if (wake) wake->try_set_value();
    return true;
  }

  /// The worker is gone: what was in flight fails with `error`; the writer ends.
  void close(const std::exception_ptr& error) {
    std::unordered_map<std::uint64_t, std::unique_ptr<ActorMessage>> failed;
    std::shared_ptr<FutureState<void>> wake;
    {
      std::lock_guard lock(mutex);
      closed = true;
      failed.swap(in_flight);
      outgoing.clear();
      wake = std::move(writer_wake);
    }
    if (wake) wake->try_set_value();
    for (auto& [id, message] : failed) message->fail(error);
  }
};

namespace {

task<void> write_requests(std::shared_ptr<ProcessActorCore::Link> link) {
  for (;;) {
    std::deque<std::string> batch;
    std::shared_ptr<FutureState<void>> wake;
    {
      std::lock_guard lock(link->mutex);
      if (link->closed) co_return;
      if (link->outgoing.empty()) {
        link->writer_wake = wake = std::make_shared<FutureState<void>>();
      } else {
        batch.swap(link->outgoing);
      }
    }
    if (wake) {
      co_await async_wait_done(wake);
      continue;
    }
    for (auto& bytes : batch) {
      try {
        co_await link->connection.async_send_bytes(std::move(bytes));
      } catch (...) {
        co_return;  // the worker is gone: the reader sees it too and fails what is in flight
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

task<void> read_replies(std::shared_ptr<ProcessActorCore::Link> link) {
  bool stopped = false;
  for (;;) {
    std::string bytes;
    try {
      bytes = co_await link->connection.async_recv_bytes();
    } catch (...) {
      break;  // EOF: the worker has died (or ended without answering the stop)
    }
    ProcessActorReply reply;
    try {
      reply = decode_reply(bytes);
    } catch (...) {
      log_warning("process actor: an undecodable reply from its worker; stopping it");
      link->process->kill();
      break;
    }
    std::unique_ptr<ActorMessage> answered;
    {
      std::lock_guard lock(link->mutex);
      if (reply.id == link->stop_id && link->stop_id != hello_id) {
        stopped = true;
      } else if (const auto found = link->in_flight.find(reply.id); found != link->in_flight.end()) {
        answered = std::move(found->second);
        link->in_flight.erase(found);
      }
    }
    if (stopped) break;
    if (answered) answered->settle_remote(reply);
  }
  // The worker has ended, or is about to (after a stop): reap it without blocking the loop.
  try {
    co_await link->process->async_join();
  } catch (...) {
  }
  const auto core = link->core.lock();
  if (stopped) {
    link->close(std::make_exception_ptr(ActorDeadError("the actor stopped")));
    if (core) core->finish_stop();
    co_return;
  }
  const std::string reason = "died: " + describe_worker_end(*link->process);
  link->close(std::make_exception_ptr(
      ActorDeadError("actor '" + (core ? core->name() : std::string("?")) + "' " + reason + " during the call")));
  if (core) {
    log_warning("actor '" + core->name() + "' " + reason);
    core->die(reason);
  }
}

}  // namespace

ProcessActorCore::ProcessActorCore(asio::io_context& loop, std::string name, std::type_index type,
                                   std::size_t mailbox_size, bool named)
    : ActorCore(loop, std::move(name), type, mailbox_size, named), link_(std::make_shared<Link>()) {
  forward_messages();
}

ProcessActorCore::~ProcessActorCore() {
  // Nobody can reach the actor any more: its worker goes too.
  if (link_->process && link_->process->is_alive()) link_->process->kill();
}

int ProcessActorCore::pid() const noexcept { return link_->process ? link_->process->pid() : 0; }

void ProcessActorCore::launch(const WorkerFactory& make_worker) {
  auto [parent_end, child_end] = Pipe();
  LauncherThread::instance().run([&] {
    link_->process = make_worker(std::move(child_end));
    link_->process->start();
  });
  // The worker answers first with its object built, or with its constructor's exception.
  ProcessActorReply hello;
  try {
    hello = decode_reply(parent_end.recv_bytes());
  } catch (const EOFError&) {
    link_->process->join();
    throw ActorDeadError("spawn_process_actor: actor '" + name() + "' " + describe_worker_end(*link_->process) +
                         " before its object was built");
  }
  if (!hello.ok) {
    link_->process->join();
    rethrow_failure(hello.failure);
  }
  link_->core = std::static_pointer_cast<ProcessActorCore>(shared_from_this());
  link_->connection = std::move(parent_end);
  asio::co_spawn(context(), write_requests(link_), asio::detached);
  asio::co_spawn(context(), read_replies(link_), asio::detached);
}

void ProcessActorCore::forward(std::unique_ptr<ActorMessage> message) {
  ProcessActorRequest request;
  try {
    message->encode_remote(request);
  } catch (...) {
    const auto error = std::current_exception();
    if (request.kind == ProcessActorKind::tell) log_unobserved_failure(name(), error);
    message->fail(error);
    return;
  }
  const bool ask = request.kind == ProcessActorKind::ask;
  {
    std::lock_guard lock(link_->mutex);
    request.id = ++link_->next_id;
    if (ask && !link_->closed) link_->in_flight.emplace(request.id, std::move(message));
  }
  if (!link_->queue(dumps(request)) && message) message->fail(dead_error());
}

void ProcessActorCore::forward_stop() {
  ProcessActorRequest request;
  request.kind = ProcessActorKind::stop;
  {
    std::lock_guard lock(link_->mutex);
    request.id = link_->stop_id = ++link_->next_id;
  }
  // Answered once the worker's actor has handled everything before it and run on_stop; the reader
  // then finishes the stop here. A worker already gone has been seen by the reader, which died().
  link_->queue(dumps(request));
}

void ProcessActorCore::abandon_forwarding() noexcept {
  // The loop that ran the reader and the writer is being destroyed: the worker goes now.
  link_->close(std::make_exception_ptr(ActorDeadError("actor '" + name() + "' is stopped: its Runtime was destroyed")));
  if (link_->process && link_->process->is_alive()) {
    link_->process->kill();
    link_->process->join();
  }
}

// ----- the worker's side -----

namespace {

struct WorkerState {
  Connection parent;
  std::deque<std::string> outgoing;
  std::shared_ptr<FutureState<void>> writer_wake;
  bool done = false;

  void send(const ProcessActorReply& reply) {
    outgoing.push_back(dumps(reply));
    if (auto wake = std::move(writer_wake)) wake->try_set_value();
  }
};

ProcessActorReply failure_reply(std::uint64_t id, const std::exception_ptr& error) {
  ProcessActorReply reply;
  reply.id = id;
  reply.ok = false;
  reply.failure = describe_failure(error);
  return reply;
}

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
    std::shared_ptr<FutureState<std::string>> reply;
    if (request.kind == ProcessActorKind::ask) {
      reply = std::make_shared<FutureState<std::string>>();
      reply->on_done([state, reply, id = request.id] {
        if (const auto error = reply->error()) {
          state->send(failure_reply(id, error));
          return;
        }
        ProcessActorReply done;
        done.id = id;
        done.result = reply->value();
        state->send(done);
      });
    }
    try {
      const auto entry = reinterpret_cast<ProcessActorEntry>(const_cast<void*>(resolve(request.entry)));
      entry(*hosted, request.method, request.arguments, reply);
    } catch (...) {
      if (reply)
        reply->try_set_exception(std::current_exception());
      else
        log_unobserved_failure(hosted->name(), std::current_exception());
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
