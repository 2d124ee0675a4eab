#include "cohort/detail/socket_channel.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>

#include "cohort/address.hpp"
#include "cohort/codec.hpp"
#include "cohort/detail/socket_listener.hpp"
#include "cohort/error.hpp"
#include "cohort/gather.hpp"
#include "cohort/runtime.hpp"

namespace {

namespace asio = boost::asio;
namespace detail = cohort::detail;
using detail::SocketChannel;
using detail::SocketListener;
using cohort::Address;

std::string socket_path(const char* what) {
  return (std::filesystem::temp_directory_path() /
          ("cohort-test-" + std::to_string(::getpid()) + "-" + what + ".sock"))
      .string();
}

/// One connection to `listener`: {the server's end, the client's end}.
cohort::task<std::pair<SocketChannel, SocketChannel>> connect_pair(asio::io_context& loop, SocketListener& listener) {
  auto [server, client] = co_await cohort::gather(listener.async_accept(), SocketChannel::async_connect(loop, listener.address()));
  co_return std::pair<SocketChannel, SocketChannel>(std::move(server), std::move(client));
}

/// Sends each of `messages` from the client and returns what the server received, in order.
cohort::task<std::vector<std::string>> round_trip(asio::io_context& loop, Address address, std::vector<std::string> messages) {
  SocketListener listener(loop, address);
  auto [server, client] = co_await connect_pair(loop, listener);
  std::vector<std::string> received;
  for (auto& message : messages) {
    // Both at once: a message larger than the socket's buffers cannot be written before it is read.
    auto [sent, got] = co_await cohort::gather(client.async_send(message), server.async_recv());
    received.push_back(std::move(got));
  }
  co_return received;
}

TEST(Address, SaysWhereItIsAndCrossesProcessesAsItIs) {
  const auto tcp = Address::tcp("127.0.0.1", 5000);
  EXPECT_TRUE(tcp.is_tcp());
  EXPECT_EQ(tcp.host(), "127.0.0.1");
  EXPECT_EQ(tcp.port(), 5000);
  EXPECT_EQ(tcp.path(), "");
  EXPECT_EQ(tcp.to_string(), "tcp://127.0.0.1:5000");
  EXPECT_EQ(Address::tcp("::1", 7).to_string(), "tcp://[::1]:7");
  const auto unix_socket = Address::unix_socket("/tmp/m.sock");
  EXPECT_FALSE(unix_socket.is_tcp());
  EXPECT_EQ(unix_socket.path(), "/tmp/m.sock");
  EXPECT_EQ(unix_socket.host(), "");
  EXPECT_EQ(unix_socket.to_string(), "unix:/tmp/m.sock");
  EXPECT_EQ(cohort::loads<Address>(cohort::dumps(tcp)), tcp);
  EXPECT_EQ(cohort::loads<Address>(cohort::dumps(unix_socket)), unix_socket);
  EXPECT_NE(tcp, unix_socket);
}

TEST(SocketChannel, CarriesMessagesWholeOverTcpAndUnixSockets) {
  cohort::Runtime runtime(1);
  const std::vector<std::string> messages{"hello", "", std::string(1 << 20, 'x'), std::string("\0\1\2", 3)};
  EXPECT_EQ(runtime.run(round_trip(runtime.context(), Address::tcp("127.0.0.1", 0), messages)), messages);
  const auto path = socket_path("carry");
  EXPECT_EQ(runtime.run(round_trip(runtime.context(), Address::unix_socket(path), messages)), messages);
  EXPECT_FALSE(std::filesystem::exists(path)) << "the listener left its socket file behind";
}

TEST(SocketListener, TellsThePortItGotAndRefusesATakenAddress) {
  cohort::Runtime runtime(1);
  SocketListener listener(runtime.context(), Address::tcp("127.0.0.1", 0));
  EXPECT_NE(listener.address().port(), 0);
  EXPECT_THROW(SocketListener(runtime.context(), listener.address()), cohort::ProcessError);
  EXPECT_THROW(SocketListener(runtime.context(), Address::tcp("localhost", 0)), cohort::ProcessError);

  const auto path = socket_path("taken");
  SocketListener first(runtime.context(), Address::unix_socket(path));
  try {
    SocketListener second(runtime.context(), Address::unix_socket(path));
    FAIL() << "a second listener took a live path";
  } catch (const cohort::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("another listener"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::exists(path)) << "the refused listener removed the live one's file";
}

TEST(SocketListener, ListensOnAnAbstractNameWithoutAFile) {
  const auto name = std::string(1, '\0') + "cohort-test-" + std::to_string(::getpid()) + "-abstract";
  const auto address = Address::unix_socket(name);
  EXPECT_TRUE(address.is_abstract());
  EXPECT_FALSE(Address::unix_socket("/tmp/m.sock").is_abstract());
  EXPECT_EQ(address.to_string(), "unix:@cohort-test-" + std::to_string(::getpid()) + "-abstract");
  cohort::Runtime runtime(1);
  EXPECT_EQ(runtime.run(round_trip(runtime.context(), address, {"over", "an abstract name"})),
            (std::vector<std::string>{"over", "an abstract name"}));
  // The name went with its listener: nothing answers there now.
  EXPECT_THROW(runtime.run(SocketChannel::async_connect(runtime.context(), address)), cohort::ProcessError);
}

TEST(SocketListener, ReplacesTheSocketFileOfADeadListener) {
  cohort::Runtime runtime(1);
  const auto path = socket_path("stale");
  {
    // A socket file bound and never unlinked, as a killed server leaves it.
    asio::local::stream_protocol::acceptor stale(runtime.context(), asio::local::stream_protocol::endpoint(path));
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  const auto received = runtime.run(round_trip(runtime.context(), Address::unix_socket(path), {"again"}));
  EXPECT_EQ(received, std::vector<std::string>{"again"});
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SocketChannel, ConnectingWhereNothingListensNamesTheAddress) {
  cohort::Runtime runtime(1);
  std::uint16_t free_port = 0;
  {
    SocketListener probe(runtime.context(), Address::tcp("127.0.0.1", 0));
    free_port = probe.address().port();
  }
  for (const auto& address : {Address::tcp("127.0.0.1", free_port), Address::unix_socket(socket_path("none"))}) {
    try {
      runtime.run(SocketChannel::async_connect(runtime.context(), address));
      FAIL() << "connected to " << address.to_string();
    } catch (const cohort::ProcessError& e) {
      EXPECT_NE(std::string(e.what()).find(address.to_string()), std::string::npos) << e.what();
    }
  }
}

/// The server's end of a connection whose client writes `raw` bytes and then closes; what the server's
/// next receive does, as the text of the error it threw ("" if none).
std::string receive_after_raw(std::string raw, std::size_t limit = 0) {
  cohort::Runtime runtime(1);
  return runtime.run([](asio::io_context& loop, std::string bytes, std::size_t max) -> cohort::task<std::string> {
    SocketListener listener(loop, Address::tcp("127.0.0.1", 0));
    asio::ip::tcp::socket raw_client(loop);
    auto accepted = listener.async_accept();
    co_await raw_client.async_connect({asio::ip::make_address("127.0.0.1"), listener.address().port()}, asio::use_awaitable);
    auto server = co_await std::move(accepted);
    co_await asio::async_write(raw_client, asio::buffer(bytes), asio::use_awaitable);
    raw_client.close();
    std::string error;
    try {
      co_await server.async_recv(max);
    } catch (const cohort::EOFError& e) {
      error = std::string("EOFError: ") + e.what();
    } catch (const cohort::SerializationError& e) {
      error = std::string("SerializationError: ") + e.what();
    }
    EXPECT_FALSE(error.starts_with("SerializationError") && server.is_open()) << "an unframable stream stayed open";
    co_return error;
  }(runtime.context(), std::move(raw), limit));
}

TEST(SocketChannel, ACutOrOversizedFrameIsAClearErrorAndAllocatesNothing) {
  EXPECT_EQ(receive_after_raw(""), "EOFError: the peer closed the connection");
  EXPECT_NE(receive_after_raw(std::string("\x05\x00", 2)).find("truncated"), std::string::npos);
  EXPECT_NE(receive_after_raw(std::string("\x05\x00\x00\x00" "ab", 6)).find("truncated"), std::string::npos);
  // 0xFFFFFFFF bytes announced: refused from the header alone.
  const auto huge = receive_after_raw(std::string("\xff\xff\xff\xff", 4));
  EXPECT_NE(huge.find("SerializationError"), std::string::npos) << huge;
  EXPECT_NE(huge.find("4294967295 bytes"), std::string::npos) << huge;
  const auto past_limit = receive_after_raw(std::string("\x00\x01\x00\x00", 4), 100);  // 256 > 100
  EXPECT_NE(past_limit.find("past the limit of 100"), std::string::npos) << past_limit;
}

}  // namespace
