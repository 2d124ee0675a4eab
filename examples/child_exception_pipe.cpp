// A child's exception reaches the parent with its type, message and stack trace, sent through a Pipe
// (Python: a Process subclass that catches, then sends (e, traceback.format_exc()) to the parent).
#include <cohort/cohort.hpp>

#include <boost/stacktrace.hpp>

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>

struct ChildFailure {
  std::string type;
  std::string message;
  std::string traceback;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(type, message, traceback);
  }
};

[[gnu::noinline]] double risky_division(int numerator, int denominator) {
  if (denominator == 0) throw std::domain_error("division of " + std::to_string(numerator) + " by zero");
  return static_cast<double>(numerator) / denominator;
}

void worker(cohort::Connection& report) {
  std::string trace;
  try {
    trace = boost::stacktrace::to_string(boost::stacktrace::stacktrace());
    risky_division(7, 0);
    report.send(std::optional<ChildFailure>());
  } catch (const std::domain_error& e) {
    report.send(std::optional<ChildFailure>(ChildFailure{"std::domain_error", e.what(), trace}));
    throw;  // and the child still fails, with exit code 1
  }
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  auto [reader, writer] = cohort::Pipe(false);
  cohort::Process p(worker, std::move(writer));
  p.start();
  const auto failure = reader.recv<std::optional<ChildFailure>>();
  p.join();
  if (!failure) {
    std::printf("the child did not fail\n");
    return 1;
  }
  std::printf("child raised %s: %s\n", failure->type.c_str(), failure->message.c_str());
  std::istringstream lines(failure->traceback);
  int frames = 0;
  for (std::string line; std::getline(lines, line);) ++frames;
  std::printf("child stack trace: %d frames, starting with:\n%s", frames,
              failure->traceback.substr(0, failure->traceback.find('\n') + 1).c_str());
  std::printf("child exit code: %d\n", *p.exitcode());
}
