// Callback: a move-only `void()` callable that keeps small callables inline. A future's done-callbacks
// are mostly a lambda holding a shared_ptr (a waiting coroutine's operation), for which std::function
// allocates; a gather of 50,000 pool calls paid such an allocation per call.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace cohort::detail {

class Callback {
 public:
  /// Callables up to this size (and nothrow movable) are kept inline; larger ones on the heap.
  static constexpr std::size_t inline_size = 2 * sizeof(void*);

  Callback() noexcept = default;

  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Callback> && std::is_invocable_v<std::decay_t<F>&>)
  Callback(F&& fn) {  // NOLINT(google-explicit-constructor): converts like std::function
    using Fn = std::decay_t<F>;
    if constexpr (fits_inline<Fn>) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(fn));
      ops_ = &inline_ops<Fn>;
    } else {
      ::new (static_cast<void*>(storage_)) Fn*(new Fn(std::forward<F>(fn)));
      ops_ = &heap_ops<Fn>;
    }
  }

  Callback(Callback&& other) noexcept : ops_(other.ops_) {
    if (ops_) ops_->move(other.storage_, storage_);
    other.ops_ = nullptr;
  }
  Callback& operator=(Callback&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      if (ops_) ops_->move(other.storage_, storage_);
      other.ops_ = nullptr;
    }
    return *this;
  }
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;
  ~Callback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  void operator()() { ops_->call(storage_); }

  void reset() noexcept {
    if (ops_) ops_->destroy(storage_);
    ops_ = nullptr;
  }

 private:
  struct Ops {
    void (*call)(void* storage);
    void (*move)(void* from, void* to) noexcept;  // leaves `from` destroyed
    void (*destroy)(void* storage) noexcept;
  };

  template <class Fn>
  static constexpr bool fits_inline = sizeof(Fn) <= inline_size && alignof(Fn) <= alignof(void*) &&
                                      std::is_nothrow_move_constructible_v<Fn>;

  template <class Fn>
  static constexpr Ops inline_ops = {
      [](void* storage) { (*std::launder(static_cast<Fn*>(storage)))(); },
      [](void* from, void* to) noexcept {
        Fn* source = std::launder(static_cast<Fn*>(from));
        ::new (to) Fn(std::move(*source));
        source->~Fn();
      },
      [](void* storage) noexcept { std::launder(static_cast<Fn*>(storage))->~Fn(); },
  };

  template <class Fn>
  static constexpr Ops heap_ops = {
      [](void* storage) { (**static_cast<Fn**>(storage))(); },
      [](void* from, void* to) noexcept { ::new (to) Fn*(*static_cast<Fn**>(from)); },
      [](void* storage) noexcept { delete *static_cast<Fn**>(storage); },
  };

  alignas(void*) unsigned char storage_[inline_size];
  const Ops* ops_ = nullptr;
};

}  // namespace cohort::detail
