#include "load.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>

namespace http_service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

double KindReport::percentile(double q) const {
  if (latencies_ms.empty()) return 0;
  return latencies_ms[static_cast<std::size_t>(q * static_cast<double>(latencies_ms.size() - 1))];
}

namespace {

struct ConnectionReport {
  std::vector<double> latencies_ms;
  std::uint64_t errors = 0;
};

cohort::task<beast::tcp_stream> connect(std::uint16_t port) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
  co_return stream;
}

/// Sends one GET on `stream` and reads the answer; false if the connection failed.
cohort::task<bool> get(beast::tcp_stream& stream, beast::flat_buffer& buffer, const std::string& target,
                       http::response<http::string_body>& response) {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(true);
  boost::system::error_code ec;
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return false;
  co_await http::async_read(stream, buffer, response, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

cohort::task<ConnectionReport> run_connection(std::uint16_t port, const LoadKind& kind, int index,
                                              std::chrono::steady_clock::time_point deadline) {
  ConnectionReport report;
  auto stream = co_await connect(port);
  beast::flat_buffer buffer;
  for (std::uint64_t n = 0; std::chrono::steady_clock::now() < deadline; ++n) {
    http::response<http::string_body> response;
    const auto start = std::chrono::steady_clock::now();
    const bool answered = co_await get(stream, buffer, kind.target(index, n), response);
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    if (!answered) {
      ++report.errors;
      break;
    }
    if (response.result() != http::status::ok) ++report.errors;
    report.latencies_ms.push_back(took.count());
    if (!response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return report;
}

}  // namespace

cohort::task<std::vector<KindReport>> drive_load(std::uint16_t port, std::vector<LoadKind> kinds,
                                                 std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  std::vector<cohort::task<ConnectionReport>> connections;
  for (const LoadKind& kind : kinds)
    for (int i = 0; i < kind.connections; ++i) connections.push_back(run_connection(port, kind, i, deadline));
  std::vector<ConnectionReport> done = co_await cohort::gather(std::move(connections));
  std::vector<KindReport> reports;
  std::size_t next = 0;
  for (const LoadKind& kind : kinds) {
    KindReport report{.label = kind.label};
    for (int i = 0; i < kind.connections; ++i, ++next) {
      auto& one = done[next];
      report.latencies_ms.insert(report.latencies_ms.end(), one.latencies_ms.begin(), one.latencies_ms.end());
      report.errors += one.errors;
    }
    std::sort(report.latencies_ms.begin(), report.latencies_ms.end());
    reports.push_back(std::move(report));
  }
  co_return reports;
}

cohort::task<std::pair<int, std::string>> http_get(std::uint16_t port, std::string target) {
  auto stream = co_await connect(port);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  const bool answered = co_await get(stream, buffer, target, response);
  if (!answered) throw std::runtime_error("GET " + target + ": no answer");
  co_return std::pair<int, std::string>(response.result_int(), std::move(response.body()));
}

}  // namespace http_service
