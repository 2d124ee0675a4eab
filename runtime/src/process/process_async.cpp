// Process::async_join: the child's pidfd (or the fork server's status socket) becomes readable when the
// child ends, so the coroutine waits for it through Asio instead of blocking its thread in waitpid.
#include <boost/asio/this_coro.hpp>

#include "loop/borrowed_descriptor.hpp"
#include "cohort/process.hpp"
#include "process/process_internal.hpp"

namespace cohort {

task<void> Process::async_join() {
  check_open("async_join");
  if (!child_) throw ProcessError("Process.async_join: can only join a started process");
  const auto child = child_;  // the object may be closed meanwhile; the child outlives this wait
  while (!child->poll()) {
    detail::BorrowedDescriptor watch(co_await boost::asio::this_coro::executor, child->watch_fd(), "Process.async_join");
    co_await watch.wait(boost::asio::posix::descriptor_base::wait_read);
  }
}

}  // namespace cohort
