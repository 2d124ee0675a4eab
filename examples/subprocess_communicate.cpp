// Driving python3 through its standard streams with Popen.communicate: the script goes in on stdin,
// stdout and stderr come back at once (no pipe can fill up and block the child), then the exit status.
// The second half is Python's documented timeout idiom: communicate(timeout) throws, the child is
// still running; kill it and communicate again to collect what it had printed.
#include <cohort/cohort.hpp>

#include <iostream>
#include <string>

using namespace std::chrono_literals;
namespace sp = cohort::subprocess;

constexpr const char* script = R"(import sys
for n in range(1, 6):
    print(f"{n} squared is {n * n}")
print("total:", sum(n * n for n in range(1, 6)))
print("a warning on stderr", file=sys.stderr)
sys.exit(3)
)";

constexpr const char* slow_script = R"(import time
print("started", flush=True)
time.sleep(30)
print("never printed")
)";

int main(int argc, char** argv) {
  cohort::init(argc, argv);

  sp::Popen python({"python3", "-"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
  const auto [out, err] = python.communicate(script, 30s);
  std::cout << "python3 printed:\n" << out;
  std::cout << "on stderr: " << err;
  std::cout << "exit status: " << *python.returncode() << '\n';

  sp::Popen slow({"python3", "-"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
  try {
    slow.communicate(slow_script, 2s);
    std::cout << "the slow script finished?\n";
  } catch (const cohort::TimeoutError& e) {
    std::cout << "TimeoutError: " << e.what() << '\n';
    slow.kill();
    const auto [partial, ignored] = slow.communicate();
    std::cout << "after kill: returncode " << *slow.returncode() << ", output so far: " << partial;
  }
}
