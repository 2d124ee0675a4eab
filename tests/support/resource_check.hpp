// What a test of processes checks it leaves behind: descriptors, shared-memory mappings, zombies.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cohort_test {

inline std::set<std::string> entries_in(const std::string& directory) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) names.insert(entry.path().filename());
  return names;
}

/// The shared-memory regions this process maps (memfd regions and /dev/shm files), one line each.
inline std::multiset<std::string> shared_memory_mappings() {
  std::multiset<std::string> found;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find("/memfd:") != std::string::npos || line.find("/dev/shm/") != std::string::npos)
      found.insert(line.substr(line.find('/')));
  return found;
}

/// This process's children that have ended but were not reaped.
inline std::vector<int> zombie_children() {
  std::vector<int> zombies;
  const std::string me = std::to_string(::getpid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse from its closing parenthesis.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string state;
    std::string ppid;
    rest >> state >> ppid;
    if (ppid == me && state == "Z") zombies.push_back(std::stoi(name));
  }
  return zombies;
}

/// Gone for good: ended and reaped (kill(pid, 0) still succeeds on a zombie).
inline bool process_gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

inline bool eventually_gone(int pid, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!process_gone(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// Ends the calling process the way a worker's task may: 0, SIGKILL; 1, abort(); 2, exit(3).
[[noreturn]] inline void end_this_process(int how) {
  if (how == 0) ::raise(SIGKILL);
  if (how == 1) std::abort();
#if defined(__SANITIZE_ADDRESS__)
  // LeakSanitizer runs at exit(); in a child forked from a multithreaded parent it sees the parent's
  // threads as running and reports their memory as leaked, which would change the exit code.
  std::_Exit(3);
#else
  std::exit(3);
#endif
}

/// A test that must leave this process's descriptors, its shared-memory mappings and its children as it
/// found them: no leaked descriptor or segment, no zombie.
class LeavesNothingBehind : public testing::Test {
 protected:
  void SetUp() override {
    fds_ = entries_in("/proc/self/fd");
    shm_ = shared_memory_mappings();
  }
  void TearDown() override {
    EXPECT_EQ(entries_in("/proc/self/fd"), fds_);
    EXPECT_EQ(shared_memory_mappings(), shm_);
    EXPECT_TRUE(zombie_children().empty());
  }

 private:
  std::set<std::string> fds_;
  std::multiset<std::string> shm_;
};

}  // namespace cohort_test
