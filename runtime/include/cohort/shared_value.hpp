// Value and Array (Python: multiprocessing.Value / Array, RawValue / RawArray): a T, or n of them, in
// shared memory, that processes and threads read and write in place. Copies share the memory; a forked
// child inherits it, and a Value or an Array passed as a Process argument reaches the child under every
// start method.
//
// Value<T> and Array<T> come with an RLock (get_lock()), by default a new one kept beside the data, or one
// given to share; Value::get and Value::set take it for the duration of the copy, as Python's `.value`
// does. A read-modify-write must hold it throughout:
//
//   { std::lock_guard hold(counter.get_lock()); counter.set(counter.get() + 1); }
//
// Array elements are references into the shared memory and take no lock by themselves. RawValue and
// RawArray have no lock at all.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include <cereal/access.hpp>

#include "cohort/detail/shared_mapping.hpp"
#include "cohort/error.hpp"
#include "cohort/lock.hpp"

namespace cohort {

/// The lock of a Value or an Array: `true` (a new RLock beside the data), `false` (none), or an RLock to
/// share with other objects, as Python's `lock=` argument.
class LockChoice {
 public:
  enum class Kind : std::uint8_t { none, inline_lock, shared };

  LockChoice(bool create) noexcept : kind_(create ? Kind::inline_lock : Kind::none) {}  // NOLINT: implicit by design
  LockChoice(RLock lock) noexcept : kind_(Kind::shared), lock_(std::move(lock)) {}      // NOLINT: implicit by design

 private:
  template <class T>
  friend class Value;
  template <class T>
  friend class Array;

  Kind kind_;
  std::optional<RLock> lock_;
};

namespace detail {

inline constexpr std::size_t round_up(std::size_t offset, std::size_t alignment) noexcept {
  return (offset + alignment - 1) / alignment * alignment;
}

/// A new zero-filled mapping of `bytes`, with a LockState at offset 0 if `with_lock`.
std::shared_ptr<SharedMapping> create_shared_block(std::size_t bytes, bool with_lock, const char* what);
/// SerializationError unless the received mapping holds `bytes`.
void check_shared_block(const SharedMapping& mapping, std::size_t bytes, const char* what);
[[noreturn]] void throw_no_lock(const char* what);
[[noreturn]] void throw_index(const char* what, std::size_t index, std::size_t size);
/// The elements of an Array in a received mapping: checks its header against the element size.
std::size_t array_size_of(const SharedMapping& mapping, std::size_t header_offset, std::size_t data_offset,
                          std::size_t element_size, const char* what);

struct ArrayHeader {
  std::uint64_t size;
  std::uint64_t element_size;
};

template <class T>
inline constexpr bool is_shareable_v = std::is_trivially_copyable_v<T>;

/// Copies a T in or out of shared memory: one atomic access when the hardware has one for T (so that an
/// unlocked reader never sees half a write), otherwise memcpy.
template <class T>
T load_shared(const T* at) noexcept {
  if constexpr (std::atomic_ref<T>::is_always_lock_free && alignof(T) >= std::atomic_ref<T>::required_alignment) {
    return std::atomic_ref<T>(*const_cast<T*>(at)).load(std::memory_order_relaxed);
  } else {
    T value;
    std::memcpy(static_cast<void*>(&value), at, sizeof(T));
    return value;
  }
}
template <class T>
void store_shared(T* at, const T& value) noexcept {
  if constexpr (std::atomic_ref<T>::is_always_lock_free && alignof(T) >= std::atomic_ref<T>::required_alignment) {
    std::atomic_ref<T>(*at).store(value, std::memory_order_relaxed);
  } else {
    std::memcpy(static_cast<void*>(at), &value, sizeof(T));
  }
}

/// How the lock of a Value or an Array crosses to another process: its kind, and a shared RLock itself
/// (an inline one is found again in the data's own mapping).
template <class Archive>
void save_lock_choice(Archive& archive, LockChoice::Kind kind, const std::optional<RLock>& lock) {
  archive(static_cast<std::uint8_t>(kind));
  if (kind == LockChoice::Kind::shared) archive(*lock);
}
template <class Archive>
LockChoice::Kind load_lock_choice(Archive& archive, std::optional<RLock>& lock, const char* what) {
  std::uint8_t kind = 0;
  archive(kind);
  if (kind > static_cast<std::uint8_t>(LockChoice::Kind::shared))
    throw SerializationError(std::string(what) + ": received an unknown kind of lock");
  lock.reset();
  if (kind == static_cast<std::uint8_t>(LockChoice::Kind::shared)) {
    lock.emplace(LockFactory::rlock(LockRef()));
    archive(*lock);
  }
  return static_cast<LockChoice::Kind>(kind);
}

}  // namespace detail

template <class T>
class Value {
  // If you get an error on the following line, T holds more than bytes (a pointer, a std::string, a
  // std::vector...): only trivially copyable types can live in shared memory. Send other types through a
  // Queue or a Pipe.
  static_assert(detail::is_shareable_v<T>, "cohort::Value<T>: T must be trivially copyable");
 public:
  /// `lock`: true (a new RLock), false (none: get_lock() throws Error) or an RLock to share.
  explicit Value(T init = T{}, LockChoice lock = true) {
    lock_kind_ = lock.kind_;
    mapping_ =
        detail::create_shared_block(data_offset() + sizeof(T), lock_kind_ == LockChoice::Kind::inline_lock, "Value");
    attach();
    if (lock_kind_ == LockChoice::Kind::shared) lock_ = std::move(lock.lock_);
    detail::store_shared(data_, init);
  }

  /// A copy of the value, read under the lock if there is one.
  T get() const {
    if (!lock_) return detail::load_shared(data_);
    std::lock_guard hold(*lock_);
    return *data_;
  }
  void set(const T& value) {
    if (!lock_) return detail::store_shared(data_, value);
    std::lock_guard hold(*lock_);
    *data_ = value;
  }
  /// The lock (Python: Value.get_lock()). Error if the Value was made without one.
  RLock& get_lock() const {
    if (!lock_) detail::throw_no_lock("Value.get_lock");
    return *lock_;
  }
  /// The shared T itself, to change in place while holding get_lock() (Python: Value.get_obj()).
  T& get_obj() const noexcept { return *data_; }

 private:
  friend class cereal::access;

  std::size_t data_offset() const noexcept {
    return lock_kind_ == LockChoice::Kind::inline_lock ? detail::round_up(sizeof(detail::LockState), alignof(T)) : 0;
  }
  void attach() {
    data_ = reinterpret_cast<T*>(static_cast<char*>(mapping_->data()) + data_offset());
    if (lock_kind_ == LockChoice::Kind::inline_lock) lock_ = detail::LockFactory::rlock(detail::LockRef(mapping_, 0));
  }

  template <class Archive>
  void save(Archive& archive) const {
    detail::save_mapping(archive, mapping_, "Value");
    detail::save_lock_choice(archive, lock_kind_, lock_);
  }
  template <class Archive>
  void load(Archive& archive) {
    mapping_ = detail::load_mapping(archive, 1, "Value");
    lock_kind_ = detail::load_lock_choice(archive, lock_, "Value");
    detail::check_shared_block(*mapping_, data_offset() + sizeof(T), "Value");
    attach();
  }

  std::shared_ptr<detail::SharedMapping> mapping_;
  T* data_ = nullptr;
  mutable std::optional<RLock> lock_;
  LockChoice::Kind lock_kind_ = LockChoice::Kind::none;
};

/// A Value without a lock (Python: multiprocessing.RawValue).
template <class T>
class RawValue {
 public:
  explicit RawValue(T init = T{}) : value_(init, false) {}

  T get() const { return value_.get(); }
  void set(const T& value) { value_.set(value); }
  T& get_obj() const noexcept { return value_.get_obj(); }

 private:
  friend class cereal::access;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(value_);
  }

  Value<T> value_;
};

template <class T>
class Array {
  // If you get an error on the following line, T holds more than bytes (a pointer, a std::string, a
  // std::vector...): only trivially copyable types can live in shared memory. Send other types through a
  // Queue or a Pipe.
  static_assert(detail::is_shareable_v<T>, "cohort::Array<T>: T must be trivially copyable");
 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  /// `n` zero-initialized elements (Python: Array('i', n)).
  explicit Array(std::size_t n, LockChoice lock = true) { create(n, std::move(lock)); }
  /// Array<int>{1, 2, 3}.
  Array(std::initializer_list<T> values, LockChoice lock = true) {
    create(values.size(), std::move(lock));
    std::copy(values.begin(), values.end(), data_);
  }
  /// The elements of any range whose elements convert to T (Python: Array('i', range(10))).
  template <std::ranges::input_range R>
    requires(!std::is_same_v<std::remove_cvref_t<R>, Array> &&
             std::is_convertible_v<std::ranges::range_reference_t<R>, T>)
  explicit Array(R&& range, LockChoice lock = true) {
    if constexpr (std::ranges::sized_range<R> && std::ranges::forward_range<R>) {
      create(static_cast<std::size_t>(std::ranges::size(range)), std::move(lock));
      std::ranges::copy(range, data_);
    } else {
      std::vector<T> values;
      for (auto&& value : range) values.push_back(static_cast<T>(value));
      create(values.size(), std::move(lock));
      std::ranges::copy(values, data_);
    }
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) const noexcept { return data_[i]; }
  /// std::out_of_range if i >= size().
  T& at(std::size_t i) const {
    if (i >= size_) detail::throw_index("Array.at", i, size_);
    return data_[i];
  }
  T* data() const noexcept { return data_; }
  T* begin() const noexcept { return data_; }
  T* end() const noexcept { return data_ + size_; }

  /// A copy of every element, taken under the lock if there is one (Python: arr[:]).
  std::vector<T> to_vector() const {
    if (!lock_) return std::vector<T>(begin(), end());
    std::lock_guard hold(*lock_);
    return std::vector<T>(begin(), end());
  }

  /// The lock (Python: Array.get_lock()). Error if the Array was made without one.
  RLock& get_lock() const {
    if (!lock_) detail::throw_no_lock("Array.get_lock");
    return *lock_;
  }

 private:
  friend class cereal::access;
  template <class U>
  friend class RawArray;
  Array() = default;  // to load into

  // Layout: [LockState, if the lock is inline][ArrayHeader][elements], each part on its own cache line.
  std::size_t header_offset() const noexcept { return lock_kind_ == LockChoice::Kind::inline_lock ? 64 : 0; }
  std::size_t data_offset() const noexcept {
    return detail::round_up(header_offset() + 64, alignof(T) > 64 ? alignof(T) : 64);
  }

  void create(std::size_t n, LockChoice lock) {
    lock_kind_ = lock.kind_;
    mapping_ = detail::create_shared_block(data_offset() + n * sizeof(T), lock_kind_ == LockChoice::Kind::inline_lock,
                                           "Array");
    new (static_cast<char*>(mapping_->data()) + header_offset()) detail::ArrayHeader{n, sizeof(T)};
    attach(n);
    if (lock_kind_ == LockChoice::Kind::shared) lock_ = std::move(lock.lock_);
  }
  void attach(std::size_t n) {
    data_ = reinterpret_cast<T*>(static_cast<char*>(mapping_->data()) + data_offset());
    size_ = n;
    if (lock_kind_ == LockChoice::Kind::inline_lock) lock_ = detail::LockFactory::rlock(detail::LockRef(mapping_, 0));
  }

  template <class Archive>
  void save(Archive& archive) const {
    detail::save_mapping(archive, mapping_, "Array");
    detail::save_lock_choice(archive, lock_kind_, lock_);
  }
  template <class Archive>
  void load(Archive& archive) {
    mapping_ = detail::load_mapping(archive, 1, "Array");
    lock_kind_ = detail::load_lock_choice(archive, lock_, "Array");
    attach(detail::array_size_of(*mapping_, header_offset(), data_offset(), sizeof(T), "Array"));
  }

  std::shared_ptr<detail::SharedMapping> mapping_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
  mutable std::optional<RLock> lock_;
  LockChoice::Kind lock_kind_ = LockChoice::Kind::none;
};

/// An Array without a lock (Python: multiprocessing.RawArray).
template <class T>
class RawArray {
 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  explicit RawArray(std::size_t n) : array_(n, false) {}
  RawArray(std::initializer_list<T> values) : array_(values, false) {}
  template <std::ranges::input_range R>
    requires(!std::is_same_v<std::remove_cvref_t<R>, RawArray> &&
             std::is_convertible_v<std::ranges::range_reference_t<R>, T>)
  explicit RawArray(R&& range) : array_(std::forward<R>(range), false) {}

  std::size_t size() const noexcept { return array_.size(); }
  bool empty() const noexcept { return array_.empty(); }
  T& operator[](std::size_t i) const noexcept { return array_[i]; }
  T& at(std::size_t i) const { return array_.at(i); }
  T* data() const noexcept { return array_.data(); }
  T* begin() const noexcept { return array_.begin(); }
  T* end() const noexcept { return array_.end(); }
  std::vector<T> to_vector() const { return array_.to_vector(); }

 private:
  friend class cereal::access;
  RawArray() = default;  // to load into
  template <class Archive>
  void serialize(Archive& archive) {
    archive(array_);
  }

  Array<T> array_;
};

}  // namespace cohort
