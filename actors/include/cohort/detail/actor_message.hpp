// The typed messages of an actor: a method (plain or coroutine) with its stored arguments and, for ask
// and call, the reply it settles and the chain of asks it extends. A tell carries neither (its failure
// is logged), so it stays within one 64-byte block.
#pragma once

#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/manager_protocol.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/process_actor_protocol.hpp"
#include "cohort/detail/remote_call.hpp"
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
/// The ActorDeadError of an ask whose method was destroyed half-way (its Runtime was destroyed).
std::exception_ptr destroyed_mid_method_error(const ActorCore& actor);

/// Why a call cannot go to an actor in another process.
[[noreturn]] void throw_not_remote_method(std::string_view method_type);
[[noreturn]] void throw_not_transferable_call(std::string_view type, std::string_view what);
/// Why a call cannot go to an object served by a manager: `method_type` is not listed for `type`.
[[noreturn]] void throw_not_managed_method(std::string_view type, std::string_view method_type);

template <class T, class M, class... Args>
void process_actor_entry(ActorCore& host, std::string_view method, std::string_view arguments,
                         std::shared_ptr<FutureState<std::string>> reply);

template <class Tuple>
struct transferable_tuple;
template <class... P>
struct transferable_tuple<std::tuple<P...>> : std::bool_constant<(is_transferable_v<P> && ...)> {};

/// What an ask or a call carries beyond a tell.
template <class Reply>
struct AskParts {
  const ActorCore* actor;  // outlives the message: it sits in the actor's mailbox or method frame
  std::shared_ptr<FutureState<Reply>> reply;
  std::shared_ptr<const CallChain> chain;
};
struct TellParts {};

template <class T, class M, class Reply, bool Ask, class... Args>
class MethodMessage final : public ActorMessage {
  using Invoked = method_invoke_t<T, M, Args...>;
  static constexpr bool is_coroutine = method_return<Invoked>::coroutine;

 public:
  /// A tell.
  MethodMessage(M method, Args... args)
    requires(!Ask)
      : method_(std::move(method)), args_(std::move(args)...) {}
  /// An ask or a call, answered through `reply`.
  MethodMessage(const ActorCore& actor, std::shared_ptr<FutureState<Reply>> reply, M method, Args... args)
    requires Ask
      : parts_{&actor, std::move(reply), nullptr}, method_(std::move(method)), args_(std::move(args)...) {}

  ~MethodMessage() override {
    // Destroyed neither handled nor failed: a coroutine method whose loop was destroyed half-way.
    if constexpr (Ask)
      if (!parts_.reply->done()) parts_.reply->try_set_exception(destroyed_mid_method_error(*parts_.actor));
  }

  void set_chain(std::shared_ptr<const CallChain> chain) noexcept
    requires Ask
  {
    parts_.chain = std::move(chain);
  }
  std::shared_ptr<const CallChain> take_chain() noexcept override {
    if constexpr (Ask) {
      return std::move(parts_.chain);
    } else {
      return nullptr;
    }
  }

  bool coroutine() const noexcept override { return is_coroutine; }

  std::exception_ptr run(void* object, const ActorCore& actor) noexcept override {
    if constexpr (is_coroutine) {
      return nullptr;  // never called: coroutine() says run_async
    } else {
      try {
        if constexpr (!Ask) {
          (void)invoke(object);
        } else if constexpr (std::is_void_v<Reply>) {
          invoke(object);
          parts_.reply->try_set_value();
        } else {
          parts_.reply->try_set_value(invoke(object));
        }
        return nullptr;
      } catch (...) {
        auto error = std::current_exception();
        settle_failure(error, actor);
        return error;
      }
    }
  }

  task<void> run_async(void* object, const ActorCore& actor) override {
    if constexpr (is_coroutine) {
      std::exception_ptr error;
      try {
        if constexpr (!Ask) {
          (void)co_await invoke(object);
        } else if constexpr (std::is_void_v<Reply>) {
          co_await invoke(object);
          parts_.reply->try_set_value();
        } else {
          parts_.reply->try_set_value(co_await invoke(object));
        }
      } catch (...) {
        error = std::current_exception();
      }
      if (error) {
        settle_failure(error, actor);
        std::rethrow_exception(error);
      }
    } else {
      co_return;  // never called: coroutine() says run
    }
  }

  void fail(std::exception_ptr error) noexcept override {
    if constexpr (Ask) parts_.reply->try_set_exception(std::move(error));
  }

  void encode_remote(ProcessActorRequest& request) const override {
    if constexpr (!is_remote_method_v<M>) {
      throw_not_remote_method(type_name<M>());
    } else if constexpr (!(is_transferable_v<Args> && ...)) {
      const std::string_view names[] = {(is_transferable_v<Args> ? std::string_view() : type_name<Args>())...};
      for (auto name : names)
        if (!name.empty()) throw_not_transferable_call(name, "argument");
      throw_not_transferable_call(type_name<std::tuple<Args...>>(), "argument");
    } else if constexpr (Ask && !std::is_void_v<Reply> &&
                         !(is_transferable_v<Reply> && std::is_default_constructible_v<Reply>)) {
      throw_not_transferable_call(type_name<Reply>(), "result (a default-constructible type cereal can serialize)");
    } else {
      static const FunctionAddress entry = address_of(reinterpret_cast<const void*>(&process_actor_entry<T, M, Args...>));
      request.kind = Ask ? ProcessActorKind::ask : ProcessActorKind::tell;
      request.entry = entry;
      request.method = encode_method(method_);
      BinaryWriter archive(request.arguments);
      try {
        std::apply([&](const auto&... values) { (archive(values), ...); }, args_);
      } catch (...) {
        rethrow_as_serialization_error(type_name<std::tuple<Args...>>(), false);
      }
    }
  }

  void encode_named(ManagerRequest& request) const override {
    if constexpr (!has_managed_methods<T> || !std::is_member_function_pointer_v<M>) {
      throw_not_managed_method(type_name<T>(), type_name<M>());
    } else {
      using Parameters = typename member_signature<M>::parameters;
      const int index = managed_method_index<T>(method_);
      if (index < 0) throw_not_managed_method(type_name<T>(), type_name<M>());
      if constexpr (!transferable_tuple<Parameters>::value) {
        throw_not_transferable_call(type_name<Parameters>(), "parameters");
      } else if constexpr (Ask && !std::is_void_v<Reply> &&
                           !(is_transferable_v<Reply> && std::is_default_constructible_v<Reply>)) {
        throw_not_transferable_call(type_name<Reply>(), "result (a default-constructible type cereal can serialize)");
      } else {
        request.kind = Ask ? ManagerKind::ask : ManagerKind::tell;
        request.method = managed_method_name<T>(index);
        request.signature = std::string(type_name<M>());
        BinaryWriter archive(request.arguments);
        try {
          // As the method's own parameter types, which the server decodes: an int passed for a long
          // parameter crosses as a long.
          [&]<std::size_t... I>(std::index_sequence<I...>) {
            const auto write = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
              using Parameter = std::tuple_element_t<J, Parameters>;
              const auto& value = std::get<J>(args_);
              if constexpr (std::is_same_v<std::decay_t<decltype(value)>, Parameter>)
                archive(value);
              else
                archive(static_cast<Parameter>(value));
            };
            (write(std::integral_constant<std::size_t, I>{}), ...);
          }(std::make_index_sequence<sizeof...(Args)>{});
        } catch (...) {
          rethrow_as_serialization_error(type_name<Parameters>(), false);
        }
      }
    }
  }

  void settle_remote(const ProcessActorReply& reply) noexcept override {
    if constexpr (Ask) {
      try {
        if (!reply.ok) rethrow_failure(reply.failure);
        if constexpr (std::is_void_v<Reply>) {
          parts_.reply->try_set_value();
        } else if constexpr (is_transferable_v<Reply> && std::is_default_constructible_v<Reply>) {
          parts_.reply->try_set_value(loads<Reply>(reply.result));
        }
      } catch (...) {
        parts_.reply->try_set_exception(std::current_exception());
      }
    }
  }

 private:
  Invoked invoke(void* object) {
    return std::apply(
        [&](auto&... args) -> Invoked { return std::invoke(method_, *static_cast<T*>(object), std::move(args)...); },
        args_);
  }

  void settle_failure(const std::exception_ptr& error, const ActorCore& actor) noexcept {
    if constexpr (Ask)
      parts_.reply->try_set_exception(error);
    else
      log_unobserved_failure(actor.name(), error);
  }

  [[no_unique_address]] std::conditional_t<Ask, AskParts<Reply>, TellParts> parts_;
  M method_;
  [[no_unique_address]] std::tuple<Args...> args_;
};

template <class T, class M, class... Args>
using ask_message_t = MethodMessage<T, M, actor_reply_t<T, M, Args...>, true, Args...>;

template <class T, class M, class... Args>
std::unique_ptr<ask_message_t<T, M, Args...>> make_ask_message(
    const ActorCore& actor, std::shared_ptr<FutureState<actor_reply_t<T, M, Args...>>> reply, M method, Args... args) {
  return std::make_unique<ask_message_t<T, M, Args...>>(actor, std::move(reply), std::move(method), std::move(args)...);
}

template <class T, class M, class... Args>
std::unique_ptr<ActorMessage> make_tell_message(M method, Args... args) {
  return std::make_unique<MethodMessage<T, M, actor_reply_t<T, M, Args...>, false, Args...>>(std::move(method),
                                                                                            std::move(args)...);
}

/// Queues on `host` a call of `method` with the arguments `arguments` decodes as `Args`; its reply is
/// forwarded as a codec frame (a tell's too: the caller awaits every call's answer).
template <class T, class M, class... Args>
void queue_decoded_call(ActorCore& host, M method, std::string_view arguments,
                        std::shared_ptr<FutureState<std::string>> reply) {
  auto loaded = decode_arguments<Args...>(arguments);
  std::unique_ptr<ActorMessage> message = std::apply(
      [&](auto&... values) -> std::unique_ptr<ActorMessage> {
        auto local = std::make_shared<FutureState<actor_reply_t<T, M, Args...>>>();
        forward_reply(local, reply);
        return make_ask_message<T>(host, std::move(local), std::move(method), std::move(*values)...);
      },
      loaded);
  host.send_and_handle(std::move(message));
}

/// The worker's side of a call of `M` with `Args` on its hosted T.
template <class T, class M, class... Args>
void process_actor_entry(ActorCore& host, std::string_view method, std::string_view arguments,
                         std::shared_ptr<FutureState<std::string>> reply) {
  queue_decoded_call<T, M, Args...>(host, decode_method<M>(method), arguments, std::move(reply));
}

/// A manager's side of a call of T's managed method number I.
template <class T, std::size_t I>
void managed_entry(ActorCore& host, std::string_view arguments, std::shared_ptr<FutureState<std::string>> reply) {
  constexpr auto method = std::get<I>(managed_methods<T>::methods);
  using M = std::remove_cvref_t<decltype(method)>;
  [&]<class... P>(std::tuple<P...>*) {
    queue_decoded_call<T, M, P...>(host, method, arguments, std::move(reply));
  }(static_cast<typename member_signature<M>::parameters*>(nullptr));
}

/// The loop side of T's managed method number I.
template <class T, std::size_t I>
std::shared_ptr<TaskControl> managed_loop_entry(boost::asio::io_context& loop, void* object, std::uint64_t connection,
                                                std::string_view arguments,
                                                std::shared_ptr<FutureState<std::string>> reply) {
  constexpr auto method = std::get<I>(managed_methods<T>::methods);
  using M = std::remove_cvref_t<decltype(method)>;
  using Parameters = typename member_signature<M>::parameters;
  auto loaded = [&]<class... P>(std::tuple<P...>*) { return decode_arguments<P...>(arguments); }(
      static_cast<Parameters*>(nullptr));
  if constexpr (std::tuple_size_v<Parameters> != 0) {
    if constexpr (std::is_same_v<std::tuple_element_t<0, Parameters>, managed::Caller>)
      std::get<0>(loaded)->connection = connection;  // what the client said of it does not count
  }
  T& target = *static_cast<T*>(object);
  using Invoked = decltype(std::apply([&](auto&... values) { return std::invoke(method, target, std::move(*values)...); },
                                      loaded));
  using R = typename method_return<Invoked>::type;
  const auto settle = [](FutureState<std::string>& state, auto&&... result) {
    if constexpr (sizeof...(result) == 0)
      state.try_set_value(std::string());
    else
      state.try_set_value(dumps(result...));
  };
  if constexpr (method_return<Invoked>::coroutine) {
    return start(
        loop.get_executor(),
        [](T& on, decltype(loaded) values, std::shared_ptr<FutureState<std::string>> answer, decltype(settle) done)
            -> task<void> {
          try {
            if constexpr (std::is_void_v<R>) {
              co_await std::apply([&](auto&... v) { return std::invoke(std::get<I>(managed_methods<T>::methods), on, std::move(*v)...); }, values);
              done(*answer);
            } else {
              R result = co_await std::apply([&](auto&... v) { return std::invoke(std::get<I>(managed_methods<T>::methods), on, std::move(*v)...); }, values);
              done(*answer, result);
            }
          } catch (...) {
            answer->try_set_exception(std::current_exception());
          }
        }(target, std::move(loaded), std::move(reply), settle))
        .control;
  } else {
    if constexpr (std::is_void_v<R>) {
      std::apply([&](auto&... v) { std::invoke(method, target, std::move(*v)...); }, loaded);
      settle(*reply);
    } else {
      settle(*reply, std::apply([&](auto&... v) { return std::invoke(method, target, std::move(*v)...); }, loaded));
    }
    return nullptr;
  }
}


template <class T, std::size_t I>
ManagedMethod make_managed_method() {
  ManagedMethod method;
  method.signature = std::string(type_name<std::remove_cvref_t<decltype(std::get<I>(managed_methods<T>::methods))>>());
  if constexpr (hosted_on_loop<T>)
    method.loop_entry = &managed_loop_entry<T, I>;
  else
    method.entry = &managed_entry<T, I>;
  return method;
}

/// T's managed methods by name, for a manager serving a T.
template <class T>
std::map<std::string, ManagedMethod, std::less<>> managed_method_table() {
  std::map<std::string, ManagedMethod, std::less<>> table;
  constexpr std::size_t count = std::tuple_size_v<std::remove_cvref_t<decltype(managed_methods<T>::methods)>>;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (table.emplace(managed_method_name<T>(static_cast<int>(I)),
                   make_managed_method<T, I>()),
     ...);
  }(std::make_index_sequence<count>{});
  return table;
}

}  // namespace cohort::detail
