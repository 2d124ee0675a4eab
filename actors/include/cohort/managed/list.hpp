// managed::List<T> (SyncManager's list): a vector that lives in a manager's server, shared by every
// process holding its proxy. Indexes count from the end when negative, as in Python.
#pragma once

#include <cereal/types/vector.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cohort/base_manager.hpp"
#include "cohort/detail/proxy_item.hpp"
#include "cohort/detail/python_index.hpp"
#include "cohort/managed_methods.hpp"

namespace cohort::managed {

template <class T>
class List {
 public:
  static constexpr bool hosted_on_loop = true;

  List() = default;
  explicit List(std::vector<T> items) : items_(std::move(items)) {}

  void append(T value) { items_.push_back(std::move(value)); }
  void extend(std::vector<T> values) {
    for (auto& value : values) items_.push_back(std::move(value));
  }
  void insert(std::int64_t index, T value) {
    const auto size = static_cast<std::int64_t>(items_.size());
    if (index < 0) index = std::max<std::int64_t>(0, index + size);
    items_.insert(items_.begin() + std::min(index, size), std::move(value));
  }
  /// std::out_of_range (Python's IndexError) past either end.
  T get(std::int64_t index) const { return items_[position(index)]; }
  void set(std::int64_t index, T value) { items_[position(index)] = std::move(value); }
  T pop(std::int64_t index) {
    const auto at = position(index);
    T value = std::move(items_[at]);
    items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(at));
    return value;
  }
  std::size_t size() const { return items_.size(); }
  std::vector<T> to_vector() const { return items_; }
  void clear() { items_.clear(); }
  void reverse() { std::reverse(items_.begin(), items_.end()); }

 private:
  std::size_t position(std::int64_t index) const { return detail::python_index(index, items_.size(), "managed list"); }

  std::vector<T> items_;
};

}  // namespace cohort::managed

template <class T>
struct cohort::managed_methods<cohort::managed::List<T>> {
  using L = cohort::managed::List<T>;
  static constexpr auto methods = std::make_tuple(&L::append, &L::extend, &L::insert, &L::get, &L::set, &L::pop,
                                                  &L::size, &L::to_vector, &L::clear, &L::reverse);
  static constexpr std::string_view spelled = "append, extend, insert, get, set, pop, size, to_vector, clear, reverse";
};

namespace cohort {

/// A managed list's proxy: Python's list methods, each with an async_ twin for coroutines.
template <class T>
class Proxy<managed::List<T>> : public detail::ProxyBase<managed::List<T>> {
  using L = managed::List<T>;
  using Base = detail::ProxyBase<L>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  /// `l[i]`: reads with get and assigns with set (std::out_of_range past either end).
  using Item = detail::ProxyItem<Proxy, std::int64_t, T>;

  void append(T value) const { Base::invoke(&L::append, std::move(value)); }
  void extend(std::vector<T> values) const { Base::invoke(&L::extend, std::move(values)); }
  void insert(std::int64_t index, T value) const { Base::invoke(&L::insert, index, std::move(value)); }
  T get(std::int64_t index) const { return Base::invoke(&L::get, index); }
  void set(std::int64_t index, T value) const { Base::invoke(&L::set, index, std::move(value)); }
  Item operator[](std::int64_t index) const { return Item(this, index); }
  T pop(std::int64_t index = -1) const { return Base::invoke(&L::pop, index); }
  std::size_t size() const { return Base::invoke(&L::size); }
  std::vector<T> to_vector() const { return Base::invoke(&L::to_vector); }
  void clear() const { Base::invoke(&L::clear); }
  void reverse() const { Base::invoke(&L::reverse); }

  task<void> async_append(T value) const { co_await Base::ask(&L::append, std::move(value)); }
  task<void> async_extend(std::vector<T> values) const { co_await Base::ask(&L::extend, std::move(values)); }
  task<void> async_insert(std::int64_t index, T value) const { co_await Base::ask(&L::insert, index, std::move(value)); }
  task<T> async_get(std::int64_t index) const { co_return co_await Base::ask(&L::get, index); }
  task<void> async_set(std::int64_t index, T value) const { co_await Base::ask(&L::set, index, std::move(value)); }
  task<T> async_pop(std::int64_t index = -1) const { co_return co_await Base::ask(&L::pop, index); }
  task<std::size_t> async_size() const { co_return co_await Base::ask(&L::size); }
  task<std::vector<T>> async_to_vector() const { co_return co_await Base::ask(&L::to_vector); }
  task<void> async_clear() const { co_await Base::ask(&L::clear); }
  task<void> async_reverse() const { co_await Base::ask(&L::reverse); }

 private:
  friend class cereal::access;
  Proxy() = default;
};

}  // namespace cohort
