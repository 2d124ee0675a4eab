// managed::Namespace (SyncManager's Namespace) and managed::Value<T> (its Value): named fields of any
// serializable type, and one value, in a manager's server.
#pragma once

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cohort/base_manager.hpp"
#include "cohort/codec.hpp"
#include "cohort/managed_methods.hpp"

namespace cohort::managed {

/// Fields by name, each held as the codec frame of its value (so each may have its own type; a get of
/// the wrong type is a SerializationError, as any loads is).
class Namespace {
 public:
  static constexpr bool hosted_on_loop = true;

  void set(std::string name, std::string frame) { fields_.insert_or_assign(std::move(name), std::move(frame)); }
  /// std::out_of_range (Python's AttributeError) when there is no such field.
  std::string get(const std::string& name) const {
    const auto found = fields_.find(name);
    if (found == fields_.end()) throw std::out_of_range("managed namespace: no field '" + name + "'");
    return found->second;
  }
  bool contains(const std::string& name) const { return fields_.count(name) != 0; }
  bool erase(const std::string& name) { return fields_.erase(name) != 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, frame] : fields_) out.push_back(name);
    return out;
  }

 private:
  std::map<std::string, std::string> fields_;
};

template <class T>
class Value {
 public:
  static constexpr bool hosted_on_loop = true;

  Value() = default;
  explicit Value(T value) : value_(std::move(value)) {}
  T get() const { return value_; }
  void set(T value) { value_ = std::move(value); }
  /// Swaps in `value` and returns the one before, in one step.
  T exchange(T value) { return std::exchange(value_, std::move(value)); }

 private:
  T value_{};
};

}  // namespace cohort::managed

template <>
struct cohort::managed_methods<cohort::managed::Namespace> {
  using N = cohort::managed::Namespace;
  static constexpr auto methods = std::make_tuple(&N::set, &N::get, &N::contains, &N::erase, &N::names);
  static constexpr std::string_view spelled = "set, get, contains, erase, names";
};

template <class T>
struct cohort::managed_methods<cohort::managed::Value<T>> {
  using V = cohort::managed::Value<T>;
  static constexpr auto methods = std::make_tuple(&V::get, &V::set, &V::exchange);
  static constexpr std::string_view spelled = "get, set, exchange";
};

namespace cohort {

/// A managed namespace's proxy: `ns.set("x", 1)`, `ns.get<int>("x")`, and async_ twins.
template <>
class Proxy<managed::Namespace> : public detail::ProxyBase<managed::Namespace> {
  using N = managed::Namespace;
  using Base = detail::ProxyBase<N>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  template <class T>
  void set(std::string name, const T& value) const {
    Base::invoke(&N::set, std::move(name), dumps(value));
  }
  template <class T>
  T get(const std::string& name) const {
    return loads<T>(Base::invoke(&N::get, name));
  }
  bool contains(const std::string& name) const { return Base::invoke(&N::contains, name); }
  bool erase(const std::string& name) const { return Base::invoke(&N::erase, name); }
  std::vector<std::string> names() const { return Base::invoke(&N::names); }

  template <class T>
  task<void> async_set(std::string name, T value) const {
    co_await Base::ask(&N::set, std::move(name), dumps(value));
  }
  template <class T>
  task<T> async_get(std::string name) const {
    const std::string frame = co_await Base::ask(&N::get, std::move(name));
    co_return loads<T>(frame);
  }
  task<bool> async_contains(std::string name) const { co_return co_await Base::ask(&N::contains, std::move(name)); }
  task<bool> async_erase(std::string name) const { co_return co_await Base::ask(&N::erase, std::move(name)); }
  task<std::vector<std::string>> async_names() const { co_return co_await Base::ask(&N::names); }

 private:
  friend class cereal::access;
  Proxy() = default;
};

/// A managed value's proxy: get, set, exchange, and async_ twins.
template <class T>
class Proxy<managed::Value<T>> : public detail::ProxyBase<managed::Value<T>> {
  using V = managed::Value<T>;
  using Base = detail::ProxyBase<V>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  T get() const { return Base::invoke(&V::get); }
  void set(T value) const { Base::invoke(&V::set, std::move(value)); }
  T exchange(T value) const { return Base::invoke(&V::exchange, std::move(value)); }
  task<T> async_get() const { co_return co_await Base::ask(&V::get); }
  task<void> async_set(T value) const { co_await Base::ask(&V::set, std::move(value)); }
  task<T> async_exchange(T value) const { co_return co_await Base::ask(&V::exchange, std::move(value)); }

 private:
  friend class cereal::access;
  Proxy() = default;
};

}  // namespace cohort
