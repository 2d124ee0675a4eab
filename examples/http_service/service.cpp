#include "service.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <string_view>

namespace http_service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr long max_below = 50'000'000;
constexpr std::size_t lag_window = 6'000;  // one minute of 10 ms samples
constexpr auto lag_period = 10ms;
constexpr auto idle_timeout = 30s;

long count_primes_below(long below) {
  long count = 0;
  for (long n = 2; n < below; ++n) {
    bool prime = true;
    for (long d = 2; d * d <= n; ++d)
      if (n % d == 0) {
        prime = false;
        break;
      }
    count += prime;
  }
  return count;
}

std::optional<std::string> Cache::get(const std::string& key) const {
  const auto found = entries_.find(key);
  if (found == entries_.end()) return std::nullopt;
  return found->second;
}

void Cache::put(std::string key, std::string json) { entries_.insert_or_assign(std::move(key), std::move(json)); }

bool Cache::erase(const std::string& key) { return entries_.erase(key) > 0; }

void Stats::record(std::string route, int status) { ++requests_[std::move(route)][status]; }

void Stats::cpu_job_done(double ms) {
  ++cpu_jobs_;
  cpu_ms_ += ms;
}

void Stats::loop_lag(std::chrono::microseconds lateness) {
  const auto us = static_cast<std::uint32_t>(std::clamp<std::int64_t>(lateness.count(), 0, UINT32_MAX));
  if (lag_us_.size() < lag_window)
    lag_us_.push_back(us);
  else
    lag_us_[lag_next_] = us;
  lag_next_ = (lag_next_ + 1) % lag_window;
  ++lag_samples_;
}

LagSummary Stats::lag() const {
  LagSummary summary;
  summary.samples = lag_samples_;
  if (lag_us_.empty()) return summary;
  auto sorted = lag_us_;
  std::sort(sorted.begin(), sorted.end());
  const auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))] / 1000.0; };
  summary.p50_ms = at(0.50);
  summary.p99_ms = at(0.99);
  summary.max_ms = sorted.back() / 1000.0;
  return summary;
}

std::string Stats::to_json(std::size_t active_connections, std::uint64_t accepted_connections) const {
  json::object routes;
  std::uint64_t total = 0;
  for (const auto& [route, by_status] : requests_) {
    json::object statuses;
    for (const auto& [status, count] : by_status) {
      statuses[std::to_string(status)] = count;
      total += count;
    }
    routes[route] = std::move(statuses);
  }
  const LagSummary lagged = lag();
  json::object out;
  out["requests"] = total;
  out["by_route"] = std::move(routes);
  out["cpu_jobs"] = cpu_jobs_;
  out["cpu_ms"] = cpu_ms_;
  out["loop_lag_ms"] = {{"samples", lagged.samples}, {"p50", lagged.p50_ms}, {"p99", lagged.p99_ms}, {"max", lagged.max_ms}};
  out["connections"] = {{"active", active_connections}, {"accepted", accepted_connections}};
  return json::serialize(out);
}

namespace {

Response json_response(const Request& request, http::status status, std::string body) {
  Response response{status, request.version()};
  response.set(http::field::server, "cohort");
  response.set(http::field::content_type, "application/json");
  response.body() = std::move(body);
  response.body() += '\n';
  response.prepare_payload();
  return response;
}

Response error_response(const Request& request, http::status status, std::string_view why) {
  return json_response(request, status, json::serialize(json::object{{"error", why}}));
}

/// The value of `name` in a query string such as "below=100&x=1".
std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto end = query.find('&');
    const auto pair = query.substr(0, end);
    const auto equals = pair.find('=');
    if (pair.substr(0, equals) == name) return equals == std::string_view::npos ? "" : pair.substr(equals + 1);
    if (end == std::string_view::npos) break;
    query.remove_prefix(end + 1);
  }
  return std::nullopt;
}

std::optional<long> parse_long(std::string_view text) {
  long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

Service::Service(cohort::ProcessPoolExecutor& pool, ServiceOptions options)
    : pool_(pool),
      cache_(cohort::spawn_actor<Cache>({.name = "cache"})),
      stats_(cohort::spawn_actor<Stats>({.name = "stats"})),
      server_({.host = options.host,
               .port = options.port,
               .max_connections = options.max_connections,
               .drain_timeout = options.drain_timeout},
              [this](cohort::Server::Socket socket) { return serve_connection(std::move(socket)); }) {}

cohort::task<void> Service::serve() {
  auto watcher = cohort::spawn(watch_loop_lag());
  co_await server_.serve_forever();
  watcher.cancel();
  try {
    co_await watcher.async_get();
  } catch (const cohort::CancelledError&) {
  }
  co_await stats_.stop();
  co_await cache_.stop();
}

cohort::task<void> Service::watch_loop_lag() {
  while (!server_.closing()) {
    const auto start = std::chrono::steady_clock::now();
    co_await cohort::sleep(lag_period);
    const auto late = std::chrono::steady_clock::now() - start - lag_period;
    stats_.tell(&Stats::loop_lag, std::chrono::duration_cast<std::chrono::microseconds>(late));
  }
}

cohort::task<void> Service::serve_connection(cohort::Server::Socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    stream.expires_after(idle_timeout);
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset) break;
    stream.expires_never();
    if (ec) {  // not HTTP, or past the limits: say so once and close
      Request none;
      auto response = error_response(none, http::status::bad_request, ec.message());
      response.keep_alive(false);
      stats_.tell(&Stats::record, std::string("bad request"), 400);
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    Request request = parser.release();
    const std::string_view target = request.target();
    const auto question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const std::string_view query = question == std::string_view::npos ? "" : target.substr(question + 1);

    std::string route;
    Response response;
    if (path == "/primes") {
      route = "/primes";
      const auto below = parse_long(query_value(query, "below").value_or(""));
      if (request.method() != http::verb::get) {
        response = error_response(request, http::status::method_not_allowed, "use GET");
      } else if (!below || *below < 2 || *below > max_below) {
        response = error_response(request, http::status::bad_request, "give below=N with 2 <= N <= 50000000");
      } else {
        const std::string key = "primes/" + std::to_string(*below);
        const std::optional<std::string> cached = co_await cache_.ask(&Cache::get, key);
        long primes = 0;
        if (cached) {
          primes = parse_long(*cached).value_or(0);
        } else {
          const auto start = std::chrono::steady_clock::now();
          primes = co_await cohort::run_in_executor(pool_, count_primes_below, *below);
          const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
          stats_.tell(&Stats::cpu_job_done, took.count());
          cache_.tell(&Cache::put, key, std::to_string(primes));
        }
        response = json_response(request, http::status::ok,
                                 json::serialize(json::object{{"below", *below}, {"primes", primes}, {"cached", cached.has_value()}}));
      }
    } else if (path.starts_with("/cache/") && path.size() > 7) {
      route = "/cache";
      std::string key(path.substr(7));
      switch (request.method()) {
        case http::verb::get: {
          const std::optional<std::string> value = co_await cache_.ask(&Cache::get, key);
          response = value ? json_response(request, http::status::ok,
                                           "{\"key\":" + json::serialize(json::string(key)) + ",\"value\":" + *value + "}")
                           : error_response(request, http::status::not_found, "no such key");
          break;
        }
        case http::verb::put: {
          boost::system::error_code parse_error;
          const json::value value = json::parse(request.body(), parse_error);
          if (parse_error) {
            response = error_response(request, http::status::bad_request, "the body is not JSON: " + parse_error.message());
          } else {
            co_await cache_.ask(&Cache::put, key, json::serialize(value));
            response = json_response(request, http::status::ok, json::serialize(json::object{{"key", key}, {"stored", true}}));
          }
          break;
        }
        case http::verb::delete_: {
          const bool erased = co_await cache_.ask(&Cache::erase, key);
          response = erased ? json_response(request, http::status::ok, json::serialize(json::object{{"key", key}, {"deleted", true}}))
                            : error_response(request, http::status::not_found, "no such key");
          break;
        }
        default:
          response = error_response(request, http::status::method_not_allowed, "use GET, PUT or DELETE");
      }
    } else if (path == "/stats") {
      route = "/stats";
      const std::size_t active = server_.active_connections();
      const std::uint64_t accepted = server_.accepted_connections();
      const std::string body = co_await stats_.ask(&Stats::to_json, active, accepted);
      response = json_response(request, http::status::ok, body);
    } else {
      route = "other";
      response = error_response(request, http::status::not_found, "no such route");
    }
    stats_.tell(&Stats::record, std::move(route), static_cast<int>(response.result_int()));
    // Between requests is where a graceful stop ends a kept-alive connection.
    response.keep_alive(request.keep_alive() && !server_.closing());
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace http_service
