// A failure on its way between processes: what the remote-call protocol sends back instead of a result.
#pragma once

#include <exception>
#include <string>

namespace cohort::detail {

struct RemoteFailure {
  std::string type;       // the exception's type, demangled ("std::invalid_argument")
  std::string message;    // its what()
  std::string traceback;  // the stack where it was caught in the remote process, one frame per line

  template <class Archive>
  void serialize(Archive& archive) {
    archive(type, message, traceback);
  }
};

/// Describes `error` (what a catch block holds) with the stack trace of the calling thread. An exception
/// that already came from another process keeps its original type name and trace.
RemoteFailure describe_failure(const std::exception_ptr& error);

/// Throws the failure as its original type when that type is known here (standard, cohort's own or
/// registered), otherwise as RemoteError; either way with the remote trace attached.
[[noreturn]] void rethrow_failure(const RemoteFailure& failure);

}  // namespace cohort::detail
