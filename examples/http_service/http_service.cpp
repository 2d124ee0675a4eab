// The HTTP/1.1 JSON service of service.hpp as a program: serves on loopback until SIGINT or SIGTERM,
// then stops gracefully (no new connections, requests in flight answered) and exits with 0.
//
//   http_service [--port N] [--workers N] [--threads N] [--port-file PATH]
//
// --port 0 (the default) picks a free port; the port is printed, and written to PATH when given.
#include "service.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

namespace {

struct Arguments {
  std::uint16_t port = 0;
  std::size_t workers = 2;
  std::size_t threads = 1;
  std::string port_file;
};

[[noreturn]] void usage(std::string_view why) {
  std::cerr << "http_service: " << why << "\nusage: http_service [--port N] [--workers N] [--threads N] [--port-file PATH]\n";
  std::exit(2);
}

Arguments parse(int argc, char** argv) {
  Arguments arguments;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
    const std::string value = argv[++i];
    try {
      if (flag == "--port")
        arguments.port = static_cast<std::uint16_t>(std::stoul(value));
      else if (flag == "--workers")
        arguments.workers = std::stoul(value);
      else if (flag == "--threads")
        arguments.threads = std::stoul(value);
      else if (flag == "--port-file")
        arguments.port_file = value;
      else
        usage("unknown option " + std::string(flag));
    } catch (const std::logic_error&) {
      usage("not a number: " + value);
    }
  }
  return arguments;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  const Arguments arguments = parse(argc, argv);
  cohort::ProcessPoolExecutor pool(arguments.workers);
  cohort::Runtime runtime(arguments.threads);
  runtime.run([&]() -> cohort::task<void> {
    http_service::Service service(pool, {.port = arguments.port});
    std::cout << "listening on http://127.0.0.1:" << service.port() << " (" << arguments.workers
              << " worker processes for /primes)" << std::endl;
    if (!arguments.port_file.empty()) {
      // Written whole under another name, then renamed: a reader never sees half a number.
      const std::string partial = arguments.port_file + ".partial";
      std::ofstream(partial) << service.port() << "\n";
      std::rename(partial.c_str(), arguments.port_file.c_str());
    }
    co_await service.serve();
    std::cout << "stopped gracefully after " << service.server().accepted_connections() << " connections" << std::endl;
  }());
}
