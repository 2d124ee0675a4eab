// What a process actor's parent and worker say to each other: the one remote-call protocol with an
// object at its end. A request names the entry that decodes it (by module-relative address, as every
// call frame does), the method (a member function pointer, its code address made module-relative), the
// arguments (cereal); the worker queues it on the actor it hosts, whose reply travels back as the
// result's codec frame or as a RemoteFailure (type, message, stack trace).
#pragma once

#include <cereal/types/string.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/type_name.hpp"

namespace cohort::detail {

enum class ProcessActorKind : std::uint8_t { ask = 0, tell = 1, stop = 2 };

struct ProcessActorRequest {
  std::uint64_t id = 0;  // answered by the reply of the same id
  ProcessActorKind kind = ProcessActorKind::ask;
  FunctionAddress entry;
  std::string method;
  std::string arguments;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, kind, entry, method, arguments);
  }
};

struct ProcessActorReply {
  std::uint64_t id = 0;
  bool ok = true;
  std::string result;     // the value's codec frame (empty for void)
  RemoteFailure failure;  // when !ok

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, ok, result, failure);
  }
};

/// The reply of call `id` that failed with `error` (its type, message and stack trace).
ProcessActorReply failure_reply(std::uint64_t id, const std::exception_ptr& error);

/// The worker's side of a request: decodes the method and the arguments and queues the call on
/// `host`, the actor it hosts. `reply` gets the result's codec frame or the error.
using ProcessActorEntry = void (*)(ActorCore& host, std::string_view method, std::string_view arguments,
                                   std::shared_ptr<FutureState<std::string>> reply);

/// Methods that can be named in another process: member function pointers (their code address travels
/// module-relative; a virtual one travels as its vtable slot) and stateless callables.
template <class M>
inline constexpr bool is_remote_method_v = std::is_member_function_pointer_v<M> || is_stateless_callable_v<M>;

/// The Itanium C++ ABI's member function pointer (GCC and Clang on every Linux target cohort builds on).
struct MemberPointerBits {
  std::uintptr_t pointer;  // the function's address, or 1 + its vtable offset when virtual
  std::ptrdiff_t adjustment;
};

std::string encode_member_pointer(const MemberPointerBits& bits);
MemberPointerBits decode_member_pointer(std::string_view bytes);

template <class M>
std::string encode_method(const M& method) {
  if constexpr (std::is_member_function_pointer_v<M>) {
    static_assert(sizeof(M) == sizeof(MemberPointerBits), "cohort: unexpected member function pointer layout");
    MemberPointerBits bits;
    std::memcpy(&bits, &method, sizeof bits);
    return encode_member_pointer(bits);
  } else {
    return {};
  }
}

template <class M>
M decode_method(std::string_view bytes) {
  if constexpr (std::is_member_function_pointer_v<M>) {
    const MemberPointerBits bits = decode_member_pointer(bytes);
    M method;
    std::memcpy(&method, &bits, sizeof method);
    return method;
  } else {
    return M{};
  }
}

/// The reply of an ask settled on the hosted actor, sent on as the value's codec frame.
template <class R>
void forward_reply(const std::shared_ptr<FutureState<R>>& local, const std::shared_ptr<FutureState<std::string>>& reply) {
  local->on_done([local, reply] {
    if (const auto error = local->error()) {
      reply->try_set_exception(error);
      return;
    }
    try {
      if constexpr (std::is_void_v<R>)
        reply->try_set_value(std::string());
      else
        reply->try_set_value(dumps(local->value()));
    } catch (...) {
      reply->try_set_exception(std::current_exception());
    }
  });
}

}  // namespace cohort::detail
