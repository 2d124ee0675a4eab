// init: recorded command line and inherited settings of this process; the worker entry; the fork server.
#include "cohort/init.hpp"

#include <atomic>
#include <cstdlib>

#include "cohort/log.hpp"
#include "process/process_internal.hpp"

namespace cohort {
namespace {

std::vector<std::string>& arguments() {
  static std::vector<std::string> recorded;
  return recorded;
}

std::atomic<bool> initialized{false};

}  // namespace

namespace detail {

bool init_was_called() noexcept { return initialized.load(); }

}  // namespace detail

void init(int argc, char** argv) {
  if (initialized.exchange(true)) return;
  arguments().assign(argv, argv + argc);
  detail::apply_inherited_log_level();
  if (const char* role = std::getenv(detail::worker_variable)) {
    // Not inherited by what the worker starts: its children are workers only if it says so.
    std::string copy = role;
    ::unsetenv(detail::worker_variable);
    detail::run_worker(copy);
  }
  detail::start_fork_server();
}

const std::vector<std::string>& program_arguments() { return arguments(); }

}  // namespace cohort
