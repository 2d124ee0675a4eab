// The least an HTTP server can do for http_bench.sh's cached GET: one thread, epoll, and for every
// request that arrives (counted by its blank line, nothing parsed) the same bytes the service sends for
// a cache hit. What wrk measures against it is what loopback TCP allows on this machine with wrk beside
// it, the ceiling of any server of the workload, in any language.
// Usage: http_ceiling_server PORT_FILE (listens on 127.0.0.1, an ephemeral port, written to PORT_FILE;
// SIGTERM ends it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view body = R"({"below":100000,"primes":9592,"cached":true})";

[[noreturn]] void fail(const char* what) {
  std::perror(what);
  std::exit(1);
}

/// How many requests end in `bytes`, counting the blank lines that end their headers; `tail` carries
/// the last three bytes of the previous read, where a blank line may have begun.
int requests_in(std::string_view bytes, std::string& tail) {
  std::string seen = tail;
  seen.append(bytes);
  int count = 0;
  for (auto at = seen.find("\r\n\r\n"); at != std::string::npos; at = seen.find("\r\n\r\n", at + 4)) ++count;
  tail = seen.substr(seen.size() > 3 ? seen.size() - 3 : 0);
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: http_ceiling_server PORT_FILE\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const std::string reply = "HTTP/1.1 200 OK\r\nServer: cohort\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + std::string(body);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("bind");
  if (::listen(listener, 1024) != 0) fail("listen");
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::ofstream(argv[1]) << ntohs(address.sin_port) << '\n';

  const int poller = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  ::epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  // The blank-line search's carry-over per connection, by descriptor.
  std::vector<std::string> tails(65536);
  char input[65536];
  std::string output;
  epoll_event ready[256];
  for (;;) {
    const int count = ::epoll_wait(poller, ready, 256, -1);
    if (count < 0 && errno != EINTR) fail("epoll_wait");
    for (int i = 0; i < count; ++i) {
      const int fd = ready[i].data.fd;
      if (fd == listener) {
        for (int client; (client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          if (client >= 65536) {
            ::close(client);
            continue;
          }
          const int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          tails[client].clear();
          epoll_event watch{};
          watch.events = EPOLLIN;
          watch.data.fd = client;
          ::epoll_ctl(poller, EPOLL_CTL_ADD, client, &watch);
        }
        continue;
      }
      const ssize_t got = ::read(fd, input, sizeof input);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        ::close(fd);  // also leaves the epoll set
        continue;
      }
      output.clear();
      for (int n = requests_in({input, static_cast<std::size_t>(got)}, tails[fd]); n > 0; --n) output += reply;
      // Replies are small and wrk waits for each before it sends the next: the socket buffer has room.
      if (!output.empty() && ::write(fd, output.data(), output.size()) < 0) ::close(fd);
    }
  }
}
