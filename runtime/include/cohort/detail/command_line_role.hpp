// Roles a program can be started in by a flag on its command line, which init() recognizes: a layer
// above the runtime (the Redis worker) registers its flag, and any program that links it can be
// started in that role.
#pragma once

#include <string>
#include <vector>

namespace cohort::detail {

/// Serves the role; gets the whole command line. Returning ends the process with exit code 0; an
/// exception is logged and ends it with 1.
using CommandLineRole = void (*)(const std::vector<std::string>& arguments);

/// init() runs `role` instead of returning when the command line holds `flag` (as `flag VALUE`). The
/// flag's text must outlive the program (a literal). Registering the same flag again changes nothing.
bool register_command_line_role(const char* flag, CommandLineRole role) noexcept;

}  // namespace cohort::detail
