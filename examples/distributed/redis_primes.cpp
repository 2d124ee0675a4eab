// A prime count spread over machines through Redis: the client puts 200 ranges into a queue, three
// worker programs (here on this machine, over loopback; on other machines they would be given the
// server's address) count the primes of the ranges they take, and the results come back as futures.
// Halfway through, one worker is killed: the ranges it held are claimed by the other two after one
// second, and every range is still counted once.
//
//   redis_primes                  starts a redis-server of its own on a free loopback port
//   redis_primes redis://host:port
//   redis_primes --worker redis://host:port     a worker (what the client starts three times)
#include <cohort/cohort.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cereal/types/string.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

extern char** environ;

namespace {

constexpr const char* queue = "primes";
constexpr long range_size = 25'000;
constexpr int range_count = 200;

/// What one task sends back: the range it counted, the count, and which worker program counted it.
struct RangeCount {
  long first = 0;
  long count = 0;
  std::string worker;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(first, count, worker);
  }
};

bool is_prime(long n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (long d = 3; d * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

/// Runs in a worker's process pool. The worker program's name is in the environment its client gave it.
RangeCount count_primes(long first, long last) {
  long count = 0;
  for (long n = first; n < last; ++n) count += is_prime(n) ? 1 : 0;
  const char* name = std::getenv("PRIMES_WORKER");
  return {first, count, name ? name : "?"};
}

/// The primes below `limit` by the sieve of Eratosthenes, to check the distributed count against.
long sieve_count(long limit) {
  std::vector<bool> composite(static_cast<std::size_t>(limit), false);
  long count = 0;
  for (long n = 2; n < limit; ++n) {
    if (composite[static_cast<std::size_t>(n)]) continue;
    ++count;
    for (long m = n * n; m < limit; m += n) composite[static_cast<std::size_t>(m)] = true;
  }
  return count;
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  ::close(fd);
  if (!bound) throw std::runtime_error("no free loopback port");
  return ntohs(address.sin_port);
}

/// A child program that is stopped (SIGTERM, then SIGKILL) and waited for when this goes, however the
/// client ends.
struct Child {
  explicit Child(std::vector<std::string> args, cohort::subprocess::PopenOptions options = {})
      : process(std::move(args), std::move(options)) {}
  ~Child() {
    if (process.poll()) return;
    process.terminate();
    try {
      process.wait(std::chrono::seconds(10));
    } catch (const cohort::TimeoutError&) {
      process.kill();
      process.wait();
    }
  }
  cohort::subprocess::Popen process;
};

/// redis-server without persistence on a free loopback port; ready once it says so on its stdout.
std::unique_ptr<Child> start_redis(int port) {
  auto redis = std::make_unique<Child>(
      std::vector<std::string>{"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"},
      cohort::subprocess::PopenOptions{.stdout_ = cohort::subprocess::PIPE});
  for (;;) {
    const auto line = redis->process.stdout_.readline();
    if (line.empty()) throw std::runtime_error("redis-server ended before it was ready");
    if (line.find("Ready to accept connections") != std::string::npos) return redis;
  }
}

/// This program again, as a worker named `name`.
std::unique_ptr<Child> start_worker(const std::string& url, const std::string& name) {
  cohort::subprocess::Environment environment;
  for (char** variable = environ; *variable; ++variable) {
    const std::string text = *variable;
    const auto equals = text.find('=');
    if (equals != std::string::npos) environment[text.substr(0, equals)] = text.substr(equals + 1);
  }
  environment["PRIMES_WORKER"] = name;
  return std::make_unique<Child>(std::vector<std::string>{"/proc/self/exe", "--worker", url},
                                 cohort::subprocess::PopenOptions{.env = std::move(environment)});
}

int serve(const std::string& url) {
  // One process each, so that three workers share this machine's cores; a task held by a worker that
  // stopped heartbeating goes to another after a second.
  cohort::redis_worker({.url = url, .queue = queue, .processes = 1, .claim_after = std::chrono::seconds(1)});
  return 0;
}

int count(const std::string& url) {
  cohort::RedisExecutor executor({.url = url, .queue = queue});
  std::map<std::string, std::unique_ptr<Child>> workers;
  for (const auto* name : {"worker-1", "worker-2", "worker-3"}) workers[name] = start_worker(url, name);

  std::vector<cohort::Future<RangeCount>> futures;
  for (int i = 0; i < range_count; ++i) futures.push_back(executor.submit(count_primes, i * range_size, (i + 1) * range_size));
  std::printf("client: %d ranges of %ld numbers queued for 3 workers\n", range_count, range_size);

  struct Tally {
    int ranges = 0;
    long primes = 0;
  };
  std::map<std::string, Tally> tally;
  std::set<long> counted;
  bool twice = false;
  long total = 0;
  int done = 0;
  for (auto& future : cohort::as_completed(futures, std::chrono::seconds(60))) {
    const auto result = future.get();
    twice |= !counted.insert(result.first).second;
    tally[result.worker].ranges += 1;
    tally[result.worker].primes += result.count;
    total += result.count;
    if (++done == range_count / 2) {
      auto& doomed = workers.at("worker-2")->process;
      doomed.kill();
      std::printf("client: killed worker-2 after %d of %d ranges were counted (it ended with %d)\n", done, range_count,
                  doomed.wait());
      std::fflush(stdout);
    }
  }

  std::printf("\n| worker   | ranges | primes  |\n|----------|-------:|--------:|\n");
  for (const auto& [name, counts] : tally)
    std::printf("| %-8s | %6d | %7ld |%s\n", name.c_str(), counts.ranges, counts.primes,
                name == "worker-2" ? " killed halfway" : "");
  std::printf("| total    | %6zu | %7ld |\n\n", counted.size(), total);

  const long limit = range_count * range_size;
  const long expected = sieve_count(limit);
  const bool right = !twice && counted.size() == static_cast<std::size_t>(range_count) && total == expected;
  std::printf("client: %ld primes below %ld (the sieve says %ld): %s\n", total, limit, expected,
              right ? "every range counted once" : "WRONG");
  return right ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 2 && args[0] == "--worker") return serve(args[1]);
    if (args.size() == 1) return count(args[0]);
    if (!args.empty()) {
      std::fprintf(stderr, "usage: redis_primes [redis://host:port] | --worker redis://host:port\n");
      return 2;
    }
    const int port = free_loopback_port();
    const auto redis = start_redis(port);
    return count("redis://127.0.0.1:" + std::to_string(port));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "redis_primes: %s\n", error.what());
    return 1;
  }
}
