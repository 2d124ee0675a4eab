// A manager's client side: the shared connection (a writer and a reader coroutine on the proxies'
// loop, the calls in flight by id) and the proxies' forwarding cores.
#include "cohort/detail/manager_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <vector>

#include "cohort/codec.hpp"
#include "cohort/detail/actor_message.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/authentication.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/actor.hpp"
#include "cohort/error.hpp"
#include "cohort/future.hpp"
#include "cohort/lock.hpp"
#include "cohort/spawn.hpp"
#include "cohort/wait_for.hpp"

namespace cohort::detail {

namespace asio = boost::asio;

std::vector<std::string> managed_method_names(std::string_view spelled) {
  // Split at the commas outside parentheses and angle brackets; each name is the identifier after the
  // last "::" of its part (a cast's closing parenthesis and spaces trimmed).
  std::vector<std::string> names;
  int depth = 0;
  std::size_t begin = 0;
  const auto take = [&](std::size_t end) {
    std::string_view part = spelled.substr(begin, end - begin);
    while (!part.empty() && (part.back() == ' ' || part.back() == ')' || part.back() == '\n')) part.remove_suffix(1);
    const auto colons = part.rfind("::");
    if (colons != std::string_view::npos) part.remove_prefix(colons + 2);
    names.emplace_back(part);
  };
  for (std::size_t i = 0; i < spelled.size(); ++i) {
    const char c = spelled[i];
    if (c == '(' || c == '<') ++depth;
    if (c == ')' || c == '>') --depth;
    if (c == ',' && depth == 0) {
      take(i);
      begin = i + 1;
    }
  }
  take(spelled.size());
  return names;
}

void throw_not_managed_method(std::string_view type, std::string_view method_type) {
  throw SerializationError(fmt::format(
      "manager: {} cannot be called on a {} served by a manager; list the method in "
      "COHORT_MANAGED_METHODS({}, ...) so that it can be named in another program",
      method_type, type, type));
}

/// A call or a control request waiting for its answer.
struct ManagerConnection::Pending {
  std::unique_ptr<ActorMessage> message;
  std::shared_ptr<FutureState<ProcessActorReply>> control;
};

ManagerConnection::ManagerConnection(asio::io_context& loop, Address address, std::string authkey, SocketChannel channel)
    : loop_(&loop), address_(std::move(address)), authkey_(std::move(authkey)), channel_(std::move(channel)) {}

ManagerConnection::~ManagerConnection() { channel_.close(); }

task<std::shared_ptr<ManagerConnection>> ManagerConnection::async_open(asio::io_context& loop, Address address,
                                                                        std::string authkey, Clock::duration timeout) {
  auto channel = co_await wait_for(SocketChannel::async_connect(loop, address), timeout);
  co_await wait_for(async_authenticate_server(channel, authkey), timeout);
  std::shared_ptr<ManagerConnection> self(
      new ManagerConnection(loop, std::move(address), std::move(authkey), std::move(channel)));
  asio::co_spawn(loop, write_requests(self), asio::detached);
  asio::co_spawn(loop, read_replies(self), asio::detached);
  if (self->address_.is_tcp()) {
    ManagerRequest request;
    request.kind = ManagerKind::same_machine_address;
    std::exception_ptr failed;
    try {
      const auto reply = co_await wait_for(self->control(std::move(request)), timeout);
      if (auto local = loads<Address>(reply.result); !local.is_tcp()) self->same_machine_ = std::move(local);
    } catch (...) {
      failed = std::current_exception();
    }
    if (failed) {
      self->close("the connection failed as it opened");
      std::rethrow_exception(failed);
    }
  }
  co_return self;
}

void ManagerConnection::queue_locked(ManagerRequest& request) {
  request.id = ++next_id_;
  auto framed = SocketChannel::frame(dumps(request));
  if (!writing_ && outgoing_.empty()) {
    // Written by the caller's thread, without a turn of the loop (the socket's buffer has room unless
    // the server falls behind); what does not fit goes to the writer.
    const auto sent = channel_.send_now(framed);
    if (sent == framed.size()) return;
    framed.erase(0, sent);
  }
  outgoing_.push_back(std::move(framed));
  if (auto wake = std::move(writer_wake_)) wake->try_set_value();
}

void ManagerConnection::send(const std::string& object, std::unique_ptr<ActorMessage> message) {
  ManagerRequest request;
  request.object = object;
  try {
    message->encode_named(request);
  } catch (...) {
    message->fail(std::current_exception());
    return;
  }
  std::unique_lock lock(mutex_);
  if (!open_) {
    lock.unlock();
    message->fail(std::make_exception_ptr(ActorDeadError(closed_why_)));
    return;
  }
  queue_locked(request);
  in_flight_.emplace(request.id, Pending{std::move(message), nullptr});
}

task<ProcessActorReply> ManagerConnection::control(ManagerRequest request) {
  auto answer = std::make_shared<FutureState<ProcessActorReply>>();
  {
    std::lock_guard lock(mutex_);
    if (!open_) throw ActorDeadError(closed_why_);
    queue_locked(request);
    in_flight_.emplace(request.id, Pending{nullptr, answer});
  }
  co_await async_wait_done(answer);
  answer->rethrow_if_failed();
  auto reply = answer->take();
  if (!reply.ok) rethrow_failure(reply.failure);
  co_return reply;
}

task<void> ManagerConnection::async_lookup(std::string object, std::string type) {
  ManagerRequest request;
  request.kind = ManagerKind::lookup;
  request.object = std::move(object);
  request.signature = std::move(type);
  co_await control(std::move(request));
}

task<std::string> ManagerConnection::async_create(std::string factory, std::string arguments) {
  ManagerRequest request;
  request.kind = ManagerKind::create;
  request.signature = std::move(factory);
  request.arguments = std::move(arguments);
  const auto reply = co_await control(std::move(request));
  co_return loads<std::string>(reply.result);
}

task<void> ManagerConnection::async_shutdown_server() {
  ManagerRequest request;
  request.kind = ManagerKind::shutdown;
  co_await control(std::move(request));
}

void ManagerConnection::close(const std::string& why) noexcept {
  std::map<std::uint64_t, Pending> failed;
  {
    std::lock_guard lock(mutex_);
    if (!open_) return;
    open_ = false;
    closed_why_ = why;
    failed.swap(in_flight_);
    outgoing_.clear();
    if (auto wake = std::move(writer_wake_)) wake->try_set_value();
  }
  channel_.close();
  {
    // A thread waiting on its own connection wakes with the connection gone; its entry stays until it
    // ends, so that nothing it uses is freed under it.
    std::lock_guard lock(mutex_);
    for (auto& [token, link] : threads_)
      if (link.direct) link.direct->shut_down();
  }
  const auto error = std::make_exception_ptr(ActorDeadError(why));
  for (auto& [id, pending] : failed) {
    if (pending.message) pending.message->fail(error);
    if (pending.control) pending.control->try_set_exception(error);
  }
}

namespace {

/// The connections this thread has a direct connection or a mark in, told when the thread ends.
struct ThreadExit {
  std::vector<std::weak_ptr<ManagerConnection>> used;
  ~ThreadExit() {
    const auto token = this_thread_token();
    for (const auto& weak : used)
      if (auto connection = weak.lock()) connection->forget_thread(token);
  }
};

thread_local ThreadExit this_thread_exit;

/// How many threads of a process may each have their own connection to one manager.
constexpr std::size_t max_direct_connections = 64;

}  // namespace

DirectManagerConnection* ManagerConnection::direct_for_this_thread() {
  const auto token = this_thread_token();
  {
    std::lock_guard lock(mutex_);
    if (!open_) return nullptr;
    const auto found = threads_.find(token);
    if (found != threads_.end()) return found->second.sent_async ? nullptr : found->second.direct.get();
    if (direct_count_ >= max_direct_connections) return nullptr;
    ++direct_count_;  // taken before the connection opens, so that no two threads pass the cap
  }
  std::unique_ptr<DirectManagerConnection> direct;
  try {
    direct = DirectManagerConnection::open(address_, same_machine_ ? &*same_machine_ : nullptr, authkey_,
                                           std::chrono::seconds(10));
  } catch (...) {
    std::lock_guard lock(mutex_);
    --direct_count_;
    threads_[token];  // this thread goes the shared way, which reports what is wrong
    this_thread_exit.used.push_back(weak_from_this());
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  if (!open_) direct->shut_down();
  auto* made = (threads_[token].direct = std::move(direct)).get();
  this_thread_exit.used.push_back(weak_from_this());
  return made;
}

void ManagerConnection::note_async_call() {
  const auto token = this_thread_token();
  std::lock_guard lock(mutex_);
  auto [link, added] = threads_.try_emplace(token);
  if (added) this_thread_exit.used.push_back(weak_from_this());
  link->second.sent_async = true;
}

void ManagerConnection::forget_thread(std::uint64_t token) noexcept {
  std::unique_ptr<DirectManagerConnection> direct;
  {
    std::lock_guard lock(mutex_);
    const auto found = threads_.find(token);
    if (found == threads_.end()) return;
    direct = std::move(found->second.direct);
    if (direct) --direct_count_;
    threads_.erase(found);
  }
}

task<void> ManagerConnection::write_requests(std::shared_ptr<ManagerConnection> self) {
  for (;;) {
    std::deque<std::string> batch;
    std::shared_ptr<FutureState<void>> wake;
    {
      std::lock_guard lock(self->mutex_);
      if (!self->open_) co_return;
      self->writing_ = !self->outgoing_.empty();
      if (self->writing_)
        batch.swap(self->outgoing_);
      else
        self->writer_wake_ = wake = std::make_shared<FutureState<void>>();
    }
    if (wake) {
      co_await async_wait_done(wake);
      continue;
    }
    for (auto& bytes : batch) {
      try {
        co_await self->channel_.async_send_framed(std::move(bytes));
      } catch (...) {
        co_return;  // the reader sees the connection end too
      }
    }
  }
}

task<void> ManagerConnection::read_replies(std::shared_ptr<ManagerConnection> self) {
  std::string why;
  for (;;) {
    std::string bytes;
    try {
      bytes = co_await self->channel_.async_recv();
    } catch (const std::exception& e) {
      why = e.what();
      break;
    }
    ProcessActorReply reply;
    try {
      reply = loads<ProcessActorReply>(bytes);
    } catch (const std::exception& e) {
      why = std::string("it sent an undecodable reply: ") + e.what();
      break;
    }
    Pending answered;
    {
      std::lock_guard lock(self->mutex_);
      const auto found = self->in_flight_.find(reply.id);
      if (found == self->in_flight_.end()) continue;
      answered = std::move(found->second);
      self->in_flight_.erase(found);
    }
    if (answered.control) {
      answered.control->try_set_value(std::move(reply));
    } else {
      InlineResumeScope resume_asker_here(self->context());
      answered.message->settle_remote(reply);
    }
  }
  self->close(fmt::format("the connection to the manager at {} is gone ({})", self->address_.to_string(), why));
}

std::shared_ptr<ManagerConnection> shared_manager_connection(const Address& address, const std::string& authkey) {
  // Per process: a forked child has the parent's map, but not its connections' loop thread.
  static std::mutex mutex;
  static std::map<std::pair<std::string, std::string>, std::weak_ptr<ManagerConnection>> open;
  static pid_t owner = 0;
  std::lock_guard lock(mutex);
  if (owner != ::getpid()) {
    open.clear();
    owner = ::getpid();
  }
  auto& slot = open[{address.to_string(), authkey}];
  if (auto connection = slot.lock()) return connection;
  std::shared_ptr<ManagerConnection> connection;
  run_on_proxy_loop([](Address where, std::string key, std::shared_ptr<ManagerConnection>& out) -> task<void> {
    auto& loop = loop_for_new_actor(ActorOptions{});
    out = co_await ManagerConnection::async_open(loop, std::move(where), std::move(key), std::chrono::seconds(10));
  }(address, authkey, connection));
  slot = connection;
  return connection;
}

void run_on_proxy_loop(task<void> work) {
  auto& loop = loop_for_new_actor(ActorOptions{});
  if (loop.get_executor().running_in_this_thread())
    throw InvalidStateError("manager: a blocking call on the loop that serves its proxies would never end; "
                            "co_await the async_ form in a coroutine");
  Future<void>(start(loop.get_executor(), std::move(work)).state).get();
}

ProxyCore::ProxyCore(std::shared_ptr<ManagerConnection> connection, std::string object, std::type_index type)
    : ActorCore(connection->context(), object, type, 0, false), connection_(std::move(connection)),
      object_(std::move(object)) {
  forward_messages(true);
}

void ProxyCore::forward(std::unique_ptr<ActorMessage> message) { connection_->send(object_, std::move(message)); }

void ProxyCore::forward_stop() { finish_stop(); }

}  // namespace cohort::detail
