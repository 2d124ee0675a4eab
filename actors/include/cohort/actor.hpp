// Actors (Pykka's ActorRef and ask/tell, Erlang's mailboxes): any class whose public methods are its
// messages, handled one whole method at a time on an event loop, so its state needs no lock.
#pragma once

#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeindex>
#include <utility>

#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/actor_message.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/process_actor.hpp"
#include "cohort/detail/type_name.hpp"
#include "cohort/error.hpp"
#include "cohort/future.hpp"
#include "cohort/process.hpp"
#include "cohort/runtime.hpp"
#include "cohort/task.hpp"

namespace cohort {

/// How an actor is spawned; the first argument of every spawn* overload that takes options.
struct ActorOptions {
  /// Registered for find_actor when not empty; unnamed actors are called "Class-N" in logs and errors.
  std::string name;
  /// The most messages that may wait in the mailbox (0: unbounded). A full mailbox makes tell and call
  /// throw Full and ask / async_tell wait for room.
  std::size_t mailbox_size = 0;
  /// The Runtime whose loop runs the actor when spawn_actor is called outside any Runtime (else the
  /// default runtime: one loop thread, started on first use).
  Runtime* runtime = nullptr;
  /// Under a Supervisor: restart the actor when one of its methods throws.
  bool restart_on_error = false;
  /// For process actors: how their worker process starts (the default start method when empty).
  std::optional<StartMethod> start_method;
};

namespace detail {

template <class T>
concept has_on_start = requires(T& object) { object.on_start(); };
template <class T>
concept has_on_stop = requires(T& object) { object.on_stop(); };

/// The typed half of an actor: its object, built in place.
template <class T>
class ActorCell final : public ActorCore {
 public:
  template <class... Args>
  ActorCell(boost::asio::io_context& loop, std::string name, std::size_t mailbox_size, bool named, Args&&... args)
      : ActorCore(loop, std::move(name), typeid(T), mailbox_size, named) {
    object_.emplace(std::forward<Args>(args)...);
  }

  /// Queues on_start (when T has one) as the first message and makes the actor known.
  void start_actor() { start(make_start_message()); }

 private:
  void* object() noexcept override { return &*object_; }
  void call_on_stop() noexcept override {
    if constexpr (has_on_stop<T>) {
      static_assert(std::is_void_v<decltype(std::declval<T&>().on_stop())>,
                    "cohort actor: on_stop must be a plain function returning void (it also runs while the "
                    "actor's Runtime is destroyed, when no coroutine can run)");
      try {
        object_->on_stop();
      } catch (...) {
        log_unobserved_failure(name(), std::current_exception());
      }
    }
  }
  void drop_object() noexcept override { object_.reset(); }

 public:
  /// Under a supervisor: how a restart rebuilds the object (from copies of the first arguments).
  void set_factory(std::function<void(std::optional<T>&)> factory) { factory_ = std::move(factory); }

 private:
  std::unique_ptr<ActorMessage> rebuild(std::exception_ptr& error) noexcept override {
    if (!factory_) return ActorCore::rebuild(error);
    try {
      factory_(object_);
    } catch (...) {
      object_.reset();
      error = std::current_exception();
      return nullptr;
    }
    try {
      return make_start_message();
    } catch (...) {
      error = std::current_exception();
      return nullptr;
    }
  }

  std::unique_ptr<ActorMessage> make_start_message() {
    if constexpr (has_on_start<T>) {
      using Start = decltype([](T& object) { return object.on_start(); });
      // With a reply nobody reads: a failure is reported by the actor's stop, not as an unread tell.
      using Reply = actor_reply_t<T, Start>;
      return make_ask_message<T>(*this, std::make_shared<FutureState<Reply>>(), Start{});
    } else {
      return nullptr;
    }
  }

  std::optional<T> object_;
  std::function<void(std::optional<T>&)> factory_;
};

/// The loop a new actor runs on: the calling coroutine's Runtime, else `options.runtime`, else the
/// default runtime.
boost::asio::io_context& loop_for_new_actor(const ActorOptions& options);

[[noreturn]] void throw_ask_cancelled(const ActorCore& actor);
[[noreturn]] void throw_ask_timeout(const ActorCore& actor, Clock::duration timeout);

}  // namespace detail

/// A handle to an actor: cheap to copy, hashable and comparable; every copy names the same actor.
/// Methods are sent as `ref.ask(&Class::method, args...)`; arguments are stored in the message and
/// moved into the call, as std::thread does.
template <class T>
class ActorRef {
 public:
  /// Sends the call and awaits its reply: the method's result, or its exception with its type.
  /// Waits for room in a full bounded mailbox; throws ActorDeadError if the actor has stopped, and
  /// DeadlockError if the actor is waiting (directly or through other actors) for the caller.
  template <class M, class... Args>
  task<detail::actor_reply_t<T, M, Args...>> ask(M method, Args... args) const {
    detail::check_actor_call<T, M, Args...>();
    using R = detail::actor_reply_t<T, M, Args...>;
    auto reply = std::make_shared<detail::FutureState<R>>();
    // Each co_await its own statement: GCC 12 mishandles temporaries around a co_await inside a call.
    const Executor caller = co_await boost::asio::this_coro::executor;
    auto waiting = queue_ask(detail::make_ask_message<T>(*core_, reply, std::move(method), std::move(args)...), caller);
    if (waiting) co_await core_->send_when_room(std::move(waiting));
    if (!reply->done()) {
      int result = detail::wait_cancelled;
      try {
        result = co_await detail::async_wait_direct(reply);
      } catch (const boost::system::system_error&) {
        // Asio's refusal to start an operation in a coroutine that was cancelled before: result stays.
      }
      if (result == detail::wait_cancelled) detail::throw_ask_cancelled(*core_);
    }
    reply->rethrow_if_failed();
    co_return reply->take();
  }

  /// ask with a time limit: TimeoutError if no reply came within `timeout` (the message still runs).
  template <class Rep, class Period, class M, class... Args>
  task<detail::actor_reply_t<T, M, Args...>> ask_for(std::chrono::duration<Rep, Period> timeout, M method,
                                                     Args... args) const {
    detail::check_actor_call<T, M, Args...>();
    using R = detail::actor_reply_t<T, M, Args...>;
    const auto limit = std::chrono::duration_cast<detail::Clock::duration>(timeout);
    const auto deadline = detail::Clock::now() + limit;
    auto reply = std::make_shared<detail::FutureState<R>>();
    // Each co_await its own statement: GCC 12 mishandles temporaries around a co_await inside a call.
    const Executor caller = co_await boost::asio::this_coro::executor;
    auto waiting = queue_ask(detail::make_ask_message<T>(*core_, reply, std::move(method), std::move(args)...), caller);
    if (waiting) co_await core_->send_when_room(std::move(waiting));
    if (!co_await detail::async_wait_done(reply, deadline)) detail::throw_ask_timeout(*core_, limit);
    reply->rethrow_if_failed();
    co_return reply->take();
  }

  /// Sends the call at once, from any thread, and returns its reply as a Future. Throws Full when a
  /// bounded mailbox is full, ActorDeadError when the actor has stopped.
  template <class M, class... Args>
  Future<detail::actor_reply_t<T, M, Args...>> call(M method, Args... args) const {
    detail::check_actor_call<T, M, Args...>();
    using R = detail::actor_reply_t<T, M, Args...>;
    auto reply = std::make_shared<detail::FutureState<R>>();
    core_->send(detail::make_ask_message<T>(*core_, reply, std::move(method), std::move(args)...));
    return Future<R>(std::move(reply));
  }

  /// Sends the call without a reply, from any thread; a failure of the method is logged. Throws Full
  /// when a bounded mailbox is full, ActorDeadError when the actor has stopped.
  template <class M, class... Args>
  void tell(M method, Args... args) const {
    detail::check_actor_call<T, M, Args...>();
    core_->send(detail::make_tell_message<T>(std::move(method), std::move(args)...));
  }

  /// tell that waits for room in a full bounded mailbox instead of throwing Full.
  template <class M, class... Args>
  task<void> async_tell(M method, Args... args) const {
    detail::check_actor_call<T, M, Args...>();
    auto message = detail::make_tell_message<T>(std::move(method), std::move(args)...);
    if (core_->try_send(message) == detail::SendRefusal::dead) core_->throw_dead();
    if (message) co_await core_->send_when_room(std::move(message));
  }

  /// Stops the actor: what is already queued is handled, then on_stop runs; later messages fail with
  /// ActorDeadError. Completes once the actor has stopped (at once when called from the actor itself,
  /// which stops after the current method).
  task<void> stop() const {
    core_->request_stop();
    const Executor caller = co_await boost::asio::this_coro::executor;
    if (detail::actor_of(caller) == core_.get()) co_return;
    co_await detail::async_wait_done(core_->stopped());
  }

  /// Blocks until the actor has stopped. Not from the actor's own event loop (use async_join there).
  void join() const;
  /// Waits until the actor has stopped.
  task<void> async_join() const { co_await detail::async_wait_done(core_->stopped()); }

  /// Accepting messages: not stopped or stopping.
  bool alive() const noexcept { return core_->alive(); }
  const std::string& name() const noexcept { return core_->name(); }

  friend bool operator==(const ActorRef& a, const ActorRef& b) noexcept { return a.core_ == b.core_; }
  friend auto operator<=>(const ActorRef& a, const ActorRef& b) noexcept { return a.core_ <=> b.core_; }

  /// The shared core (the actor itself, or the forwarder of a process actor), for cohort's own layers.
  const std::shared_ptr<detail::ActorCore>& core() const noexcept { return core_; }
  explicit ActorRef(std::shared_ptr<detail::ActorCore> core) noexcept : core_(std::move(core)) {}

 private:
  /// Queues an ask's message from a coroutine running on `caller`; hands it back when a bounded
  /// mailbox is full (to be sent once there is room).
  template <class Message>
  std::unique_ptr<detail::ActorMessage> queue_ask(std::unique_ptr<Message> ask, const Executor& caller) const {
    ask->set_chain(detail::chain_for_ask(caller, *core_));
    std::unique_ptr<detail::ActorMessage> message = std::move(ask);
    if (core_->try_send(message) == detail::SendRefusal::dead) core_->throw_dead();
    return message;
  }

  std::shared_ptr<detail::ActorCore> core_;
};

namespace detail {
void join_actor(const ActorCore& actor);
}  // namespace detail

template <class T>
void ActorRef<T>::join() const {
  detail::join_actor(*core_);
}

/// Spawns an actor of class T built from `args` on the current Runtime (see ActorOptions::runtime).
template <class T, class... Args>
ActorRef<T> spawn_actor(ActorOptions options, Args&&... args) {
  static_assert(std::is_constructible_v<T, Args&&...>, "cohort::spawn_actor: T cannot be built from these arguments");
  auto& loop = detail::loop_for_new_actor(options);
  const bool named = !options.name.empty();
  std::string name = named ? std::move(options.name) : detail::default_actor_name(detail::type_name<T>());
  auto cell = std::make_shared<detail::ActorCell<T>>(loop, std::move(name), options.mailbox_size, named,
                                                     std::forward<Args>(args)...);
  cell->start_actor();
  return ActorRef<T>(std::move(cell));
}

/// spawn_actor without options.
template <class T, class... Args>
  requires(!(sizeof...(Args) > 0 && (std::is_same_v<std::remove_cvref_t<Args>, ActorOptions> || ...)))
ActorRef<T> spawn_actor(Args&&... args) {
  return spawn_actor<T>(ActorOptions{}, std::forward<Args>(args)...);
}

namespace detail {

template <class T, class... Args>
void host_process_actor(Connection parent, std::string name, Args... args) {
  serve_process_actor(std::move(parent), std::move(name),
                      [&](boost::asio::io_context& loop, std::string hosted_name) -> std::shared_ptr<ActorCore> {
                        auto cell = std::make_shared<ActorCell<T>>(loop, std::move(hosted_name), 0, false,
                                                                   std::move(args)...);
                        cell->start_actor();
                        return cell;
                      });
}

}  // namespace detail

/// Spawns an actor of class T whose object lives in a worker process of its own (started with
/// `options.start_method`), built there from `args`; the ref is used as a local actor's is. Arguments
/// and results cross serialized (cereal); an exception keeps its type (or becomes RemoteError) and its
/// remote stack trace. If the process dies, the call in flight fails with ActorDeadError naming the
/// signal or exit code, and so does every later message. The worker dies with this program.
template <class T, class... Args>
ActorRef<T> spawn_process_actor(ActorOptions options, Args&&... args) {
  static_assert(std::is_constructible_v<T, std::decay_t<Args>&&...>,
                "cohort::spawn_process_actor: T cannot be built from these arguments");
  static_assert((detail::is_transferable_v<std::decay_t<Args>> && ...),
                "cohort::spawn_process_actor: every constructor argument crosses to the worker process, so "
                "cereal must be able to serialize it");
  static_assert((std::is_copy_constructible_v<std::decay_t<Args>> && ...),
                "cohort::spawn_process_actor: the constructor's arguments are kept to build a new worker on "
                "restart, so they must be copyable");
  auto& loop = detail::loop_for_new_actor(options);
  const bool named = !options.name.empty();
  std::string name = named ? std::move(options.name) : detail::default_actor_name(detail::type_name<T>());
  auto core = std::make_shared<detail::ProcessActorCore>(loop, std::move(name), typeid(T), options.mailbox_size, named);
  core->start_forwarding();
  try {
    // Kept by the core: a supervisor's restart builds the next worker from the same arguments.
    core->launch([process = ProcessOptions{.name = core->name(), .daemon = true, .start_method = options.start_method},
                  name = core->name(), kept = std::make_tuple(std::decay_t<Args>(args)...)](Connection child_end) {
      return std::apply(
          [&](const auto&... values) {
            return std::make_unique<Process>(process, &detail::host_process_actor<T, std::decay_t<Args>...>,
                                             std::move(child_end), name, values...);
          },
          kept);
    });
  } catch (...) {
    core->die("failed to start");
    throw;
  }
  return ActorRef<T>(std::move(core));
}

/// spawn_process_actor without options.
template <class T, class... Args>
  requires(!(sizeof...(Args) > 0 && (std::is_same_v<std::remove_cvref_t<Args>, ActorOptions> || ...)))
ActorRef<T> spawn_process_actor(Args&&... args) {
  return spawn_process_actor<T>(ActorOptions{}, std::forward<Args>(args)...);
}

/// The live actor registered under `name`, if it is a T.
template <class T>
std::optional<ActorRef<T>> find_actor(const std::string& name) {
  auto core = detail::find_registered_actor(name, typeid(T));
  if (!core) return std::nullopt;
  return ActorRef<T>(std::move(core));
}

}  // namespace cohort

template <class T>
struct std::hash<cohort::ActorRef<T>> {
  std::size_t operator()(const cohort::ActorRef<T>& ref) const noexcept {
    return std::hash<const void*>()(ref.core().get());
  }
};
