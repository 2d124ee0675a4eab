#include "cohort/connection.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "cohort/error.hpp"
#include "cohort/gather.hpp"
#include "cohort/process.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/wait_for.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Pipe, DuplexCarriesValuesBothWays) {
  auto [a, b] = cohort::Pipe();
  b.send(std::vector<int>{42, 7});
  EXPECT_EQ(a.recv<std::vector<int>>(), (std::vector<int>{42, 7}));
  a.send(std::string("pong"));
  EXPECT_EQ(b.recv<std::string>(), "pong");
}

TEST(Pipe, OneWayEndsRefuseTheOtherDirection) {
  auto [r, w] = cohort::Pipe(false);
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  EXPECT_FALSE(w.readable());
  EXPECT_TRUE(w.writable());
  w.send(1);
  EXPECT_EQ(r.recv<int>(), 1);
  EXPECT_THROW(r.send(1), cohort::Error);
  EXPECT_THROW(w.recv<int>(), cohort::Error);
}

TEST(Pipe, ReceivingAnotherTypeIsASerializationErrorNamingBoth) {
  auto [a, b] = cohort::Pipe();
  b.send(std::string("text"));
  try {
    a.recv<std::vector<double>>();
    FAIL();
  } catch (const cohort::SerializationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("string"), std::string::npos) << what;
    EXPECT_NE(what.find("vector"), std::string::npos) << what;
  }
}

TEST(Pipe, BytesAndEmptyMessages) {
  auto [a, b] = cohort::Pipe();
  b.send_bytes("");
  b.send_bytes(std::string("\0\1\2", 3));
  EXPECT_EQ(a.recv_bytes(), "");
  EXPECT_EQ(a.recv_bytes(), std::string("\0\1\2", 3));
}

TEST(Pipe, LargeMessagesArriveWhole) {
  auto [a, b] = cohort::Pipe();
  const std::string big(5 << 20, 'z');
  std::thread sender([&b = b, &big] { b.send_bytes(big); });
  EXPECT_EQ(a.recv_bytes(), big);
  sender.join();
}

TEST(Pipe, RecvBytesHonoursMaxLength) {
  auto [a, b] = cohort::Pipe();
  b.send_bytes("0123456789");
  EXPECT_THROW(a.recv_bytes(4), cohort::Error);
  b.send_bytes("abc");
  EXPECT_EQ(a.recv_bytes(4), "abc");  // the long message was consumed, the stream is intact
}

TEST(Pipe, PollWaitsForData) {
  auto [a, b] = cohort::Pipe();
  EXPECT_FALSE(a.poll());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(a.poll(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  std::thread later([&b = b] {
    std::this_thread::sleep_for(50ms);
    b.send(3);
  });
  EXPECT_TRUE(a.poll(10s));
  EXPECT_EQ(a.recv<int>(), 3);
  later.join();
}

TEST(Pipe, ClosedPeerGivesEOFError) {
  auto [a, b] = cohort::Pipe();
  b.send(5);
  b.close();
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(a.recv<int>(), 5);  // what was sent before the close is still delivered
  EXPECT_TRUE(a.poll());
  EXPECT_THROW(a.recv<int>(), cohort::EOFError);
  EXPECT_THROW(a.send(1), cohort::EOFError);
  EXPECT_THROW(b.send(1), cohort::Error);  // this end itself is closed
}

// Raw bytes written straight into the stream: the receiver reports them, never crashes or over-allocates.
TEST(Pipe, GarbageAndTruncatedStreamsGiveClearErrors) {
  {
    auto [a, b] = cohort::Pipe();
    cohort::detail::write_unframed(b, std::string(64, '\x5a'));
    EXPECT_THROW(a.recv_bytes(), cohort::SerializationError);
  }
  {
    auto [a, b] = cohort::Pipe();
    const cohort::detail::MessageHeader huge{cohort::detail::message_magic, 0, std::uint64_t{1} << 62};
    cohort::detail::write_unframed(b, {reinterpret_cast<const char*>(&huge), sizeof huge});
    EXPECT_THROW(a.recv_bytes(), cohort::SerializationError);
  }
  {
    auto [a, b] = cohort::Pipe();
    const cohort::detail::MessageHeader header{cohort::detail::message_magic, 0, 1000};
    cohort::detail::write_unframed(b, {reinterpret_cast<const char*>(&header), sizeof header});
    cohort::detail::write_unframed(b, "abc");
    b.close();
    EXPECT_THROW(a.recv_bytes(), cohort::EOFError);
  }
  {
    auto [a, b] = cohort::Pipe();
    cohort::detail::write_unframed(b, "COH");
    b.close();
    EXPECT_THROW(a.recv_bytes(), cohort::EOFError);
  }
}

TEST(Pipe, WorksBetweenProcesses) {
  auto [parent_end, child_end] = cohort::Pipe();
  cohort::Process worker(
      [](cohort::Connection& conn) {
        const auto text = conn.recv<std::string>();
        std::string upper = text;
        for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        conn.send(upper);
      },
      std::move(child_end));
  worker.start();
  parent_end.send(std::string("hello from the parent"));
  EXPECT_EQ(parent_end.recv<std::string>(), "HELLO FROM THE PARENT");
  worker.join();
  EXPECT_EQ(worker.exitcode(), 0);
}

TEST(Pipe, MessagesSentBeforeTheChildStartedReachIt) {
  auto [parent_end, child_end] = cohort::Pipe();
  for (int i = 1; i <= 3; ++i) parent_end.send(i);
  cohort::Process child(
      [](cohort::Connection& conn) {
        int sum = 0;
        for (int i = 0; i < 3; ++i) sum += conn.recv<int>();
        conn.send(sum);
      },
      std::move(child_end));
  child.start();
  EXPECT_EQ(parent_end.recv<int>(), 6);
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

// The parent's copy of the child's end went away at start(): a receive that waits when the child is
// killed ends at once with EOFError instead of waiting forever.
TEST(Pipe, AWaitingReceiverLearnsThatItsPeerWasKilled) {
  auto [parent_end, child_end] = cohort::Pipe();
  cohort::Process child(
      [](cohort::Connection& conn) {
        conn.send(1);
        std::this_thread::sleep_for(60s);
      },
      std::move(child_end));
  child.start();
  EXPECT_EQ(parent_end.recv<int>(), 1);
  const int pid = child.pid();
  std::thread killer([pid] {
    std::this_thread::sleep_for(50ms);
    ::kill(pid, SIGKILL);
  });
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(parent_end.recv<int>(), cohort::EOFError);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  killer.join();
  child.join();
  EXPECT_EQ(child.exitcode(), -SIGKILL);
}

// One thread sleeps in recv while another sleeps in send on the same end (its message is larger than the
// ring): each is woken by what it waits for, not by the other's wake-up.
TEST(Pipe, AReceiverAndASenderOnOneEndWakeIndependently) {
  auto [a, b] = cohort::Pipe();
  const std::string big(2 << 20, 'x');
  std::string reply;
  std::thread receiver([&a = a, &reply] { reply = a.recv<std::string>(); });
  std::thread sender([&a = a, &big] { a.send(big); });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(b.recv<std::string>(), big);
  b.send(std::string("reply"));
  sender.join();
  receiver.join();
  EXPECT_EQ(reply, "reply");
}

TEST(Pipe, ManyMessagesBothWaysKeepTheirOrder) {
  auto [a, b] = cohort::Pipe();
  std::thread echo([&b = b] {
    for (int i = 0; i < 20000; ++i) b.send(b.recv<std::vector<int>>());
  });
  std::thread producer([&a = a] {
    for (int i = 0; i < 20000; ++i) a.send(std::vector<int>(static_cast<std::size_t>(i % 100), i));
  });
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(a.recv<std::vector<int>>(), std::vector<int>(static_cast<std::size_t>(i % 100), i));
  producer.join();
  echo.join();
}

TEST(Pipe, ACancelledAsyncRecvLeavesTheEndUsable) {
  auto [a, b] = cohort::Pipe();
  EXPECT_THROW(cohort::run(cohort::wait_for(a.async_recv<int>(), 20ms)), cohort::TimeoutError);
  b.send(9);
  EXPECT_EQ(a.recv<int>(), 9);
}

TEST(Pipe, AsyncSendAndRecvDoNotBlockTheLoop) {
  auto [a, b] = cohort::Pipe();
  const auto result = cohort::run([&a = a, &b = b]() -> cohort::task<std::string> {
    int ticks = 0;
    auto ticker = [&ticks]() -> cohort::task<void> {
      for (int i = 0; i < 5; ++i) {
        co_await cohort::sleep(10ms);
        ++ticks;
      }
    };
    auto receiver = [&a]() -> cohort::task<std::string> { co_return co_await a.async_recv<std::string>(); };
    auto sender = [&b]() -> cohort::task<void> {
      co_await cohort::sleep(30ms);
      co_await b.async_send(std::string(3 << 20, 'q'));  // larger than the socket buffer
    };
    auto [text, nothing, nothing2] = co_await cohort::gather(receiver(), sender(), ticker());
    (void)nothing;
    (void)nothing2;
    co_return ticks == 5 ? text : std::string("ticker starved");
  }());
  EXPECT_EQ(result, std::string(3 << 20, 'q'));
}

TEST(Pipe, AsyncRecvSeesEOF) {
  auto [a, b] = cohort::Pipe();
  b.close();
  EXPECT_THROW(cohort::run([&a = a]() -> cohort::task<int> { co_return co_await a.async_recv<int>(); }()),
               cohort::EOFError);
}

}  // namespace
