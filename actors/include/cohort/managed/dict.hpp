// managed::Dict<K, V> (SyncManager's dict): a map that lives in a manager's server, shared by every
// process holding its proxy. Each call is one step on the server's loop, so a get, a set or an update
// is atomic with respect to every other client's.
#pragma once

#include <cereal/types/map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

#include <cstddef>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cohort/base_manager.hpp"
#include "cohort/detail/proxy_item.hpp"
#include "cohort/detail/type_name.hpp"
#include "cohort/managed_methods.hpp"

namespace cohort::managed {

template <class K, class V>
class Dict {
 public:
  static constexpr bool hosted_on_loop = true;

  Dict() = default;
  explicit Dict(std::map<K, V> items) : items_(std::move(items)) {}

  /// std::out_of_range (Python's KeyError) when `key` is missing.
  V get(const K& key) const {
    const auto found = items_.find(key);
    if (found == items_.end()) throw std::out_of_range("managed dict: no such key");
    return found->second;
  }
  V get_or(const K& key, const V& fallback) const {
    const auto found = items_.find(key);
    return found == items_.end() ? fallback : found->second;
  }
  void set(K key, V value) { items_.insert_or_assign(std::move(key), std::move(value)); }
  /// Sets `key` to `value` unless it is there; returns what is there now (Python's setdefault).
  V setdefault(K key, V value) { return items_.try_emplace(std::move(key), std::move(value)).first->second; }
  bool contains(const K& key) const { return items_.count(key) != 0; }
  /// Whether there was such a key.
  bool erase(const K& key) { return items_.erase(key) != 0; }
  /// Removes `key` and returns its value; std::out_of_range when missing.
  V pop(const K& key) {
    const auto found = items_.find(key);
    if (found == items_.end()) throw std::out_of_range("managed dict: no such key");
    V value = std::move(found->second);
    items_.erase(found);
    return value;
  }
  std::size_t size() const { return items_.size(); }
  std::vector<K> keys() const {
    std::vector<K> out;
    out.reserve(items_.size());
    for (const auto& [key, value] : items_) out.push_back(key);
    return out;
  }
  std::vector<V> values() const {
    std::vector<V> out;
    out.reserve(items_.size());
    for (const auto& [key, value] : items_) out.push_back(value);
    return out;
  }
  std::vector<std::pair<K, V>> items() const { return {items_.begin(), items_.end()}; }
  std::map<K, V> copy() const { return items_; }
  void clear() { items_.clear(); }
  void update(std::map<K, V> other) {
    for (auto& [key, value] : other) items_.insert_or_assign(key, std::move(value));
  }
  /// Adds `delta` to the value of `key` (from V{} if missing) in one step and returns the sum: the
  /// read-modify-write that d.set(k, d.get(k) + 1) from two processes would race on.
  V add(K key, V delta)
    requires requires(V a, V b) { a += b; }
  {
    return items_[std::move(key)] += delta;
  }

 private:
  std::map<K, V> items_;
};

}  // namespace cohort::managed

template <class K, class V>
struct cohort::managed_methods<cohort::managed::Dict<K, V>> {
  using D = cohort::managed::Dict<K, V>;
  static constexpr bool addable = requires(V a, V b) { a += b; };
  static constexpr auto common = std::make_tuple(&D::get, &D::get_or, &D::set, &D::setdefault, &D::contains, &D::erase,
                                                 &D::pop, &D::size, &D::keys, &D::values, &D::items, &D::copy,
                                                 &D::clear, &D::update);
  static constexpr auto methods = [] {
    if constexpr (addable)
      return std::tuple_cat(common, std::make_tuple(&D::add));
    else
      return common;
  }();
  static constexpr std::string_view spelled =
      addable ? "get, get_or, set, setdefault, contains, erase, pop, size, keys, values, items, copy, clear, update, add"
              : "get, get_or, set, setdefault, contains, erase, pop, size, keys, values, items, copy, clear, update";
};

namespace cohort {

/// A managed dict's proxy: Python's dict methods, each with an async_ twin for coroutines.
template <class K, class V>
class Proxy<managed::Dict<K, V>> : public detail::ProxyBase<managed::Dict<K, V>> {
  using D = managed::Dict<K, V>;
  using Base = detail::ProxyBase<D>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  /// `d[key]`: reads with get (std::out_of_range when missing) and assigns with set.
  using Item = detail::ProxyItem<Proxy, K, V>;

  V get(const K& key) const { return Base::invoke(&D::get, key); }
  V get(const K& key, V fallback) const { return Base::invoke(&D::get_or, key, std::move(fallback)); }
  void set(K key, V value) const { Base::invoke(&D::set, std::move(key), std::move(value)); }
  Item operator[](K key) const { return Item(this, std::move(key)); }
  V setdefault(K key, V value) const { return Base::invoke(&D::setdefault, std::move(key), std::move(value)); }
  bool contains(const K& key) const { return Base::invoke(&D::contains, key); }
  bool erase(const K& key) const { return Base::invoke(&D::erase, key); }
  V pop(const K& key) const { return Base::invoke(&D::pop, key); }
  std::size_t size() const { return Base::invoke(&D::size); }
  std::vector<K> keys() const { return Base::invoke(&D::keys); }
  std::vector<V> values() const { return Base::invoke(&D::values); }
  std::vector<std::pair<K, V>> items() const { return Base::invoke(&D::items); }
  std::map<K, V> copy() const { return Base::invoke(&D::copy); }
  void clear() const { Base::invoke(&D::clear); }
  void update(std::map<K, V> other) const { Base::invoke(&D::update, std::move(other)); }
  V add(K key, V delta) const
    requires managed_methods<D>::addable
  {
    return Base::invoke(&D::add, std::move(key), std::move(delta));
  }

  task<V> async_get(K key) const { co_return co_await Base::ask(&D::get, std::move(key)); }
  task<V> async_get(K key, V fallback) const { co_return co_await Base::ask(&D::get_or, std::move(key), std::move(fallback)); }
  task<void> async_set(K key, V value) const { co_await Base::ask(&D::set, std::move(key), std::move(value)); }
  task<V> async_setdefault(K key, V value) const { co_return co_await Base::ask(&D::setdefault, std::move(key), std::move(value)); }
  task<bool> async_contains(K key) const { co_return co_await Base::ask(&D::contains, std::move(key)); }
  task<bool> async_erase(K key) const { co_return co_await Base::ask(&D::erase, std::move(key)); }
  task<V> async_pop(K key) const { co_return co_await Base::ask(&D::pop, std::move(key)); }
  task<std::size_t> async_size() const { co_return co_await Base::ask(&D::size); }
  task<std::vector<K>> async_keys() const { co_return co_await Base::ask(&D::keys); }
  task<std::vector<V>> async_values() const { co_return co_await Base::ask(&D::values); }
  task<std::vector<std::pair<K, V>>> async_items() const { co_return co_await Base::ask(&D::items); }
  task<std::map<K, V>> async_copy() const { co_return co_await Base::ask(&D::copy); }
  task<void> async_clear() const { co_await Base::ask(&D::clear); }
  task<void> async_update(std::map<K, V> other) const { co_await Base::ask(&D::update, std::move(other)); }
  task<V> async_add(K key, V delta) const
    requires managed_methods<D>::addable
  {
    co_return co_await Base::ask(&D::add, std::move(key), std::move(delta));
  }

 private:
  friend class cereal::access;
  Proxy() = default;
};

}  // namespace cohort
