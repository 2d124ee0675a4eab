// A redis-server of a test's own: on a free loopback port, in a temporary directory, stopped (and the
// directory removed) when the object goes, whether the test passed or not. Without persistence unless
// asked; with it, every write is in the append-only file before Redis answers, so a restart keeps all
// that any client was told.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace cohort_test {

class RedisServer {
 public:
  enum class Persistence { none, append_only };

  explicit RedisServer(Persistence persistence = Persistence::none)
      : directory_(make_directory()), port_(free_port()), persistence_(persistence) {
    start();
  }
  ~RedisServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  /// Runs redis-cli with `arguments` against this server; its output.
  std::string cli(const std::string& arguments) const {
    const auto command = "redis-cli -p " + std::to_string(port_) + " " + arguments + " 2>&1";
    std::string output;
    if (FILE* pipe = ::popen(command.c_str(), "r")) {
      std::array<char, 4096> buffer;
      while (const auto size = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), size);
      ::pclose(pipe);
    }
    return output;
  }

  /// Kills the server (a crash: it saves nothing on the way out) and starts it again on the same port and
  /// directory.
  void restart() {
    stop(SIGKILL);
    start();
  }

  void stop(int signal = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

 private:
  static std::string make_directory() {
    std::string path = (std::filesystem::temp_directory_path() / "cohort-redis-XXXXXX").string();
    if (!::mkdtemp(path.data())) throw std::runtime_error("mkdtemp failed");
    return path;
  }

  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      ::close(fd);
      throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
  }

  void start() {
    const bool append_only = persistence_ == Persistence::append_only;
    std::vector<std::string> arguments{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                       "--dir", directory_, "--save", "", "--appendonly", append_only ? "yes" : "no",
                                       "--appendfsync", "always", "--logfile", directory_ + "/redis.log"};
    std::vector<char*> argv;
    for (auto& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot start redis-server (is it installed?)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (cli("PING").find("PONG") == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("redis-server did not answer");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  std::string directory_;
  int port_;
  Persistence persistence_;
  pid_t pid_ = -1;
};

}  // namespace cohort_test
