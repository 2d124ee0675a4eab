// Asio readiness waits on a descriptor that something else owns (a Connection's socket, a child's pidfd).
// Private to the library's Asio translation units.
#pragma once

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include "cohort/error.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

class BorrowedDescriptor {
 public:
  /// `what` names the waiting operation in errors ("Connection.recv").
  BorrowedDescriptor(const boost::asio::any_io_executor& executor, int fd, const char* what)
      : descriptor_(executor, fd), what_(what) {}
  ~BorrowedDescriptor() { descriptor_.release(); }
  BorrowedDescriptor(const BorrowedDescriptor&) = delete;
  BorrowedDescriptor& operator=(const BorrowedDescriptor&) = delete;

  task<void> wait(boost::asio::posix::descriptor_base::wait_type type) {
    boost::system::error_code ec;
    co_await descriptor_.async_wait(type, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (ec == boost::asio::error::operation_aborted) throw CancelledError(fmt::format("{}: cancelled while waiting", what_));
    if (ec) throw Error(fmt::format("{}: waiting for the descriptor failed: {}", what_, ec.message()));
  }

 private:
  boost::asio::posix::stream_descriptor descriptor_;
  const char* what_;
};

}  // namespace cohort::detail
