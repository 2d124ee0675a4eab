// init: recorded command line and inherited settings of this process; the worker entry; the fork server.
#include "cohort/init.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>

#include "cohort/detail/command_line_role.hpp"
#include "cohort/log.hpp"
#include "process/process_internal.hpp"

namespace cohort {
namespace {

std::vector<std::string>& arguments() {
  static std::vector<std::string> recorded;
  return recorded;
}

std::atomic<bool> initialized{false};

struct Roles {
  std::mutex mutex;
  std::vector<std::pair<const char*, detail::CommandLineRole>> by_flag;
};

Roles& roles() {
  static auto* registered = new Roles;  // registered from static initializers of any order; never freed
  return *registered;
}

/// The role the command line asks for, if one is registered.
detail::CommandLineRole requested_role(int argc, char** argv) {
  auto& registered = roles();
  std::lock_guard lock(registered.mutex);
  for (int i = 1; i < argc; ++i)
    for (const auto& [flag, role] : registered.by_flag)
      if (std::strcmp(argv[i], flag) == 0) return role;
  return nullptr;
}

}  // namespace

namespace detail {

bool init_was_called() noexcept { return initialized.load(); }

bool register_command_line_role(const char* flag, CommandLineRole role) noexcept {
  auto& registered = roles();
  std::lock_guard lock(registered.mutex);
  for (const auto& [known, _] : registered.by_flag)
    if (std::strcmp(known, flag) == 0) return true;
  try {
    registered.by_flag.emplace_back(flag, role);
  } catch (...) {
    return false;
  }
  return true;
}

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
  if (const auto role = requested_role(argc, argv)) {
    try {
      role(arguments());
    } catch (const std::exception& error) {
      detail::log_error(fmt::format("{}: {}", argv[0], error.what()));
      std::exit(1);
    }
    std::exit(0);
  }
}

const std::vector<std::string>& program_arguments() { return arguments(); }

}  // namespace cohort
