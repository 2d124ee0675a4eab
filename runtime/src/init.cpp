// init: recorded command line and inherited settings of this process.
#include "cohort/init.hpp"

#include "cohort/log.hpp"

namespace cohort {
namespace {

std::vector<std::string>& arguments() {
  static std::vector<std::string> recorded;
  return recorded;
}

}  // namespace

void init(int argc, char** argv) {
  auto& recorded = arguments();
  recorded.assign(argv, argv + argc);
  detail::apply_inherited_log_level();
}

const std::vector<std::string>& program_arguments() { return arguments(); }

}  // namespace cohort
