// init: the first statement of every cohort program.
#pragma once

#include <string>
#include <vector>

namespace cohort {

/// Call first in main(), while the program is still single-threaded. Records the command line (the
/// spawn start method re-executes it), applies a log level inherited from a parent process, and, in a
/// process started as a cohort worker, runs that worker and exits without returning.
void init(int argc, char** argv);

/// The command line init() recorded; empty if init was not called.
const std::vector<std::string>& program_arguments();

}  // namespace cohort
