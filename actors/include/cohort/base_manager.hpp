// BaseManager (Python's multiprocessing.managers.BaseManager): objects of any class registered under a
// name and served at an address, from a server process (start) or from this one (serve_forever), to
// every client that connects with the authkey; a client reaches one through a Proxy, which has the
// calling surface of an ActorRef. A registered object runs one call at a time, as an actor does.
#pragma once

#include <cereal/access.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cohort/actor.hpp"
#include "cohort/address.hpp"
#include "cohort/detail/manager_client.hpp"
#include "cohort/detail/manager_server.hpp"
#include "cohort/detail/type_name.hpp"
#include "cohort/lock.hpp"
#include "cohort/managed_methods.hpp"
#include "cohort/process.hpp"

namespace cohort {

struct BaseManagerOptions {
  /// Where the server listens, or where a client connects. TCP port 0: any free port (address() tells).
  Address address;
  /// The shared secret of the HMAC challenge both sides answer.
  std::string authkey;
  /// How long connecting and the handshake may take, on either side: a server drops a peer that has
  /// not answered its challenge by then.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  /// A server's limits on its peers: connections at once (more are closed at once), the longest
  /// message one may send (a longer one closes its connection).
  std::size_t max_connections = 1024;
  std::size_t max_message = std::size_t{64} << 20;
};

namespace detail {

/// What every proxy is: an ActorRef whose core forwards to a manager, that crosses to other processes
/// (as a Process argument, under every start method) as the manager's address, authkey and the
/// object's name, and reconnects there: a proxy copied into a forked child opens that child's own
/// connection on first use (the parent's belongs to a loop thread the child does not have).
template <class T>
class ProxyBase : public ActorRef<T> {
 public:
  explicit ProxyBase(std::shared_ptr<ProxyCore> core) noexcept
      : ActorRef<T>(std::move(core)), owner_(this_process_id()) {}

  template <class M, class... Args>
  auto ask(M method, Args... args) const {
    return sending_async().ActorRef<T>::ask(std::move(method), std::move(args)...);
  }
  template <class Rep, class Period, class M, class... Args>
  auto ask_for(std::chrono::duration<Rep, Period> timeout, M method, Args... args) const {
    return sending_async().ActorRef<T>::ask_for(timeout, std::move(method), std::move(args)...);
  }
  template <class M, class... Args>
  auto call(M method, Args... args) const {
    return sending_async().ActorRef<T>::call(std::move(method), std::move(args)...);
  }
  template <class M, class... Args>
  void tell(M method, Args... args) const {
    sending_async().ActorRef<T>::tell(std::move(method), std::move(args)...);
  }
  template <class M, class... Args>
  auto async_tell(M method, Args... args) const {
    return sending_async().ActorRef<T>::async_tell(std::move(method), std::move(args)...);
  }

  /// Calls and waits for the result (or the method's exception): call(...).get(), but made on this
  /// thread's own connection to the manager when it may be (no non-blocking call of this thread's
  /// could be overtaken), with no hand-over to the proxies' loop. What the built-in types' blocking
  /// methods use.
  template <class M, class... Args>
  actor_reply_t<T, M, Args...> invoke(M method, Args... args) const {
    const ProxyBase& self = here();
    if (auto* direct = self.core().connection()->direct_for_this_thread()) {
      check_actor_call<T, M, Args...>();
      auto reply = std::make_shared<FutureState<actor_reply_t<T, M, Args...>>>();
      auto message = make_ask_message<T>(self.core(), reply, std::move(method), std::move(args)...);
      direct->call(self.core().object_name(), *message);
      return Future<actor_reply_t<T, M, Args...>>(std::move(reply)).get();
    }
    return self.ActorRef<T>::call(std::move(method), std::move(args)...).get();
  }

  /// The name the object is served under.
  const std::string& object_name() const noexcept { return core().object_name(); }

  template <class Archive>
  void save(Archive& archive) const {
    const auto& connection = core().connection();
    archive(connection->address(), connection->authkey(), core().object_name());
  }
  template <class Archive>
  void load(Archive& archive) {
    Address address;
    std::string authkey, object;
    archive(address, authkey, object);
    bind(shared_manager_connection(address, authkey), object);
  }

 protected:
  ProxyBase() : ActorRef<T>(nullptr) {}

 private:
  const ProxyCore& core() const noexcept { return static_cast<const ProxyCore&>(*ActorRef<T>::core()); }

  void bind(std::shared_ptr<ManagerConnection> connection, const std::string& object) {
    auto core = std::make_shared<ProxyCore>(std::move(connection), object, typeid(T));
    core->start_forwarding();
    static_cast<ActorRef<T>&>(*this) = ActorRef<T>(std::move(core));
    owner_.pid.store(this_process_id(), std::memory_order_release);
  }

  /// here(), for a call whose answer this thread does not wait for before it goes on.
  const ProxyBase& sending_async() const {
    const ProxyBase& self = here();
    self.core().connection()->note_async_call();
    return self;
  }

  /// This proxy, bound to a connection of this process.
  const ProxyBase& here() const {
    if (owner_.pid.load(std::memory_order_acquire) != this_process_id()) rebind_here();
    return *this;
  }

  /// A copy of the parent's memory (a forked child): the first call in the child reconnects, once,
  /// however many of the child's threads call at first.
  void rebind_here() const {
    static std::mutex rebinding;
    std::lock_guard lock(rebinding);
    if (owner_.pid.load(std::memory_order_relaxed) == this_process_id()) return;
    auto& self = const_cast<ProxyBase&>(*this);
    const auto& connection = core().connection();
    self.bind(shared_manager_connection(connection->address(), connection->authkey()), core().object_name());
  }

  /// The process the proxy's connection belongs to; copied as a plain value.
  struct Owner {
    std::atomic<int> pid;
    explicit Owner(int id) noexcept : pid(id) {}
    Owner(const Owner& other) noexcept : pid(other.pid.load(std::memory_order_acquire)) {}
    Owner& operator=(const Owner& other) noexcept {
      pid.store(other.pid.load(std::memory_order_acquire), std::memory_order_release);
      return *this;
    }
  };
  Owner owner_{0};
};

/// T's name, methods and client_gone hook, as a server serving a T needs them (how to build a T is the
/// caller's to add).
template <class T>
ManagedType describe_managed_type() {
  ManagedType type;
  type.type = std::string(type_name<T>());
  type.methods = managed_method_table<T>();
  if constexpr (holds_for_clients<T>)
    type.client_gone = [](void* object, std::uint64_t connection) { static_cast<T*>(object)->client_gone(connection); };
  return type;
}

}  // namespace detail

/// A handle to an object served by a manager: ask, call and tell as on an ActorRef (the method must be
/// listed in the class's COHORT_MANAGED_METHODS). Copies share the connection. If the server goes away,
/// what is in flight and every later call fails with ActorDeadError naming the manager.
template <class T>
class Proxy : public detail::ProxyBase<T> {
 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : detail::ProxyBase<T>(std::move(core)) {}

 private:
  friend class cereal::access;
  Proxy() = default;
};

namespace detail {
void serve_manager_in_child(Connection parent, std::uintptr_t manager);
}  // namespace detail

class BaseManager {
 public:
  explicit BaseManager(BaseManagerOptions options);
  /// shutdown().
  ~BaseManager();
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;

  /// Serves one T, built from copies of `args` when the server starts, under `typeid`. Before start()
  /// or serve_forever(). T's methods that clients call are listed in COHORT_MANAGED_METHODS(T, ...).
  template <class T, class... Args>
  void register_type(std::string typeid_, Args... args) {
    static_assert(detail::has_managed_methods<T>,
                  "cohort::BaseManager::register_type: list the methods clients may call with "
                  "COHORT_MANAGED_METHODS(T, &T::method, ...) at namespace scope");
    static_assert(std::is_constructible_v<T, const Args&...>,
                  "cohort::BaseManager::register_type: T cannot be built from these arguments");
    detail::ManagedType type = detail::describe_managed_type<T>();
    if constexpr (detail::hosted_on_loop<T>) {
      type.make_on_loop = [kept = std::make_tuple(std::move(args)...)]() -> std::shared_ptr<void> {
        return std::apply([](const auto&... values) { return std::make_shared<T>(values...); }, kept);
      };
    } else {
      type.make = [kept = std::make_tuple(std::move(args)...)](boost::asio::io_context& loop,
                                                              const std::string& name) -> std::shared_ptr<detail::ActorCore> {
        auto cell = std::apply(
            [&](const auto&... values) { return std::make_shared<detail::ActorCell<T>>(loop, name, 0, false, values...); },
            kept);
        cell->start_actor();
        return cell;
      };
    }
    add_type(std::move(typeid_), std::move(type));
  }

  /// Starts a server process (forked from this one, so that it has the registered types) serving at
  /// the address, and connects to it. Its constructors' exceptions are thrown here.
  void start();
  /// Serves at the address from this thread until a client asks for shutdown (or SIGTERM).
  /// `on_listening` is called with the bound address (TCP port 0: the port chosen) once clients can
  /// connect.
  void serve_forever(const std::function<void(const Address&)>& on_listening = {});
  /// Connects to a server at the address: AuthenticationError on a wrong authkey, ProcessError when
  /// nothing listens there, TimeoutError past the timeout. Not from a coroutine on the proxies' loop
  /// (co_await async_connect() there).
  void connect();
  task<void> async_connect();

  /// A proxy for the object registered as `typeid_`: std::out_of_range if there is none,
  /// std::invalid_argument if it is not a T.
  template <class T>
  Proxy<T> get(const std::string& typeid_) {
    check_connected();
    detail::run_on_proxy_loop(connection_->async_lookup(typeid_, std::string(detail::type_name<T>())));
    return make_proxy<T>(typeid_);
  }
  template <class T>
  task<Proxy<T>> async_get(std::string typeid_) {
    check_connected();
    co_await connection_->async_lookup(typeid_, std::string(detail::type_name<T>()));
    co_return make_proxy<T>(typeid_);
  }

  /// Stops the server this manager started (its objects' on_stop run) and closes the connection; proxies
  /// fail with ActorDeadError afterwards. For a manager that only connected, closes its connection.
  void shutdown();

  /// The server's address: after start() the bound one (TCP port 0: the port chosen).
  const Address& address() const noexcept { return address_; }

 private:
  friend void detail::serve_manager_in_child(Connection parent, std::uintptr_t manager);
  friend class Manager;

  /// A new object built on the server by the factory registered as `factory`; its name there.
  std::string create_object(const std::string& factory, std::string arguments);

  void add_type(std::string typeid_, detail::ManagedType type);
  void check_connected() const;
  detail::ManagerLimits limits() const;
  template <class T>
  Proxy<T> make_proxy(const std::string& typeid_) {
    auto core = std::make_shared<detail::ProxyCore>(connection_, typeid_, typeid(T));
    core->start_forwarding();
    return Proxy<T>(std::move(core));
  }

  BaseManagerOptions options_;
  Address address_;
  detail::ManagedRegistry registry_;
  std::unique_ptr<Process> server_;
  std::shared_ptr<detail::ManagerConnection> connection_;
};

}  // namespace cohort
