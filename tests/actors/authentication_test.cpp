#include "cohort/detail/authentication.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "cohort/address.hpp"
#include "cohort/detail/socket_listener.hpp"
#include "cohort/error.hpp"
#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"
#include "cohort/wait_for.hpp"

namespace {

namespace asio = boost::asio;
namespace detail = cohort::detail;
using cohort::Address;
using detail::SocketChannel;
using detail::SocketListener;
using namespace std::chrono_literals;

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(Authentication, HmacSha256IsTheStandardOne) {
  // RFC 4231, test case 2.
  EXPECT_EQ(hex(detail::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(detail::hmac_sha256("", "").size(), 32u);
}

/// What each side's handshake ended with: "ok", or the type and text of what it threw.
struct Outcome {
  std::string server, client;
};

template <class Work>
cohort::task<std::string> outcome_of(Work work) {
  try {
    co_await std::move(work);
    co_return "ok";
  } catch (const cohort::AuthenticationError& e) {
    co_return std::string("AuthenticationError: ") + e.what();
  } catch (const cohort::TimeoutError& e) {
    co_return std::string("TimeoutError: ") + e.what();
  } catch (const cohort::EOFError& e) {
    co_return std::string("EOFError: ") + e.what();
  } catch (const cohort::SerializationError& e) {
    co_return std::string("SerializationError: ") + e.what();
  }
}

cohort::task<std::string> serve_one(SocketListener& listener, std::string key) {
  auto channel = co_await listener.async_accept();
  co_await detail::async_authenticate_client(channel, std::move(key));
  co_await channel.async_send("after the handshake");
  auto reply = co_await channel.async_recv();
  if (reply != "reply to after the handshake") throw std::logic_error("the client's reply was lost: " + reply);
  co_return reply;
}

cohort::task<std::string> connect_one(asio::io_context& loop, Address address, std::string key) {
  auto channel = co_await SocketChannel::async_connect(loop, address);
  co_await detail::async_authenticate_server(channel, std::move(key));
  const auto got = co_await channel.async_recv();
  co_await channel.async_send("reply to " + got);
  co_return got;
}

Outcome handshake(Address address, std::string server_key, std::string client_key) {
  cohort::Runtime runtime(1);
  return runtime.run([](asio::io_context& loop, Address where, std::string skey, std::string ckey) -> cohort::task<Outcome> {
    SocketListener listener(loop, where);
    auto [server, client] = co_await cohort::gather(outcome_of(serve_one(listener, std::move(skey))),
                                                    outcome_of(connect_one(loop, listener.address(), std::move(ckey))));
    co_return Outcome{server, client};
  }(runtime.context(), std::move(address), std::move(server_key), std::move(client_key)));
}

TEST(Authentication, TheSameKeyLetsBothSidesTalkOverTcpAndUnixSockets) {
  auto tcp = handshake(Address::tcp("127.0.0.1", 0), "abc", "abc");
  EXPECT_EQ(tcp.server, "ok");
  EXPECT_EQ(tcp.client, "ok");
  auto unix_socket = handshake(Address::unix_socket("/tmp/cohort-auth-" + std::to_string(::getpid()) + ".sock"),
                               std::string("k\0ey", 4), std::string("k\0ey", 4));
  EXPECT_EQ(unix_socket.server, "ok");
  EXPECT_EQ(unix_socket.client, "ok");
}

TEST(Authentication, AWrongKeyFailsBothSidesWithAuthenticationError) {
  const auto outcome = handshake(Address::tcp("127.0.0.1", 0), "abc", "abd");
  EXPECT_TRUE(outcome.server.starts_with("AuthenticationError")) << outcome.server;
  EXPECT_NE(outcome.server.find("answered the challenge wrongly"), std::string::npos) << outcome.server;
  EXPECT_TRUE(outcome.client.starts_with("AuthenticationError")) << outcome.client;
  EXPECT_NE(outcome.client.find("authkeys differ"), std::string::npos) << outcome.client;
}

/// The server's handshake against a client that sends `bytes` (if any) and then waits.
std::string server_against(std::optional<std::string> bytes) {
  cohort::Runtime runtime(1);
  return runtime.run([](asio::io_context& loop, std::optional<std::string> sent) -> cohort::task<std::string> {
    SocketListener listener(loop, Address::tcp("127.0.0.1", 0));
    auto [server, client] = co_await cohort::gather(listener.async_accept(), SocketChannel::async_connect(loop, listener.address()));
    auto [outcome, ignored] = co_await cohort::gather(
        outcome_of(cohort::wait_for(detail::async_authenticate_client(server, "abc"), 300ms)),
        [](SocketChannel& peer, std::optional<std::string> bytes) -> cohort::task<int> {
          if (bytes) {
            co_await peer.async_recv();  // the challenge
            co_await peer.async_send(*bytes);
          }
          co_return 0;
        }(client, std::move(sent)));
    co_return outcome;
  }(runtime.context(), std::move(bytes)));
}

TEST(Authentication, AClientThatSaysNothingIsDroppedAtTheDeadline) {
  const auto start = std::chrono::steady_clock::now();
  const auto outcome = server_against(std::nullopt);
  EXPECT_TRUE(outcome.starts_with("TimeoutError")) << outcome;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(Authentication, GarbageForAnAnswerIsRefused) {
  EXPECT_TRUE(server_against("garbage").starts_with("AuthenticationError"));
  EXPECT_TRUE(server_against("").starts_with("AuthenticationError"));
  // Longer than any answer: refused from its length, before it is read.
  EXPECT_TRUE(server_against(std::string(300, 'x')).starts_with("SerializationError"));
}

TEST(Authentication, AServerThatDoesNotChallengeIsRefusedByTheClient) {
  cohort::Runtime runtime(1);
  const auto outcome = runtime.run([](asio::io_context& loop) -> cohort::task<std::string> {
    SocketListener listener(loop, Address::tcp("127.0.0.1", 0));
    auto [server, client] = co_await cohort::gather(listener.async_accept(), SocketChannel::async_connect(loop, listener.address()));
    co_await server.async_send("HTTP/1.1 200 OK");
    auto outcome = co_await outcome_of(detail::async_authenticate_server(client, "abc"));
    co_return outcome;
  }(runtime.context()));
  EXPECT_TRUE(outcome.starts_with("AuthenticationError")) << outcome;
  EXPECT_NE(outcome.find("where a challenge was due"), std::string::npos) << outcome;
}

}  // namespace
