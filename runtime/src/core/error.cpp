// Out-of-line constructors of the errors that carry more than a message.
#include "cohort/error.hpp"

#include <utility>

namespace cohort {
namespace {

std::string describe_command(const std::vector<std::string>& cmd) {
  std::string joined;
  for (const auto& part : cmd) {
    if (!joined.empty()) joined += ' ';
    joined += part;
  }
  return joined;
}

}  // namespace

CalledProcessError::CalledProcessError(int returncode_, std::vector<std::string> cmd_, std::string output_,
                                       std::string stderr_output_)
    : Error("Command '" + describe_command(cmd_) + "' " +
            (returncode_ < 0 ? "died with signal " + std::to_string(-returncode_)
                             : "returned non-zero exit status " + std::to_string(returncode_)) +
            "."),
      returncode(returncode_),
      cmd(std::move(cmd_)),
      output(std::move(output_)),
      stderr_output(std::move(stderr_output_)) {}

RemoteError::RemoteError(std::string remote_type, const std::string& message, std::string traceback)
    : Error(message), remote_type_(std::move(remote_type)), traceback_(std::move(traceback)) {}

}  // namespace cohort
