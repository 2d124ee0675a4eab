// managed::Array<T> (SyncManager's Array): a sequence of fixed length in a manager's server, shared by
// every process holding its proxy. Indexes count from the end when negative, as in Python.
#pragma once

#include <cereal/types/vector.hpp>

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
class Array {
 public:
  static constexpr bool hosted_on_loop = true;

  /// `size` value-initialized items.
  explicit Array(std::size_t size = 0) : items_(size) {}
  explicit Array(std::vector<T> items) : items_(std::move(items)) {}

  /// std::out_of_range (Python's IndexError) past either end.
  T get(std::int64_t index) const { return items_[position(index)]; }
  void set(std::int64_t index, T value) { items_[position(index)] = std::move(value); }
  std::size_t size() const { return items_.size(); }
  std::vector<T> to_vector() const { return items_; }
  /// Replaces every item: std::invalid_argument unless `values` has the array's length.
  void assign(std::vector<T> values) {
    if (values.size() != items_.size())
      throw std::invalid_argument("managed array: " + std::to_string(values.size()) + " values for an array of " +
                                  std::to_string(items_.size()));
    items_ = std::move(values);
  }

 private:
  std::size_t position(std::int64_t index) const { return detail::python_index(index, items_.size(), "managed array"); }

  std::vector<T> items_;
};

}  // namespace cohort::managed

template <class T>
struct cohort::managed_methods<cohort::managed::Array<T>> {
  using A = cohort::managed::Array<T>;
  static constexpr auto methods = std::make_tuple(&A::get, &A::set, &A::size, &A::to_vector, &A::assign);
  static constexpr std::string_view spelled = "get, set, size, to_vector, assign";
};

namespace cohort {

/// A managed array's proxy: get, set, `a[i]` (assignable), size, to_vector, assign, each with an async_
/// twin.
template <class T>
class Proxy<managed::Array<T>> : public detail::ProxyBase<managed::Array<T>> {
  using A = managed::Array<T>;
  using Base = detail::ProxyBase<A>;

 public:
  explicit Proxy(std::shared_ptr<detail::ProxyCore> core) noexcept : Base(std::move(core)) {}

  using Item = detail::ProxyItem<Proxy, std::int64_t, T>;

  T get(std::int64_t index) const { return Base::invoke(&A::get, index); }
  void set(std::int64_t index, T value) const { Base::invoke(&A::set, index, std::move(value)); }
  Item operator[](std::int64_t index) const { return Item(this, index); }
  std::size_t size() const { return Base::invoke(&A::size); }
  std::vector<T> to_vector() const { return Base::invoke(&A::to_vector); }
  void assign(std::vector<T> values) const { Base::invoke(&A::assign, std::move(values)); }

  task<T> async_get(std::int64_t index) const { co_return co_await Base::ask(&A::get, index); }
  task<void> async_set(std::int64_t index, T value) const { co_await Base::ask(&A::set, index, std::move(value)); }
  task<std::size_t> async_size() const { co_return co_await Base::ask(&A::size); }
  task<std::vector<T>> async_to_vector() const { co_return co_await Base::ask(&A::to_vector); }
  task<void> async_assign(std::vector<T> values) const { co_await Base::ask(&A::assign, std::move(values)); }

 private:
  friend class cereal::access;
  Proxy() = default;
};

}  // namespace cohort
