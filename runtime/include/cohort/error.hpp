// The exception hierarchy: every error cohort raises derives from cohort::Error, with Python's names.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace cohort {

/// Base of every error cohort throws (Python: the family of multiprocessing / concurrent.futures errors).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A wait ran out of time (`concurrent.futures.TimeoutError`, `asyncio.TimeoutError`).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// The awaited work was cancelled (`asyncio.CancelledError`, `concurrent.futures.CancelledError`).
class CancelledError : public Error {
 public:
  using Error::Error;
};

/// A result was set twice, or read before it exists (`asyncio.InvalidStateError`).
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

/// The `Promise` behind a future was destroyed without a result (`std::future_errc::broken_promise`).
class BrokenPromise : public Error {
 public:
  using Error::Error;
};

/// An executor can no longer run work (`concurrent.futures.BrokenExecutor`).
class BrokenExecutor : public Error {
 public:
  using Error::Error;
};

/// A thread pool whose initializer failed (`concurrent.futures.thread.BrokenThreadPool`).
class BrokenThreadPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};

/// A process pool lost a worker (`concurrent.futures.process.BrokenProcessPool`).
class BrokenProcessPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};

/// A process could not be started or managed (`multiprocessing.ProcessError`).
class ProcessError : public Error {
 public:
  using Error::Error;
};

/// Nothing left to receive: the other end was closed (`EOFError`).
class EOFError : public Error {
 public:
  using Error::Error;
};

/// A non-blocking or timed get found the queue empty (`queue.Empty`).
class Empty : public Error {
 public:
  using Error::Error;
};

/// A non-blocking or timed put found the queue full (`queue.Full`).
class Full : public Error {
 public:
  using Error::Error;
};

/// A barrier was aborted or reset while parties waited (`threading.BrokenBarrierError`).
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

/// A peer failed the HMAC challenge (`multiprocessing.AuthenticationError`).
class AuthenticationError : public Error {
 public:
  using Error::Error;
};

/// Bytes that do not decode as the requested type: wrong type, truncated or corrupt frame.
class SerializationError : public Error {
 public:
  using Error::Error;
};

/// A message to an actor that has stopped or died; what() says which actor and why.
class ActorDeadError : public Error {
 public:
  using Error::Error;
};

/// An ask that could never be answered: the actor asked is waiting, directly or through other actors,
/// for the reply of the method that asks. what() names the actors of the cycle.
class DeadlockError : public Error {
 public:
  using Error::Error;
};

/// A checked subprocess exited with a non-zero status (`subprocess.CalledProcessError`).
class CalledProcessError : public Error {
 public:
  CalledProcessError(int returncode, std::vector<std::string> cmd, std::string output = {},
                     std::string stderr_output = {});

  int returncode;
  std::vector<std::string> cmd;
  std::string output;
  std::string stderr_output;
};

/// An exception raised in another process whose type is not known here.
class RemoteError : public Error {
 public:
  RemoteError(std::string remote_type, const std::string& message, std::string traceback);

  /// The type name of the original exception, as the remote process spelled it.
  const std::string& remote_type() const noexcept { return remote_type_; }
  /// The remote stack trace, one frame per line.
  const std::string& traceback() const noexcept { return traceback_; }

 private:
  std::string remote_type_;
  std::string traceback_;
};

}  // namespace cohort
