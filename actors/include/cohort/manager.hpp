// Manager (Python's multiprocessing.Manager(), the SyncManager): a server process holding shared
// objects (dicts, lists, queues) that every process reaches through proxies. Each object is made on
// demand by the proxy's factory; a proxy passes to other processes as a Process argument and works
// there, under every start method.
//
//   cohort::Manager m;
//   auto d = m.dict<std::string, int>();   d.set("a", 1);  d["b"] = 2;  int a = d.get("a");
//   auto l = m.list<int>();                l.append(3);    int x = l[0];
//   auto q = m.queue<int>(8);              q.put(1);       q.get();
//   auto ns = m.namespace_();              ns.set("x", 1.5);  ns.get<double>("x");
//   auto v = m.value<long>(0);             v.set(2);       v.get();
#pragma once

#include <cstddef>
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
#include "cohort/managed/dict.hpp"
#include "cohort/managed/list.hpp"
#include "cohort/managed/namespace.hpp"
#include "cohort/managed/queue.hpp"

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
    static const ManagedType made = [] {
      ManagedType t;
      t.type = std::string(type_name<T>());
      t.methods = managed_method_table<T>();
      return t;
    }();
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
  /// maxsize 0: unbounded.
  template <class T>
  Proxy<managed::Queue<T>> queue(std::size_t maxsize = 0) {
    return create<managed::Queue<T>>(maxsize);
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
