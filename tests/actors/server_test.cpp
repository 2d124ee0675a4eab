#include "cohort/server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cohort/actor.hpp"
#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// Reads lines and answers each with "<prefix><line>\n" until the client closes.
cohort::Server::Handler echo_lines(std::string prefix = "") {
  return [prefix](cohort::Server::Socket socket) -> cohort::task<void> {
    std::string buffer;
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n =
          co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      std::string reply = prefix + buffer.substr(0, n);
      buffer.erase(0, n);
      co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
    }
  };
}

cohort::task<tcp::socket> connect_to(std::uint16_t port) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
  co_return socket;
}

/// Sends one line and returns the line that comes back (empty if the server closed first).
cohort::task<std::string> exchange(tcp::socket& socket, std::string line) {
  line += '\n';
  co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
  std::string buffer;
  boost::system::error_code ec;
  const std::size_t n =
      co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::string();
  co_return buffer.substr(0, n - 1);
}

TEST(Server, ServesOneCoroutinePerConnectionOnAPortItPicked) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Server server({.port = 0}, echo_lines("echo: "));
    EXPECT_NE(server.port(), 0);
    EXPECT_EQ(server.host(), "127.0.0.1");
    auto serving = cohort::spawn(server.serve_forever());
    auto a = co_await connect_to(server.port());
    auto b = co_await connect_to(server.port());
    EXPECT_EQ(co_await exchange(a, "one"), "echo: one");
    EXPECT_EQ(co_await exchange(b, "two"), "echo: two");
    EXPECT_EQ(co_await exchange(a, "three"), "echo: three");
    EXPECT_EQ(server.active_connections(), 2u);
    EXPECT_EQ(server.accepted_connections(), 2u);
    a.close();
    b.close();
    server.close();
    EXPECT_TRUE(server.closing());
    co_await serving.async_get();
    co_await server.wait_closed();
    EXPECT_EQ(server.active_connections(), 0u);
  }());
}

TEST(Server, AtTheConnectionCapItStopsAcceptingUntilOneEnds) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Server server({.max_connections = 2}, echo_lines());
    auto serving = cohort::spawn(server.serve_forever());
    auto a = co_await connect_to(server.port());
    auto b = co_await connect_to(server.port());
    EXPECT_EQ(co_await exchange(a, "a"), "a");
    EXPECT_EQ(co_await exchange(b, "b"), "b");
    // The third connects (the kernel's backlog takes it) but is not served while two are.
    auto c = co_await connect_to(server.port());
    auto third = cohort::spawn(exchange(c, "c"));
    co_await cohort::sleep(100ms);
    EXPECT_FALSE(third.done());
    EXPECT_EQ(server.accepted_connections(), 2u);
    EXPECT_EQ(server.active_connections(), 2u);
    a.close();
    EXPECT_EQ(co_await third.async_get(), "c");
    EXPECT_EQ(server.accepted_connections(), 3u);
    b.close();
    c.close();
    server.close();
    co_await serving.async_get();
  }());
}

TEST(Server, AGracefulStopFinishesWhatIsInFlightAndRefusesNewClients) {
  cohort::run([]() -> cohort::task<void> {
    std::atomic<int> finished{0};
    cohort::Server server({}, [&finished](cohort::Server::Socket socket) -> cohort::task<void> {
      std::string buffer;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::use_awaitable);
      co_await cohort::sleep(200ms);  // a slow request, still running when the stop begins
      co_await asio::async_write(socket, asio::buffer(std::string("done\n")), asio::use_awaitable);
      ++finished;
    });
    auto serving = cohort::spawn(server.serve_forever());
    auto client = co_await connect_to(server.port());
    auto reply = cohort::spawn(exchange(client, "work"));
    co_await cohort::sleep(50ms);
    const auto port = server.port();
    server.close();
    server.close();  // a second close is a no-op
    EXPECT_EQ(co_await reply.async_get(), "done");
    co_await serving.async_get();
    EXPECT_EQ(finished.load(), 1);
    bool refused = false;
    try {
      auto late = co_await connect_to(port);
    } catch (const boost::system::system_error& e) {
      refused = e.code() == asio::error::connection_refused;
    }
    EXPECT_TRUE(refused);
  }());
}

TEST(Server, AStopCancelsConnectionsThatOutliveTheDrainTimeout) {
  cohort::run([]() -> cohort::task<void> {
    std::atomic<bool> cancelled{false};
    cohort::Server server({.drain_timeout = 100ms}, [&cancelled](cohort::Server::Socket) -> cohort::task<void> {
      try {
        co_await cohort::sleep(1h);
      } catch (const cohort::CancelledError&) {
        cancelled = true;
        throw;
      }
    });
    auto serving = cohort::spawn(server.serve_forever());
    auto client = co_await connect_to(server.port());
    while (server.active_connections() == 0) co_await cohort::sleep(1ms);
    const auto start = std::chrono::steady_clock::now();
    server.close();
    co_await serving.async_get();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(cancelled.load());
    EXPECT_GE(took, 100ms);
    EXPECT_LT(took, 1s);
    EXPECT_EQ(server.active_connections(), 0u);
  }());
}

TEST(Server, SigtermUnderRuntimeRunIsAGracefulStop) {
  cohort::Runtime runtime;
  std::atomic<int> served{0};
  std::string reply;
  runtime.run([&]() -> cohort::task<void> {
    cohort::Server server({}, [&served](cohort::Server::Socket socket) -> cohort::task<void> {
      std::string buffer;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::use_awaitable);
      co_await cohort::sleep(150ms);
      co_await asio::async_write(socket, asio::buffer(std::string("served\n")), asio::use_awaitable);
      ++served;
    });
    // A client on a thread of its own, so that the loop's cancellation does not reach it.
    std::thread client([port = server.port(), &reply] {
      asio::io_context io;
      tcp::socket socket(io);
      socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
      asio::write(socket, asio::buffer(std::string("go\n")));
      std::this_thread::sleep_for(30ms);
      std::raise(SIGTERM);  // the Runtime's handler cancels the main task: serve_forever
      asio::streambuf buffer;
      boost::system::error_code ec;
      asio::read_until(socket, buffer, '\n', ec);
      reply.assign(asio::buffers_begin(buffer.data()), asio::buffers_end(buffer.data()));
    });
    co_await server.serve_forever();
    client.join();
  }());
  EXPECT_EQ(served.load(), 1);
  EXPECT_EQ(reply, "served\n");
}

TEST(Server, AHandlerThatThrowsEndsItsConnectionOnly) {
  cohort::run([]() -> cohort::task<void> {
    cohort::Server server({}, [](cohort::Server::Socket socket) -> cohort::task<void> {
      std::string buffer;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n', asio::use_awaitable);
      if (buffer == "boom\n") throw std::runtime_error("bad request");
      co_await asio::async_write(socket, asio::buffer(buffer), asio::use_awaitable);
    });
    auto serving = cohort::spawn(server.serve_forever());
    auto bad = co_await connect_to(server.port());
    EXPECT_EQ(co_await exchange(bad, "boom"), "");  // closed without a reply
    auto good = co_await connect_to(server.port());
    EXPECT_EQ(co_await exchange(good, "fine"), "fine");
    server.close();
    co_await serving.async_get();
  }());
}

TEST(Server, BadAddressesAreClearErrors) {
  cohort::Runtime runtime;
  EXPECT_THROW(cohort::Server(runtime, {.host = "localhost"}, echo_lines()), std::invalid_argument);
  EXPECT_THROW(cohort::Server(runtime, {}, cohort::Server::Handler{}), std::invalid_argument);
  EXPECT_THROW(cohort::Server(runtime, {.max_connections = 0}, echo_lines()), std::invalid_argument);
  cohort::Server first(runtime, {}, echo_lines());
  try {
    cohort::Server second(runtime, {.port = first.port()}, echo_lines());
    ADD_FAILURE() << "a second server listened on a port in use";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::address_in_use);
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:"), std::string::npos) << e.what();
  }
}

TEST(Server, BuiltOutsideAnyLoopWithoutARuntimeIsAClearError) {
  EXPECT_THROW(cohort::Server({}, echo_lines()), std::logic_error);
}

/// One actor shared by every connection: a counter of the lines seen, asked from each handler.
class Tally {
 public:
  int add() { return ++lines_; }

 private:
  int lines_ = 0;
};

TEST(Server, ConnectionsRunInParallelOnSeveralThreadsAndShareAnActor) {
  cohort::Runtime runtime(4);
  runtime.run([]() -> cohort::task<void> {
    auto tally = cohort::spawn_actor<Tally>();
    cohort::Server server({}, [tally](cohort::Server::Socket socket) -> cohort::task<void> {
      std::string buffer;
      for (;;) {
        boost::system::error_code ec;
        const std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n',
                                                              asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        const int count = co_await tally.ask(&Tally::add);
        std::string reply = std::to_string(count) + '\n';
        buffer.erase(0, n);
        co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
      }
    });
    auto serving = cohort::spawn(server.serve_forever());
    constexpr int clients = 32, lines = 20;
    std::vector<cohort::task<int>> sessions;
    for (int i = 0; i < clients; ++i)
      sessions.push_back([](std::uint16_t port) -> cohort::task<int> {
        auto socket = co_await connect_to(port);
        int answered = 0;
        for (int j = 0; j < lines; ++j) {
          const std::string reply = co_await exchange(socket, "x");
          answered += !reply.empty();
        }
        co_return answered;
      }(server.port()));
    int total = 0;
    for (int answered : co_await cohort::gather(std::move(sessions))) total += answered;
    EXPECT_EQ(total, clients * lines);
    EXPECT_EQ(co_await tally.ask(&Tally::add), clients * lines + 1);
    server.close();
    co_await serving.async_get();
  }());
}

}  // namespace
