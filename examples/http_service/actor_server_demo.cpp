// The actor server under load: the HTTP service of service.hpp runs on one event loop while a load
// generator on another drives it for a few seconds with cached requests (answered by the cache actor)
// and CPU-heavy ones (new prime counts, offloaded to a process pool); then the table of what happened.
//
//   actor_server_demo [--seconds S]
#include "load.hpp"
#include "service.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <future>
#include <iostream>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

constexpr int cached_connections = 12;
constexpr int cpu_connections = 4;
constexpr long cached_below = 100'000;

std::string cached_target(int, std::uint64_t) { return "/primes?below=" + std::to_string(cached_below); }

/// A count no request asked for before: every one is a job for the process pool.
std::string cpu_target(int connection, std::uint64_t n) {
  return "/primes?below=" + std::to_string(200'000 + n * cpu_connections + static_cast<std::uint64_t>(connection));
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  double seconds = 3;
  if (argc == 3 && std::string(argv[1]) == "--seconds") seconds = std::stod(argv[2]);
  constexpr std::size_t workers = 2;
  cohort::ProcessPoolExecutor pool(workers);

  // The service on a loop thread of its own; the port comes back once it listens.
  cohort::Runtime server_loop;
  std::promise<http_service::Service*> started;
  std::thread server_thread([&] {
    server_loop.run([&]() -> cohort::task<void> {
      http_service::Service service(pool, {});
      started.set_value(&service);
      co_await service.serve();
    }());
  });
  http_service::Service& service = *started.get_future().get();
  const std::uint16_t port = service.port();
  std::cout << "HTTP service of actors on http://127.0.0.1:" << port << ": a cache actor, a stats actor, /primes "
            << "offloaded to a process pool of " << workers << "\n";
  std::cout << "load: " << cached_connections << " connections asking a cached count, " << cpu_connections
            << " asking new counts (CPU-heavy), for " << seconds << " s\n\n";

  cohort::Runtime client_loop;
  const auto duration = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  auto [reports, stats_body] = client_loop.run([&]() -> cohort::task<std::pair<std::vector<http_service::KindReport>, std::string>> {
    // Warm the cache, so that the cached kind is cached from its first request.
    co_await http_service::http_get(port, cached_target(0, 0));
    std::vector<http_service::LoadKind> kinds(2);
    kinds[0] = {.label = std::string("cached  (cache actor)"), .target = cached_target, .connections = cached_connections};
    kinds[1] = {.label = std::string("CPU-heavy (process pool)"), .target = cpu_target, .connections = cpu_connections};
    auto load = co_await http_service::drive_load(port, std::move(kinds), duration);
    auto [status, body] = co_await http_service::http_get(port, "/stats");
    co_return std::pair(std::move(load), std::move(body));
  }());
  service.close();
  server_thread.join();

  std::cout << "| requests                 |  count |  req/s | p50 ms | p99 ms | errors |\n"
            << "|--------------------------|-------:|-------:|-------:|-------:|-------:|\n";
  for (const auto& report : reports)
    std::cout << fmt::format("| {:<24} | {:>6} | {:>6.0f} | {:>6.2f} | {:>6.2f} | {:>6} |\n", report.label,
                             report.latencies_ms.size(), static_cast<double>(report.latencies_ms.size()) / seconds,
                             report.percentile(0.50), report.percentile(0.99), report.errors);
  const auto stats = boost::json::parse(stats_body).as_object();
  const auto& lag = stats.at("loop_lag_ms").as_object();
  std::cout << fmt::format("\nloop lag of the service (a 10 ms timer, {} samples): p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n",
                           lag.at("samples").to_number<std::int64_t>(), lag.at("p50").to_number<double>(),
                           lag.at("p99").to_number<double>(), lag.at("max").to_number<double>());
  std::cout << fmt::format("CPU jobs run in the process pool: {} ({} worker processes), {} requests served in all\n",
                           stats.at("cpu_jobs").to_number<std::int64_t>(), workers,
                           stats.at("requests").to_number<std::int64_t>());
}
