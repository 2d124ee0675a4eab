// An HTTP/1.1 JSON service built of actors: a cache actor, a stats actor, and a CPU-heavy endpoint whose
// work a handler offloads to a process pool while the event loop keeps serving.
//
//   GET    /primes?below=N   the number of primes below N (2 <= N <= 50,000,000): from the cache actor
//                            when asked before, else counted in the process pool and then cached
//   GET    /cache/KEY        a stored JSON value           PUT /cache/KEY  stores the body (JSON)
//   DELETE /cache/KEY        removes it
//   GET    /stats            requests by route and status, CPU jobs, loop lag, connections
#pragma once

#include <cohort/cohort.hpp>
#include <cohort/server.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace http_service {

/// The CPU-heavy job: primes below `below`, by trial division (in a pool worker).
long count_primes_below(long below);

/// Stored JSON texts by key.
class Cache {
 public:
  std::optional<std::string> get(const std::string& key) const;
  void put(std::string key, std::string json);
  bool erase(const std::string& key);
  std::size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, std::string> entries_;
};

struct LagSummary {
  std::uint64_t samples = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

/// What the service has done; one message per request, so counting costs no lock.
class Stats {
 public:
  void record(std::string route, int status);
  void cpu_job_done(double ms);
  /// How late a 10 ms timer fired on the service's loop: the time the loop was kept from serving.
  void loop_lag(std::chrono::microseconds lateness);
  /// The stats as a JSON object, with the server's connection counts added.
  std::string to_json(std::size_t active_connections, std::uint64_t accepted_connections) const;
  LagSummary lag() const;
  std::uint64_t cpu_jobs() const { return cpu_jobs_; }

 private:
  std::map<std::string, std::map<int, std::uint64_t>> requests_;  // route -> status -> count
  std::uint64_t cpu_jobs_ = 0;
  double cpu_ms_ = 0;
  std::vector<std::uint32_t> lag_us_;  // the last lag_window samples, as a ring
  std::size_t lag_next_ = 0;
  std::uint64_t lag_samples_ = 0;
};

struct ServiceOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t max_connections = 1024;
  std::chrono::milliseconds drain_timeout{5'000};
};

/// The service: its actors and its server, on the Runtime running the calling coroutine.
class Service {
 public:
  Service(cohort::ProcessPoolExecutor& pool, ServiceOptions options);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Serves until a graceful stop (close(), SIGINT or SIGTERM), then stops the actors.
  cohort::task<void> serve();
  void close() { server_.close(); }
  std::uint16_t port() const { return server_.port(); }
  const cohort::ActorRef<Stats>& stats() const { return stats_; }
  const cohort::Server& server() const { return server_; }

 private:
  cohort::task<void> serve_connection(cohort::Server::Socket socket);
  cohort::task<void> watch_loop_lag();

  cohort::ProcessPoolExecutor& pool_;
  cohort::ActorRef<Cache> cache_;
  cohort::ActorRef<Stats> stats_;
  cohort::Server server_;
};

}  // namespace http_service
