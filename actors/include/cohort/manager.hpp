// Manager (Python's multiprocessing.Manager(), the SyncManager): a server process holding shared
// objects (dicts, lists, queues, locks, events, barriers...) that every process reaches through
// proxies. Each object is made on demand by the proxy's factory; a proxy passes to other processes as
// a Process argument and works there, under every start method.
//
//   cohort::Manager m;
//   auto d = m.dict<std::string, int>();   d.set("a", 1);  d["b"] = 2;  int a = d.get("a");
//   auto l = m.list<int>();                l.append(3);    int x = l[0];
//   auto q = m.queue<int>(8);              q.put(1);       q.get();
//   auto ns = m.namespace_();              ns.set("x", 1.5);  ns.get<double>("x");
//   auto v = m.value<long>(0);             v.set(2);       v.get();
//   auto lock = m.lock();                  std::lock_guard held(lock);
//   auto done = m.event();                 done.set();     done.wait(1s);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "cohort/address.hpp"
#include "cohort/base_manager.hpp"
#include "cohort/detail/binary_archive.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/detail/type_name.hpp"
#include "cohort/managed/array.hpp"
#include "cohort/managed/barrier.hpp"
#include "cohort/managed/condition.hpp"
#include "cohort/managed/dict.hpp"
#include "cohort/managed/event.hpp"
#include "cohort/managed/list.hpp"
#include "cohort/managed/lock.hpp"
#include "cohort/managed/namespace.hpp"
#include "cohort/managed/queue.hpp"
#include "cohort/managed/semaphore.hpp"

namespace cohort {

struct ManagerOptions {
  /// Where the server listens; empty: a Unix-domain socket of its own in the temporary directory.
  std::optional<Address> address = std::nullopt;
  /// Empty: 32 random bytes.
  std::string authkey = {};
};

namespace detail {

/// The factory of a T built from Args, registered in every process of the executable at start-up, so
/// that a Manager's server (whatever its start) finds it by name and never by address.
template <class T, class... Args>
struct ManagedFactoryOf {
  static const ManagedType& type() {
    static const ManagedType made = describe_managed_type<T>();
    return made;
  }
  static std::shared_ptr<void> make(std::string_view arguments) {
    auto loaded = decode_arguments<Args...>(arguments);
    return std::apply([](auto&... values) { return std::make_shared<T>(std::move(*values)...); }, loaded);
  }
  static std::string key() { return std::string(type_name<T>()) + std::string(type_name<std::tuple<Args...>>()); }
  static inline const bool registered = register_managed_factory(key(), ManagedFactory{&type, &make});
};

std::string default_manager_socket_path();

}  // namespace detail

class Manager {
 public:
  /// Starts the server process.
  Manager() : Manager(ManagerOptions{}) {}
  explicit Manager(ManagerOptions options);
  /// shutdown().
  ~Manager() = default;

  template <class K, class V>
  Proxy<managed::Dict<K, V>> dict(std::map<K, V> initial = {}) {
    return create<managed::Dict<K, V>>(std::move(initial));
  }
  template <class T>
  Proxy<managed::List<T>> list(std::vector<T> initial = {}) {
    return create<managed::List<T>>(std::move(initial));
  }
  /// Named fields of any serializable type (Python's Namespace; namespace is a C++ keyword).
  Proxy<managed::Namespace> namespace_() { return create<managed::Namespace>(); }
  template <class T>
  Proxy<managed::Value<T>> value(T initial = T{}) {
    return create<managed::Value<T>>(std::move(initial));
  }
  /// `size` value-initialized items, or the items given.
  template <class T>
  Proxy<managed::Array<T>> array(std::size_t size) {
    return create<managed::Array<T>>(size);
  }
  template <class T>
  Proxy<managed::Array<T>> array(std::vector<T> items) {
    return create<managed::Array<T>>(std::move(items));
  }
  /// maxsize 0: unbounded.
  template <class T>
  Proxy<managed::Queue<T>> queue(std::size_t maxsize = 0) {
    return create<managed::Queue<T>>(maxsize);
  }
  template <class T>
  Proxy<managed::JoinableQueue<T>> joinable_queue(std::size_t maxsize = 0) {
    return create<managed::JoinableQueue<T>>(maxsize);
  }

  Proxy<managed::Lock> lock() { return create<managed::Lock>(); }
  Proxy<managed::RLock> rlock() { return create<managed::RLock>(); }
  /// A Condition with an RLock of its own.
  Proxy<managed::Condition> condition() { return create<managed::Condition>(); }
  /// std::invalid_argument (from the server) if `value` is negative.
  Proxy<managed::Semaphore> semaphore(std::int64_t value = 1) { return create<managed::Semaphore>(value, false); }
  /// A semaphore that may never be released past `value` (Error).
  Proxy<managed::Semaphore> bounded_semaphore(std::int64_t value = 1) { return create<managed::Semaphore>(value, true); }
  Proxy<managed::Event> event() { return create<managed::Event>(); }
  /// `timeout` (if any): what wait() uses when given none. std::invalid_argument if parties is 0.
  Proxy<managed::Barrier> barrier(std::uint32_t parties, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    return create<managed::Barrier>(parties, timeout.value_or(std::chrono::nanoseconds(-1)));
  }

  /// Stops the server; proxies fail with ActorDeadError afterwards.
  void shutdown() { manager_.shutdown(); }
  const Address& address() const noexcept { return manager_.address(); }

 private:
  template <class T, class... Args>
  Proxy<T> create(Args... args) {
    using Factory = detail::ManagedFactoryOf<T, Args...>;
    static_cast<void>(Factory::registered);
    std::string arguments;
    {
      detail::BinaryWriter archive(arguments);
      (archive(args), ...);
    }
    return manager_.make_proxy<T>(manager_.create_object(Factory::key(), std::move(arguments)));
  }

  BaseManager manager_;
};

}  // namespace cohort
