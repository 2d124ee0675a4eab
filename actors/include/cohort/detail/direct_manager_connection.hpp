// A thread's own connection to a manager, for its blocking proxy calls: the calling thread writes the
// request and reads the answer itself, as a thread of a Python client does, so a call costs no
// hand-over to a loop thread on the way out or back. Only the thread it was opened for uses it.
//
// Over a Unix-domain socket the connection then moves to shared memory: the server hands over a Pipe's
// end, and a call is a message in each direction through its rings, which a waiting side sees without
// a system call or a wake-up while it polls. A manager served over TCP listens on a Unix-domain socket
// too, which only its own machine reaches: a client there connects to that one and gets a lane; a
// client on another machine stays on TCP.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cohort/address.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/frame_buffer.hpp"

namespace cohort {
class Connection;
}  // namespace cohort

namespace cohort::detail {

class ActorMessage;

class DirectManagerConnection {
 public:
  /// Connects to the manager at `address` and authenticates with `authkey` on this thread, within
  /// `timeout`; throws what ManagerConnection::async_open throws. `same_machine`: the Unix-domain socket
  /// the server named for clients on its machine (null if none), tried first. A connection over a
  /// Unix-domain socket moves to shared memory.
  static std::unique_ptr<DirectManagerConnection> open(const Address& address, const Address* same_machine,
                                                       const std::string& authkey, Clock::duration timeout);
  /// Closes this process's descriptors; the connection ends unless a forked child holds a copy.
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
  /// Asks the server for a shared-memory lane and takes it; the socket is closed then.
  void move_to_lane(Clock::duration timeout);
  /// One call's round trip through the lane: the answer's bytes.
  std::string call_through_lane(const std::string& request);
  [[noreturn]] void gone(const std::string& why);
  /// The next frame's bytes; ActorDeadError (through gone) if the connection ends first.
  std::string read_frame();
  /// Reads what has arrived behind what is buffered, waiting for at least a byte.
  void read_more(bool mid_frame);

  int fd_;                            // the socket; -1 once the calls go through the lane
  std::unique_ptr<Connection> lane_;  // the shared-memory lane, once the server handed it over
  pid_t owner_;
  Address address_;
  std::uint64_t next_id_ = 0;
  std::string broken_;  // why it is gone, once it is
  FrameBuffer in_;  // what was read from the socket and not yet taken
};

}  // namespace cohort::detail
