// A load generator for the HTTP service: keep-alive connections, each sending one kind of request as
// fast as its answers come, for a fixed time; latencies are recorded per kind.
#pragma once

#include <cohort/cohort.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace http_service {

struct LoadKind {
  std::string label;
  /// The request target for the connection's n-th request (say, "/primes?below=100000").
  std::string (*target)(int connection, std::uint64_t n);
  int connections = 1;
};

struct KindReport {
  std::string label;
  std::vector<double> latencies_ms;  // sorted
  std::uint64_t errors = 0;
  double percentile(double q) const;
};

/// Drives the service at 127.0.0.1:`port` for `duration`, every kind at once.
cohort::task<std::vector<KindReport>> drive_load(std::uint16_t port, std::vector<LoadKind> kinds,
                                                 std::chrono::milliseconds duration);

/// One GET, on a connection of its own: the status and the body.
cohort::task<std::pair<int, std::string>> http_get(std::uint16_t port, std::string target);

}  // namespace http_service
