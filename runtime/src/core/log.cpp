// cohort's spdlog logger, with a pattern flag for the process name.
#include "cohort/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdlib>
#include <mutex>
#include <new>

namespace cohort {
namespace {

std::mutex name_mutex;
std::string& name_storage() {
  static std::string name = "MainProcess";
  return name;
}

constexpr std::array<std::pair<std::string_view, LogLevel>, 7> level_names{{
    {"trace", LogLevel::trace},
    {"debug", LogLevel::debug},
    {"info", LogLevel::info},
    {"warning", LogLevel::warning},
    {"error", LogLevel::error},
    {"critical", LogLevel::critical},
    {"off", LogLevel::off},
}};

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warning: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::critical: return spdlog::level::critical;
    case LogLevel::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

class ProcessNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto name = process_name();
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<ProcessNameFlag>(); }
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("cohort", std::move(sink));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ProcessNameFlag>('N').set_pattern("[%H:%M:%S.%e] [%^%l%$/%N %P tid %t] %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::warn);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> get_logger() {
  static const auto logger = make_logger();
  return logger;
}

std::shared_ptr<spdlog::logger> log_to_stderr(LogLevel level) {
  auto logger = get_logger();
  logger->set_level(to_spdlog(level));
  for (const auto& [name, value] : level_names) {
    if (value == level) setenv("COHORT_LOG_LEVEL", std::string(name).c_str(), 1);
  }
  return logger;
}

std::string process_name() {
  std::lock_guard lock(name_mutex);
  return name_storage();
}

namespace detail {

void set_process_name(std::string name) {
  std::lock_guard lock(name_mutex);
  name_storage() = std::move(name);
}

void set_process_name_after_fork(std::string name) {
  // Only the forking thread lives on in the child: a lock another thread held at the fork would stay
  // locked forever, so the child starts with a fresh one.
  new (&name_mutex) std::mutex;
  name_storage() = std::move(name);
}

void apply_inherited_log_level() {
  const char* inherited = std::getenv("COHORT_LOG_LEVEL");
  if (inherited == nullptr) return;
  for (const auto& [name, value] : level_names) {
    if (name == inherited) get_logger()->set_level(to_spdlog(value));
  }
}

int log_level_number() { return static_cast<int>(get_logger()->level()); }

void set_log_level_number(int level) {
  if (level >= spdlog::level::trace && level <= spdlog::level::off)
    get_logger()->set_level(static_cast<spdlog::level::level_enum>(level));
}

void log_debug(std::string_view message) noexcept {
  try {
    get_logger()->debug("{}", message);
  } catch (...) {
  }
}

void log_warning(std::string_view message) noexcept {
  try {
    get_logger()->warn("{}", message);
  } catch (...) {
  }
}

void log_error(std::string_view message) noexcept {
  try {
    get_logger()->error("{}", message);
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace cohort
