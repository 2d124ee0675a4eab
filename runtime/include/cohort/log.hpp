// Logging through spdlog (Python: multiprocessing.log_to_stderr / get_logger). Every line names the
// process, its pid and the thread, so output from workers interleaved on one stderr stays readable.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace cohort {

enum class LogLevel { trace, debug, info, warning, error, critical, off };

/// The logger cohort writes to ("cohort"). Until log_to_stderr is called it reports warnings and errors.
std::shared_ptr<spdlog::logger> get_logger();

/// Sets the level of cohort's logger and returns it; lines look like
/// `[12:00:01.123] [INFO/MainProcess 4242 tid 4243] message`. Processes started afterwards inherit the
/// level (through the COHORT_LOG_LEVEL environment variable) and write to the same stderr.
std::shared_ptr<spdlog::logger> log_to_stderr(LogLevel level = LogLevel::info);

/// The name this process shows in log lines and in current_process(): "MainProcess" in the parent.
std::string process_name();

namespace detail {

void set_process_name(std::string name);
/// In a child right after fork(), while it has one thread.
void set_process_name_after_fork(std::string name);
/// Reads COHORT_LOG_LEVEL (trace, debug, info, warning, error, critical, off) if a parent set it.
void apply_inherited_log_level();
/// The logger's level as a number a child process can be given, and the inverse.
int log_level_number();
void set_log_level_number(int level);

void log_debug(std::string_view message) noexcept;
void log_warning(std::string_view message) noexcept;
void log_error(std::string_view message) noexcept;

}  // namespace detail
}  // namespace cohort
