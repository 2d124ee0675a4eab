// A manager's server side: the accept loop, one coroutine per connection (handshake, then requests
// dispatched to the hosted objects by name) and a writer per connection for the answers.
#include "cohort/detail/manager_server.hpp"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <fmt/format.h>

#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/connection.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/authentication.hpp"
#include "cohort/detail/fd_passing.hpp"
#include "cohort/detail/process_actor_protocol.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/socket_listener.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "cohort/spawn.hpp"
#include "cohort/wait_for.hpp"

namespace cohort::detail {

namespace asio = boost::asio;

namespace {

/// The coroutine calls of every client that have not ended. The server waits for them (cancelled)
/// before it ends, so that none is left parked in an object's wait as the objects go.
struct RunningCalls {
  std::size_t count = 0;
  std::shared_ptr<FutureState<void>> none_left;

  void ended() {
    if (--count == 0)
      if (auto wake = std::move(none_left)) wake->try_set_value();
  }
};

/// One client's connection. Everything here runs on the server's one loop thread.
struct Client {
  Client(SocketChannel socket, std::uint64_t number, std::shared_ptr<RunningCalls> running)
      : channel(std::move(socket)), peer(channel.peer()), number(number), running(std::move(running)) {}

  SocketChannel channel;
  // Once the client moved its calls to shared memory (ManagerKind::shared_memory_lane): what carries
  // them both ways instead of the socket, which is closed then.
  std::optional<Connection> lane;
  std::string peer;
  std::uint64_t number;  // what a managed::Caller of its calls says
  // Called once the client is gone and its calls have ended: the objects let go of what it held.
  std::function<void()> release_held;
  std::deque<std::string> outgoing;
  std::shared_ptr<FutureState<void>> writer_wake;
  std::shared_ptr<FutureState<void>> room_wake;  // set while reading waits for calls to be answered
  std::size_t in_flight = 0;
  bool done = false;
  // The coroutine calls to objects on the loop that have not answered, by request id: cancelled if the
  // client goes (a queue's get then ends without taking an item that nobody would receive).
  std::map<std::uint64_t, std::shared_ptr<TaskControl>> waits;
  std::shared_ptr<RunningCalls> running;  // the server's count, of which `waits` are part

  /// A call of this client's has ended.
  void ended(std::uint64_t id) {
    if (waits.erase(id) != 0) running->ended();
    if (done && waits.empty()) release();
  }
  void release() {
    // Only after its last call has ended: a lock's acquire that was cancelled too late takes the lock
    // for the client first, and that must be let go of as well.
    if (auto release = std::exchange(release_held, nullptr)) release();
  }

  void send(const ProcessActorReply& reply) {
    if (done) return;
    if (lane) {
      auto bytes = dumps(reply);
      try {
        if (outgoing.empty() && lane->try_send_bytes(bytes)) return;
      } catch (const EOFError&) {
        return;  // the client is gone: its reader sees it too
      }
      outgoing.push_back(std::move(bytes));
      if (auto wake = std::move(writer_wake)) wake->try_set_value();
      return;
    }
    auto framed = SocketChannel::frame(dumps(reply));
    if (writer_wake && outgoing.empty()) {
      // The writer is parked with nothing to send: written now, not a turn of the loop later.
      const auto sent = channel.send_now(framed);
      if (sent == framed.size()) return;
      framed.erase(0, sent);
    }
    outgoing.push_back(std::move(framed));
    if (auto wake = std::move(writer_wake)) wake->try_set_value();
  }
  void answered() {
    --in_flight;
    if (auto wake = std::move(room_wake)) wake->try_set_value();
  }
  void finish() {
    if (done) return;
    done = true;
    for (const auto& [id, control] : waits) request_cancel(control);
    if (waits.empty()) release();
    outgoing.clear();
    channel.close();
    // Wakes the reader and writer waiting on the lane; the Connection closes with the Client.
    if (lane) shut_down(*lane);
    if (auto wake = std::move(writer_wake)) wake->try_set_value();
    if (auto wake = std::move(room_wake)) wake->try_set_value();
  }
};

/// The reply of call `id`, refused with an E saying `message`.
template <class E>
ProcessActorReply refusal(std::uint64_t id, const std::string& message) {
  return failure_reply(id, std::make_exception_ptr(E(message)));
}

task<void> write_answers(std::shared_ptr<Client> client) {
  for (;;) {
    if (client->outgoing.empty()) {
      if (client->done) co_return;
      auto wake = client->writer_wake = std::make_shared<FutureState<void>>();
      co_await async_wait_done(wake);
      continue;
    }
    auto bytes = std::move(client->outgoing.front());
    client->outgoing.pop_front();
    try {
      if (client->lane)
        co_await client->lane->async_send_bytes(std::move(bytes));
      else
        co_await client->channel.async_send_framed(std::move(bytes));
    } catch (...) {
      client->finish();  // the client is gone: its reader sees it too
      co_return;
    }
  }
}

/// A fresh name in the abstract namespace for the Unix-domain socket beside a TCP listener.
Address same_machine_socket() {
  const std::string nonce = random_bytes(8);
  std::string name(1, '\0');
  name += fmt::format("cohort-manager-{}-", ::getpid());
  for (const unsigned char c : nonce) name += fmt::format("{:02x}", c);
  return Address::unix_socket(std::move(name));
}

}  // namespace

struct ManagerServer::State {
  State(asio::io_context& loop, const Address& address) : loop(&loop), listener(loop, address) {
    if (address.is_tcp()) same_machine.emplace(loop, same_machine_socket());
  }

  asio::io_context* loop;
  SocketListener listener;
  std::optional<SocketListener> same_machine;  // beside a TCP listener
  std::string authkey;
  ManagerLimits limits;
  struct Hosted {
    const ManagedType* type;
    std::shared_ptr<ActorCore> actor;  // hosted as an actor
    std::shared_ptr<void> object;      // or on the loop
  };
  std::map<std::string, Hosted, std::less<>> objects;
  std::set<std::shared_ptr<Client>> clients;
  bool stopping = false;
  std::uint64_t created = 0;           // objects built for create requests
  std::uint64_t connections_made = 0;  // numbering them
  std::shared_ptr<RunningCalls> running = std::make_shared<RunningCalls>();

  /// What the objects that hold things for clients let go of when client `number` is gone.
  void release_held_by(std::uint64_t number) {
    for (const auto& [name, hosted] : objects)
      if (hosted.object && hosted.type->client_gone) {
        try {
          hosted.type->client_gone(hosted.object.get(), number);
        } catch (const std::exception& e) {
          log_error(fmt::format("manager: '{}' failed to let go of what a client held: {}", name, e.what()));
        }
      }
  }

  void stop() noexcept {
    if (stopping) return;
    stopping = true;
    listener.close();
    if (same_machine) same_machine->close();
    for (const auto& client : clients) client->finish();
  }

  /// Answers one request (a call is answered once its method has run).
  void dispatch(const std::shared_ptr<Client>& client, ManagerRequest& request) {
    if (request.kind == ManagerKind::shutdown) {
      ProcessActorReply reply;
      reply.id = request.id;
      client->send(reply);
      log_debug(fmt::format("manager at {}: shutdown asked by {}", listener.address().to_string(), client->peer));
      // After this turn, so that the answer is written before the connections close.
      auto self = this;
      asio::post(*loop, [self] { self->stop(); });
      return;
    }
    if (request.kind == ManagerKind::create) {
      client->send(create(request));
      return;
    }
    if (request.kind == ManagerKind::shared_memory_lane) {
      hand_over_to_lane(*client);
      return;
    }
    if (request.kind == ManagerKind::same_machine_address) {
      ProcessActorReply reply;
      reply.id = request.id;
      reply.result = dumps(same_machine ? same_machine->address() : listener.address());
      client->send(reply);
      return;
    }
    const auto found = objects.find(request.object);
    if (found == objects.end()) {
      client->send(refusal<std::out_of_range>(
          request.id, fmt::format("manager: no object is registered as '{}'", request.object)));
      return;
    }
    const auto& [type, actor, object] = found->second;
    if (request.kind == ManagerKind::lookup) {
      ProcessActorReply reply = request.signature == type->type
                                    ? ProcessActorReply{request.id}
                                    : refusal<std::invalid_argument>(
                                          request.id, fmt::format("manager: '{}' is a {}, not a {}", request.object,
                                                                  type->type, request.signature));
      client->send(reply);
      return;
    }
    const auto method = type->methods.find(request.method);
    if (method == type->methods.end()) {
      client->send(refusal<std::invalid_argument>(
          request.id, fmt::format("manager: '{}' (a {}) has no managed method '{}'", request.object, type->type,
                                  request.method)));
      return;
    }
    if (method->second.signature != request.signature) {
      client->send(refusal<std::invalid_argument>(
          request.id, fmt::format("manager: {}::{} is {} here, but was called as {} (the programs disagree on the "
                                  "class)",
                                  type->type, request.method, method->second.signature, request.signature)));
      return;
    }
    if (client->waits.count(request.id) != 0) {
      client->send(refusal<std::invalid_argument>(
          request.id, fmt::format("manager: call {} is in flight already (ids must not repeat)", request.id)));
      return;
    }
    auto reply = std::make_shared<FutureState<std::string>>();
    ++client->in_flight;
    reply->on_done([client, reply, id = request.id, tell = request.kind == ManagerKind::tell] {
      client->answered();
      client->ended(id);
      ProcessActorReply done;
      done.id = id;
      if (const auto error = reply->error()) {
        if (!tell) {
          client->send(failure_reply(id, error));
          return;
        }
        log_warning(fmt::format("manager: a tell failed: {}", describe_error(error)));
      } else if (!tell) {
        done.result = reply->value();
      }
      client->send(done);
    });
    try {
      if (object) {
        auto control = method->second.loop_entry(*loop, object.get(), client->number, request.arguments, reply);
        if (control && !reply->done()) {
          client->waits.emplace(request.id, std::move(control));
          ++client->running->count;
        }
      } else
        method->second.entry(*actor, request.arguments, reply);
    } catch (...) {
      reply->try_set_exception(std::current_exception());
    }
  }

  /// Gives `client` a Pipe's end for its calls from now on, sent over its socket as descriptors, and
  /// closes the socket. Only for a client on a Unix-domain socket with nothing else in progress: the
  /// answers to its earlier calls must not be left behind on the socket. A client that asks otherwise
  /// is cut off (it waits for descriptors, so no answer could tell it).
  void hand_over_to_lane(Client& client) {
    std::string refused;
    if (client.lane)
      refused = "it asked for a shared-memory lane twice";
    else if (!client.channel.is_unix_socket())
      refused = "it asked for a shared-memory lane over TCP";
    else if (client.in_flight != 0 || !client.outgoing.empty())
      refused = "it asked for a shared-memory lane with calls in flight";
    if (refused.empty()) {
      try {
        auto [ours, theirs] = Pipe();
        std::vector<UniqueFd> fds;
        std::string bytes;
        {
          FdTransferScope transfer(fds);
          bytes = dumps(theirs);
        }
        send_with_fds(client.channel.native_handle(), bytes, fds);
        client.lane.emplace(std::move(ours));
        client.channel.close();
        return;
      } catch (const std::exception& e) {
        refused = fmt::format("its shared-memory lane could not be sent: {}", e.what());
      }
    }
    log_error(fmt::format("manager at {}: closed the connection of {}: {}", listener.address().to_string(), client.peer,
                          refused));
    client.finish();
  }

  /// A new object from a registered factory, named after its type and a count.
  ProcessActorReply create(const ManagerRequest& request) {
    const ManagedFactory* factory = find_managed_factory(request.signature);
    if (factory == nullptr)
      return refusal<std::invalid_argument>(
          request.id, fmt::format("manager: no managed type can be built as '{}'", request.signature));
    try {
      const ManagedType& type = factory->type();
      auto object = factory->make(request.arguments);
      std::string name = fmt::format("{}-{}", type.type, ++created);
      objects.emplace(name, Hosted{&type, nullptr, std::move(object)});
      ProcessActorReply reply;
      reply.id = request.id;
      reply.result = dumps(name);
      return reply;
    } catch (...) {
      return failure_reply(request.id, std::current_exception());
    }
  }

  /// Takes the connections that arrive at `from` until the server stops.
  static task<void> accept_clients(std::shared_ptr<State> self, SocketListener& from);

  static task<void> serve_client(std::shared_ptr<State> self, std::shared_ptr<Client> client) {
    bool admitted = false;
    std::string refused;
    try {
      co_await wait_for(async_authenticate_client(client->channel, self->authkey), self->limits.handshake_timeout);
      admitted = true;
    } catch (const std::exception& e) {
      refused = e.what();
    }
    if (!admitted) {
      log_warning(fmt::format("manager at {}: refused {}: {}", self->listener.address().to_string(), client->peer, refused));
      client->finish();
      self->clients.erase(client);
      co_return;
    }
    asio::co_spawn(*self->loop, write_answers(client), asio::detached);
    std::string ended;
    while (!client->done) {
      if (client->in_flight >= self->limits.max_in_flight) {
        auto wake = client->room_wake = std::make_shared<FutureState<void>>();
        co_await async_wait_done(wake);
        continue;
      }
      std::string bytes;
      try {
        if (client->lane) {
          bytes = co_await client->lane->async_recv_bytes();
          if (bytes.size() > self->limits.max_message)
            throw SerializationError(fmt::format("a request of {} bytes, past the limit of {}", bytes.size(),
                                                 self->limits.max_message));
        } else {
          bytes = co_await client->channel.async_recv();
        }
      } catch (const EOFError& e) {
        // Between messages the client just went; inside one, it was cut short.
        const std::string_view what = e.what();
        if (what.find("truncated") != std::string_view::npos || what.find("inside a message") != std::string_view::npos)
          ended = e.what();
        break;
      } catch (const CancelledError&) {
        break;
      } catch (const std::exception& e) {
        ended = e.what();
        break;
      }
      ManagerRequest request;
      try {
        request = loads<ManagerRequest>(bytes);
      } catch (const std::exception& e) {
        ended = std::string("an undecodable request: ") + e.what();
        break;
      }
      self->dispatch(client, request);
    }
    if (!ended.empty())
      log_error(fmt::format("manager at {}: closed the connection of {}: {}", self->listener.address().to_string(),
                            client->peer, ended));
    // Answers still to come are dropped: the client is gone.
    client->finish();
    self->clients.erase(client);
  }
};

namespace {

std::mutex factories_mutex;

std::map<std::string, ManagedFactory, std::less<>>& factories() {
  static std::map<std::string, ManagedFactory, std::less<>> registered;
  return registered;
}

}  // namespace

bool register_managed_factory(std::string key, ManagedFactory factory) {
  std::lock_guard lock(factories_mutex);
  factories().emplace(std::move(key), factory);
  return true;
}

const ManagedFactory* find_managed_factory(std::string_view key) {
  std::lock_guard lock(factories_mutex);
  const auto found = factories().find(key);
  return found == factories().end() ? nullptr : &found->second;
}

ManagerServer::ManagerServer(asio::io_context& loop, const Address& address, std::string authkey,
                             const ManagedRegistry& registry, ManagerLimits limits)
    : state_(std::make_shared<State>(loop, address)) {
  state_->authkey = std::move(authkey);
  state_->limits = limits;
  for (const auto& [name, type] : registry) {
    if (type.make_on_loop)
      state_->objects.emplace(name, State::Hosted{&type, nullptr, type.make_on_loop()});
    else
      state_->objects.emplace(name, State::Hosted{&type, type.make(loop, name), nullptr});
  }
}

ManagerServer::~ManagerServer() {
  state_->stop();
  for (auto& [name, hosted] : state_->objects)
    if (hosted.actor) hosted.actor->request_stop();
}

const Address& ManagerServer::address() const noexcept { return state_->listener.address(); }

void ManagerServer::stop() noexcept { state_->stop(); }

task<void> ManagerServer::State::accept_clients(std::shared_ptr<State> self, SocketListener& from) {
  while (!self->stopping) {
    std::optional<SocketChannel> accepted;
    try {
      accepted.emplace(co_await from.async_accept(self->limits.max_message));
    } catch (const CancelledError&) {
      break;
    } catch (const std::exception& e) {
      log_warning(fmt::format("manager at {}: accept failed: {}", from.address().to_string(), e.what()));
      continue;
    }
    auto client = std::make_shared<Client>(std::move(*accepted), ++self->connections_made, self->running);
    client->release_held = [weak = std::weak_ptr<State>(self), number = client->number] {
      if (auto state = weak.lock()) state->release_held_by(number);
    };
    if (self->clients.size() >= self->limits.max_connections) {
      log_warning(fmt::format("manager at {}: refused {}: {} connections already", from.address().to_string(),
                              client->peer, self->clients.size()));
      client->finish();
      continue;
    }
    self->clients.insert(client);
    asio::co_spawn(*self->loop, State::serve_client(self, client), asio::detached);
  }
}

task<void> ManagerServer::serve() {
  const auto self = state_;
  if (self->same_machine)
    asio::co_spawn(*self->loop, State::accept_clients(self, *self->same_machine), asio::detached);
  co_await State::accept_clients(self, self->listener);
  self->stop();
  // The calls parked in objects' waits end with their cancellation, which takes turns of the loop.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (self->running->count != 0) {
    auto wake = self->running->none_left = std::make_shared<FutureState<void>>();
    if (!co_await async_wait_done(wake, deadline)) {
      log_warning(fmt::format("manager at {}: {} calls did not end when cancelled", self->listener.address().to_string(),
                              self->running->count));
      break;
    }
  }
  for (auto& [name, hosted] : self->objects)
    if (hosted.actor) hosted.actor->request_stop();
  for (auto& [name, hosted] : self->objects)
    if (hosted.actor) co_await async_wait_done(hosted.actor->stopped());
}

}  // namespace cohort::detail
