// A thread's own connection to a manager, for its blocking proxy calls: the calling thread writes the
// request and reads the answer itself, as a thread of a Python client does, so a call costs the two
// wake-ups of the round trip and no hand-over to a loop thread on the way out or back. Only the thread
// it was opened for uses it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cohort/address.hpp"
#include "cohort/detail/clock.hpp"

namespace cohort::detail {

class ActorMessage;

class DirectManagerConnection {
 public:
  /// Connects to `address` and authenticates with `authkey` on this thread, within `timeout`; throws
  /// what ManagerConnection::async_open throws.
  static std::unique_ptr<DirectManagerConnection> open(const Address& address, const std::string& authkey,
                                                       Clock::duration timeout);
  /// Closes this process's descriptor; the connection ends unless a forked child holds a copy.
  ~DirectManagerConnection();
  DirectManagerConnection(const DirectManagerConnection&) = delete;
  DirectManagerConnection& operator=(const DirectManagerConnection&) = delete;

  /// Sends `message`, a proxy's call of `object`, waits for the answer and settles the message with it.
  /// Once the connection is gone, the message fails with ActorDeadError.
  void call(const std::string& object, ActorMessage& message);
  /// Ends the connection for both sides, so that a call waiting on it fails (from any thread; a
  /// forked child's copy leaves its parent's connection alone).
  void shut_down() noexcept;

 private:
  DirectManagerConnection(int fd, Address address) noexcept;
  [[noreturn]] void gone(const std::string& why);

  int fd_;
  pid_t owner_;
  Address address_;
  std::uint64_t next_id_ = 0;
  std::string broken_;  // why it is gone, once it is
};

}  // namespace cohort::detail
