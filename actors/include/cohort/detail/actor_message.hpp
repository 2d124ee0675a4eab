// The typed messages of an actor: a method (plain or coroutine) with its stored arguments, and the
// reply it settles (a future state for ask and call; none for tell, whose failure is logged).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/error.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

template <class X>
struct method_return {
  using type = X;
  static constexpr bool coroutine = false;
};
template <class X>
struct method_return<task<X>> {
  using type = X;
  static constexpr bool coroutine = true;
};

/// What calling `method` on a T with `Args` (passed as rvalues, as std::thread passes them) returns.
template <class T, class M, class... Args>
using method_invoke_t = std::invoke_result_t<M&, T&, Args...>;
/// The reply of such a call: the method's result, or a coroutine method's co_return type.
template <class T, class M, class... Args>
using actor_reply_t = typename method_return<method_invoke_t<T, M, Args...>>::type;

template <class T, class M, class... Args>
constexpr void check_actor_call() {
  static_assert(std::is_invocable_v<M&, T&, Args...>,
                "cohort actor: this method cannot be called with these arguments; pass a member function of "
                "the actor's class (&Class::method) or a callable taking `Class&`, then arguments it accepts "
                "as rvalues (they are stored and moved into the call, as std::thread does)");
  static_assert((std::is_move_constructible_v<std::decay_t<Args>> && ...),
                "cohort actor: every argument is stored in the message, so it must be movable");
}

/// Logs the failure of a message nobody waits for (a tell), as Python logs an unretrieved exception.
void log_unobserved_failure(const std::string& actor, std::exception_ptr error) noexcept;

template <class T, class M, class Reply, class... Args>
class MethodMessage final : public ActorMessage {
  using Invoked = method_invoke_t<T, M, Args...>;
  static constexpr bool is_coroutine = method_return<Invoked>::coroutine;

 public:
  /// `reply` null: a tell, logged under `actor` if it fails.
  MethodMessage(const ActorCore& actor, std::shared_ptr<FutureState<Reply>> reply, M method, Args... args)
      : actor_(&actor), reply_(std::move(reply)), method_(std::move(method)), args_(std::move(args)...) {}

  ~MethodMessage() override {
    // Destroyed unhandled and unfailed: a coroutine method whose loop was destroyed mid-way.
    if (reply_ && !reply_->done())
      reply_->try_set_exception(std::make_exception_ptr(
          ActorDeadError("actor '" + actor_->name() + "': its Runtime was destroyed before the method finished")));
  }

  bool coroutine() const noexcept override { return is_coroutine; }

  std::exception_ptr run(void* object) noexcept override {
    if constexpr (is_coroutine) {
      return nullptr;  // never called: coroutine() says run_async
    } else {
      try {
        if constexpr (std::is_void_v<Reply>) {
          invoke(object);
          if (reply_) reply_->try_set_value();
        } else if (reply_) {
          reply_->try_set_value(invoke(object));
        } else {
          (void)invoke(object);
        }
        return nullptr;
      } catch (...) {
        auto error = std::current_exception();
        settle_failure(error);
        return error;
      }
    }
  }

  task<void> run_async(void* object) override {
    if constexpr (is_coroutine) {
      std::exception_ptr error;
      try {
        if constexpr (std::is_void_v<Reply>) {
          co_await invoke(object);
          if (reply_) reply_->try_set_value();
        } else if (reply_) {
          reply_->try_set_value(co_await invoke(object));
        } else {
          (void)co_await invoke(object);
        }
      } catch (...) {
        error = std::current_exception();
      }
      if (error) {
        settle_failure(error);
        std::rethrow_exception(error);
      }
    } else {
      co_return;  // never called: coroutine() says run
    }
  }

  void fail(std::exception_ptr error) noexcept override {
    if (reply_) reply_->try_set_exception(std::move(error));
  }

 private:
  Invoked invoke(void* object) {
    return std::apply(
        [&](auto&... args) -> Invoked { return std::invoke(method_, *static_cast<T*>(object), std::move(args)...); },
        args_);
  }

  void settle_failure(const std::exception_ptr& error) noexcept {
    if (reply_)
      reply_->try_set_exception(error);
    else
      log_unobserved_failure(actor_->name(), error);
  }

  const ActorCore* actor_;  // outlives its messages: they are in its mailbox or its method's frame
  std::shared_ptr<FutureState<Reply>> reply_;
  M method_;
  std::tuple<Args...> args_;
};

template <class T, class M, class... Args>
auto make_method_message(const ActorCore& actor, std::shared_ptr<FutureState<actor_reply_t<T, M, Args...>>> reply,
                         M method, Args... args) {
  return std::make_unique<MethodMessage<T, M, actor_reply_t<T, M, Args...>, Args...>>(
      actor, std::move(reply), std::move(method), std::move(args)...);
}

}  // namespace cohort::detail
