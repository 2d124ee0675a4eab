// Exceptions that cross processes: a pool task, a process actor's method or a manager call that throws
// in another process rethrows here. Standard exception types (std::invalid_argument, std::out_of_range,
// std::runtime_error, ...), cohort's own errors and types registered with register_exception<E>() keep
// their type; anything else arrives as RemoteError, carrying the remote type name and message. Every
// such exception carries the remote stack trace: RemoteError::traceback(), or remote_traceback(e).
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace cohort {

/// The stack trace a rethrown exception brought from the process that threw it (none for a local one).
class RemoteTraceback {
 public:
  RemoteTraceback(std::string remote_type, std::string traceback)
      : remote_type_(std::move(remote_type)), traceback_(std::move(traceback)) {}
  virtual ~RemoteTraceback() = default;
  /// The exception's type as the remote process named it.
  const std::string& remote_type() const noexcept { return remote_type_; }
  const std::string& traceback() const noexcept { return traceback_; }

 private:
  std::string remote_type_;
  std::string traceback_;
};

/// The remote stack trace of `error`, if it came from another process.
std::optional<std::string> remote_traceback(const std::exception& error);

namespace detail {
/// Builds the exception to throw for a remote one of a known type, from its message and stack trace.
using ExceptionFactory = std::exception_ptr (*)(const std::string& type, const std::string& message,
                                                const std::string& traceback);
void register_exception_factory(const std::type_info& type, ExceptionFactory make);

template <class E>
std::exception_ptr make_remote_exception(const std::string& type, const std::string& message,
                                         const std::string& traceback) {
  if constexpr (std::is_final_v<E>) {
    (void)type;
    (void)traceback;  // a final type cannot carry the trace beside it
    return std::make_exception_ptr(E(message));
  } else {
    // Catchable as E; remote_traceback() finds the trace through the second base.
    struct Remote final : E, RemoteTraceback {
      Remote(const std::string& type, const std::string& message, const std::string& traceback)
          : E(message), RemoteTraceback(type, traceback) {}
    };
    return std::make_exception_ptr(Remote(type, message, traceback));
  }
}
}  // namespace detail

/// Makes an exception of type E thrown in another process arrive here as an E built from its what()
/// message, instead of as RemoteError. Register it in the process that receives it (workers of the same
/// program know it too once main() registered it before starting them). E needs a constructor that
/// takes the message as a std::string.
template <class E>
void register_exception() {
  static_assert(std::is_base_of_v<std::exception, E>, "register_exception: E must derive from std::exception");
  static_assert(std::is_constructible_v<E, const std::string&>,
                "register_exception: E needs a constructor taking the message as a std::string");
  detail::register_exception_factory(typeid(E), &detail::make_remote_exception<E>);
}

}  // namespace cohort
