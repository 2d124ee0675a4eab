// `ps aux | grep PATTERN` as two processes joined by a pipe (Python: Popen(..., stdin=p1.stdout)).
//
// So that there is always something to find, and only that, the example first starts a marker process,
// `sleep 42.<this pid>`, and looks for it. The pattern is written "[s]leep 42.<pid>": it matches the
// marker's command line but not grep's own, which contains the brackets.
#include <cohort/cohort.hpp>

#include <unistd.h>

#include <iostream>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
namespace sp = cohort::subprocess;

int main(int argc, char** argv) {
  cohort::init(argc, argv);

  const std::string seconds = "42." + std::to_string(::getpid());
  sp::Popen marker({"sleep", seconds});
  std::cout << "marker: sleep " << seconds << " running as pid " << marker.pid() << '\n';

  // ps writes into a pipe; stdout_pipe() hands its read end to grep and closes this process's copy,
  // so ps would get SIGPIPE if grep ended first (as after `p1.stdout.close()` in Python).
  sp::Popen ps({"ps", "aux"}, {.stdout_ = sp::PIPE});
  sp::Popen grep({"grep", "[s]leep " + seconds}, {.stdin_ = ps.stdout_pipe(), .stdout_ = sp::PIPE});

  const auto [matched, errors] = grep.communicate({}, 10s);
  const int ps_status = ps.wait(10s);
  const int grep_status = *grep.returncode();

  int lines = 0;
  bool marker_found = false;
  std::istringstream in(matched);
  for (std::string line; std::getline(in, line); ++lines) {
    std::cout << "matched: " << line << '\n';
    // ps aux: USER PID ...
    std::istringstream fields(line);
    std::string user;
    int pid = 0;
    fields >> user >> pid;
    if (pid == marker.pid()) marker_found = true;
  }
  std::cout << "pipeline: ps exited " << ps_status << ", grep exited " << grep_status << ", " << lines
            << " line(s) matched\n";
  std::cout << "marker found by pid: " << (marker_found ? "yes" : "no") << '\n';

  marker.terminate();
  std::cout << "marker ended with " << marker.wait(10s) << " (-15: SIGTERM)\n";
  return marker_found && ps_status == 0 && grep_status == 0 ? 0 : 1;
}
