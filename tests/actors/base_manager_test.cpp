// BaseManager: objects of a user's class served from a server process over TCP and Unix sockets,
// reached by proxies, guarded by the authkey; and what a bad peer gets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "cohort/base_manager.hpp"
#include "cohort/managed/queue.hpp"
#include "cohort/codec.hpp"
#include "cohort/detail/authentication.hpp"
#include "cohort/detail/binary_archive.hpp"
#include "cohort/detail/direct_manager_connection.hpp"
#include "cohort/detail/manager_protocol.hpp"
#include "cohort/detail/process_actor_protocol.hpp"
#include "cohort/detail/socket_channel.hpp"
#include "cohort/error.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "resource_check.hpp"

namespace {

using namespace std::chrono_literals;

class Accumulator {
 public:
  explicit Accumulator(long start = 0) : total_(start) {}
  long add(long k) { return total_ += k; }
  long total() const { return total_; }
  std::string describe(const std::string& prefix) const { return prefix + std::to_string(total_); }
  void reset() { total_ = 0; }
  long checked_add(long k) {
    if (k < 0) throw std::invalid_argument("a negative amount: " + std::to_string(k));
    return total_ += k;
  }
  cohort::task<long> add_later(long k) {
    co_await cohort::sleep(1ms);
    co_return total_ += k;
  }
  int server_pid() const { return ::getpid(); }
  long not_listed() const { return -1; }

 private:
  long total_;
};

}  // namespace

COHORT_MANAGED_METHODS(Accumulator, &Accumulator::add, &Accumulator::total, &Accumulator::describe,
                       &Accumulator::reset, &Accumulator::checked_add, &Accumulator::add_later,
                       &Accumulator::server_pid)

namespace {

using cohort::Address;
using cohort::BaseManager;

std::string socket_path(const char* what) {
  return (std::filesystem::temp_directory_path() / ("cohort-manager-" + std::to_string(::getpid()) + "-" + what + ".sock"))
      .string();
}

TEST(ManagedMethods, NamesAreReadFromTheList) {
  EXPECT_EQ(cohort::detail::managed_method_names("&A::add, &A::total"), (std::vector<std::string>{"add", "total"}));
  EXPECT_EQ(cohort::detail::managed_method_names("static_cast<int (A::*)(int, long)>(&A::get), &ns::A::put"),
            (std::vector<std::string>{"get", "put"}));
}

TEST(BaseManager, ServesARegisteredObjectFromAServerProcess) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "abc"});
  manager.register_type<Accumulator>("acc", 10L);
  manager.start();
  EXPECT_NE(manager.address().port(), 0);
  auto acc = manager.get<Accumulator>("acc");
  EXPECT_EQ(acc.call(&Accumulator::add, 5).get(), 15);  // an int passed for a long parameter
  acc.tell(&Accumulator::add, 1L);
  EXPECT_EQ(acc.call(&Accumulator::total).get(), 16);
  EXPECT_EQ(acc.call(&Accumulator::describe, std::string("total=")).get(), "total=16");
  EXPECT_NE(acc.call(&Accumulator::server_pid).get(), ::getpid());
  EXPECT_THROW(acc.call(&Accumulator::checked_add, -1L).get(), std::invalid_argument);
  EXPECT_EQ(acc.call(&Accumulator::add_later, 4L).get(), 20);

  // From a coroutine, and from a plain thread at once.
  cohort::Runtime runtime(1);
  std::thread other([acc] {
    for (int i = 0; i < 100; ++i) acc.call(&Accumulator::add, 1L).get();
  });
  const long seen = runtime.run([](cohort::Proxy<Accumulator> proxy) -> cohort::task<long> {
    for (int i = 0; i < 100; ++i) co_await proxy.ask(&Accumulator::add, 1L);
    co_return co_await proxy.ask(&Accumulator::total);
  }(acc));
  other.join();
  EXPECT_GE(seen, 120);
  EXPECT_EQ(acc.call(&Accumulator::total).get(), 220);

  manager.shutdown();
  EXPECT_THROW(acc.call(&Accumulator::total).get(), cohort::ActorDeadError);
  EXPECT_TRUE(cohort_test::zombie_children().empty());
}

TEST(BaseManager, AnotherClientConnectsWithTheKeyAndAWrongKeyIsRefused) {
  const auto path = socket_path("clients");
  BaseManager master({.address = Address::unix_socket(path), .authkey = "secret"});
  master.register_type<Accumulator>("acc");
  master.start();
  auto mine = master.get<Accumulator>("acc");

  BaseManager intruder({.address = master.address(), .authkey = "guess"});
  EXPECT_THROW(intruder.connect(), cohort::AuthenticationError);

  BaseManager worker({.address = master.address(), .authkey = "secret"});
  worker.connect();
  auto theirs = worker.get<Accumulator>("acc");
  theirs.call(&Accumulator::add, 7L).get();
  EXPECT_EQ(mine.call(&Accumulator::total).get(), 7) << "the two clients see one shared object";
  EXPECT_THROW(worker.get<Accumulator>("nothing"), std::out_of_range);
  worker.shutdown();  // a client's shutdown closes its connection, not the server
  EXPECT_EQ(mine.call(&Accumulator::add, 1L).get(), 8);
  master.shutdown();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(BaseManager, AMethodNotListedFailsTheCallWithAClearError) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<Accumulator>("acc");
  manager.start();
  auto acc = manager.get<Accumulator>("acc");
  try {
    acc.call(&Accumulator::not_listed).get();
    FAIL() << "a method not listed was called";
  } catch (const cohort::SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("COHORT_MANAGED_METHODS"), std::string::npos) << e.what();
  }
  EXPECT_EQ(acc.call(&Accumulator::total).get(), 0);
}

TEST(BaseManager, AClientWhoseServerDiedGetsAnErrorNotAHang) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<Accumulator>("acc");
  manager.start();
  auto acc = manager.get<Accumulator>("acc");
  const int server = acc.call(&Accumulator::server_pid).get();
  ::kill(server, SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(acc.call(&Accumulator::add_later, 1L).get(), cohort::ActorDeadError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  manager.shutdown();
  EXPECT_TRUE(cohort_test::zombie_children().empty());
}

/// A thread waiting in a blocking get of the manager's "tasks" queue on its own connection when the
/// server dies fails at once, and so does the next blocking call.
void expect_blocking_calls_fail_when_the_server_dies(BaseManager& manager) {
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  auto waiting = std::async(std::launch::async, [tasks] { return tasks.get(); });
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout);
  ::kill(manager.get<Accumulator>("acc").call(&Accumulator::server_pid).get(), SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(waiting.get(), cohort::ActorDeadError);
  EXPECT_THROW(tasks.put(2), cohort::ActorDeadError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  manager.shutdown();
  EXPECT_TRUE(cohort_test::zombie_children().empty());
  if (!manager.address().is_tcp())
    EXPECT_FALSE(std::filesystem::exists(manager.address().path())) << "the killed server's socket file is left";
}

TEST(BaseManager, BlockingCallsOnAThreadsOwnConnectionFailToo) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<Accumulator>("acc");
  manager.register_type<cohort::managed::Queue<int>>("tasks");
  manager.start();
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  tasks.put(1);  // a blocking call: on this thread's own connection
  EXPECT_EQ(tasks.get(), 1);
  expect_blocking_calls_fail_when_the_server_dies(manager);
}

TEST(BaseManager, AThreadsBlockingCallComesAfterItsEarlierNonBlockingOnes) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<cohort::managed::Queue<int>>("tasks");
  manager.start();
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  EXPECT_TRUE(tasks.empty());  // the blocking way first: this thread's own connection opens
  for (int i = 0; i < 200; ++i) {
    tasks.tell(&cohort::managed::Queue<int>::put, i, true, std::chrono::nanoseconds(-1));
    ASSERT_EQ(tasks.get_nowait(), i) << "a blocking get overtook the put told before it";
  }
}

/// The shared-memory Pipes mapped in this process: one per open Connection pair end.
long pipe_mappings() {
  const auto mapped = cohort_test::shared_memory_mappings();
  return std::count_if(mapped.begin(), mapped.end(),
                       [](const std::string& line) { return line.find("memfd:cohort-pipe") != std::string::npos; });
}

TEST(BaseManager, BlockingCallsOverAUnixSocketMoveToSharedMemoryAndFailWhenTheServerDies) {
  BaseManager manager({.address = Address::unix_socket(socket_path("lane")), .authkey = "k"});
  manager.register_type<Accumulator>("acc");
  manager.register_type<cohort::managed::Queue<int>>("tasks");
  manager.start();
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  const auto before = pipe_mappings();
  tasks.put(1);  // this thread's own connection opens, and moves to a Pipe
  EXPECT_EQ(pipe_mappings(), before + 1);
  EXPECT_EQ(tasks.get(), 1);
  for (int i = 0; i < 1000; ++i) tasks.put(i);
  long sum = 0;
  for (int i = 0; i < 1000; ++i) sum += tasks.get();
  EXPECT_EQ(sum, 999 * 1000 / 2);
  expect_blocking_calls_fail_when_the_server_dies(manager);
}

TEST(BaseManager, OverTcpOnTheServersMachineBlockingCallsMoveToSharedMemoryToo) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<Accumulator>("acc");
  manager.start();
  auto acc = manager.get<Accumulator>("acc");
  const auto before = pipe_mappings();
  // A blocking call of a proxy: Proxy::invoke, as the managed types' methods make it.
  EXPECT_EQ(acc.invoke(&Accumulator::add, 2L), 2);
  EXPECT_EQ(pipe_mappings(), before + 1) << "the thread's connection did not move to the server's Unix socket";
  EXPECT_EQ(acc.invoke(&Accumulator::add, 3L), 5);
  EXPECT_EQ(acc.call(&Accumulator::total).get(), 5);  // the shared connection, over TCP, sees the same
}

TEST(BaseManager, AThreadsConnectionStaysOnTcpWhereTheServersUnixSocketIsOutOfReach) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<Accumulator>("acc");
  manager.start();
  // What a client on another machine finds at the name the server gave: nothing.
  const auto nowhere = Address::unix_socket(std::string(1, '\0') + "cohort-test-nothing-listens-here");
  const auto before = pipe_mappings();
  auto direct = cohort::detail::DirectManagerConnection::open(manager.address(), &nowhere, "k", 2s);
  EXPECT_EQ(pipe_mappings(), before);
  auto acc = manager.get<Accumulator>("acc");
  auto reply = std::make_shared<cohort::detail::FutureState<long>>();
  const auto& core = *static_cast<const cohort::ActorRef<Accumulator>&>(acc).core();
  auto message = cohort::detail::make_ask_message<Accumulator>(core, reply, &Accumulator::add, 4L);
  direct->call("acc", *message);
  EXPECT_EQ(cohort::Future<long>(reply).get(), 4);
  // A wrong key is refused there as anywhere.
  EXPECT_THROW(cohort::detail::DirectManagerConnection::open(manager.address(), &nowhere, "wrong", 2s),
               cohort::AuthenticationError);
  // And a call on the socket whose server died fails.
  ::kill(acc.call(&Accumulator::server_pid).get(), SIGKILL);
  auto lost = std::make_shared<cohort::detail::FutureState<long>>();
  auto second = cohort::detail::make_ask_message<Accumulator>(core, lost, &Accumulator::add, 1L);
  direct->call("acc", *second);
  EXPECT_THROW(cohort::Future<long>(lost).get(), cohort::ActorDeadError);
  manager.shutdown();
  EXPECT_TRUE(cohort_test::zombie_children().empty());
}

TEST(BaseManager, ClosingAClientEndsABlockingCallWaitingOnItsLane) {
  BaseManager manager({.address = Address::unix_socket(socket_path("lane-close")), .authkey = "k"});
  manager.register_type<cohort::managed::Queue<int>>("tasks");
  manager.start();
  auto client = std::make_unique<BaseManager>(cohort::BaseManagerOptions{.address = manager.address(), .authkey = "k"});
  client->connect();
  auto theirs = client->get<cohort::managed::Queue<int>>("tasks");
  auto waiting = std::async(std::launch::async, [theirs] { return theirs.get(); });
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout);
  client->shutdown();  // a client's shutdown closes its connection, from this thread
  EXPECT_THROW(waiting.get(), cohort::ActorDeadError);
  // The get that was cancelled took nothing; the server serves on.
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  std::this_thread::sleep_for(100ms);  // the server sees the lane close (nothing else orders it)
  tasks.put(3);
  EXPECT_EQ(tasks.get(true, 1s), 3);
}

/// A raw peer that passes the handshake and then sends `frames` as they are; returns the server's
/// answers to them until it closes the connection (or 2 s pass).
std::vector<cohort::detail::ProcessActorReply> raw_peer(const Address& address, const std::string& key,
                                                         std::vector<std::string> frames) {
  cohort::Runtime runtime(1);
  return runtime.run([](Address where, std::string authkey, std::vector<std::string> sent,
                        boost::asio::io_context& loop) -> cohort::task<std::vector<cohort::detail::ProcessActorReply>> {
    auto channel = co_await cohort::detail::SocketChannel::async_connect(loop, where);
    co_await cohort::detail::async_authenticate_server(channel, authkey);
    for (auto& frame : sent) co_await channel.async_send(frame);
    std::vector<cohort::detail::ProcessActorReply> replies;
    for (;;) {
      std::string bytes;
      bool ended = false;
      try {
        bytes = co_await cohort::wait_for(channel.async_recv(), 2s);
      } catch (const std::exception&) {
        ended = true;
      }
      if (ended) break;
      replies.push_back(cohort::loads<cohort::detail::ProcessActorReply>(bytes));
      if (replies.size() == sent.size()) break;
    }
    co_return replies;
  }(address, key, std::move(frames), runtime.context()));
}

/// Arguments as a client writes them: the values one after the other, no codec frame around them.
std::string arguments(long value) {
  std::string out;
  cohort::detail::BinaryWriter archive(out);
  archive(value);
  return out;
}

std::string request(std::uint64_t id, std::string object, std::string method, std::string signature,
                    std::string arguments) {
  cohort::detail::ManagerRequest r;
  r.id = id;
  r.object = std::move(object);
  r.method = std::move(method);
  r.signature = std::move(signature);
  r.arguments = std::move(arguments);
  return cohort::dumps(r);
}

TEST(BaseManager, BadRequestsFailThatCallOrThatConnectionAndNobodyElses) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<Accumulator>("acc", 1L);
  manager.start();
  auto acc = manager.get<Accumulator>("acc");
  const std::string add_type(cohort::detail::type_name<long (Accumulator::*)(long)>());
  const auto replies = raw_peer(manager.address(), "k",
                                {request(1, "nobody", "add", add_type, arguments(1)),
                                 request(2, "acc", "explode", add_type, arguments(1)),
                                 request(3, "acc", "add", "int (Accumulator::*)(int)", arguments(1)),
                                 request(4, "acc", "add", add_type, "\x01"),
                                 request(5, "acc", "add", add_type, arguments(2))});
  ASSERT_EQ(replies.size(), 5u);
  const auto failure = [&](std::size_t i) { return replies[i].failure.type + ": " + replies[i].failure.message; };
  EXPECT_FALSE(replies[0].ok);
  EXPECT_NE(failure(0).find("no object is registered as 'nobody'"), std::string::npos) << failure(0);
  EXPECT_NE(failure(1).find("no managed method 'explode'"), std::string::npos) << failure(1);
  EXPECT_NE(failure(2).find("called as int (Accumulator::*)(int)"), std::string::npos) << failure(2);
  EXPECT_NE(failure(3).find("SerializationError"), std::string::npos) << failure(3);
  EXPECT_TRUE(replies[4].ok);
  EXPECT_EQ(cohort::loads<long>(replies[4].result), 3);

  // Garbage and a length past the limit close that connection only.
  EXPECT_TRUE(raw_peer(manager.address(), "k", {"garbage that is no request"}).empty());
  EXPECT_EQ(acc.call(&Accumulator::add, 1L).get(), 4);

  // A shared-memory lane is for a Unix-domain socket only: asked over TCP, the server cuts the peer off.
  cohort::detail::ManagerRequest lane;
  lane.id = 1;
  lane.kind = cohort::detail::ManagerKind::shared_memory_lane;
  EXPECT_TRUE(raw_peer(manager.address(), "k", {cohort::dumps(lane)}).empty());
  EXPECT_EQ(acc.call(&Accumulator::add, 1L).get(), 5);
}

TEST(BaseManager, ASilentPeerIsDroppedAtTheDeadlineAndConnectionsAreCapped) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k", .timeout = 300ms, .max_connections = 2});
  manager.register_type<Accumulator>("acc");
  manager.start();  // its own connection is the first of two
  auto acc = manager.get<Accumulator>("acc");
  cohort::Runtime runtime(1);
  const auto silent_for = runtime.run([](boost::asio::io_context& loop, Address where) -> cohort::task<double> {
    auto channel = co_await cohort::detail::SocketChannel::async_connect(loop, where);
    const auto start = std::chrono::steady_clock::now();
    co_await channel.async_recv();  // the challenge; then say nothing
    bool closed = false;
    try {
      co_await cohort::wait_for(channel.async_recv(), 3s);
    } catch (const cohort::EOFError&) {
      closed = true;
    }
    co_return closed ? std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() : -1.0;
  }(runtime.context(), manager.address()));
  EXPECT_GT(silent_for, 0.2) << "the silent peer was not dropped (or too soon)";
  EXPECT_LT(silent_for, 2.0);

  BaseManager second({.address = manager.address(), .authkey = "k"});
  second.connect();  // the second of two
  BaseManager third({.address = manager.address(), .authkey = "k", .timeout = 1s});
  EXPECT_ANY_THROW(third.connect());
  EXPECT_EQ(acc.call(&Accumulator::add, 1L).get(), 1) << "the server stopped serving its clients";
}

TEST(BaseManager, ServeForeverServesInThisThreadUntilAClientShutsItDown) {
  const auto path = socket_path("forever");
  std::thread server([&] {
    BaseManager manager({.address = Address::unix_socket(path), .authkey = "k"});
    manager.register_type<Accumulator>("acc", 2L);
    manager.serve_forever();
  });
  BaseManager client({.address = Address::unix_socket(path), .authkey = "k"});
  for (int tries = 0; tries < 200 && !std::filesystem::exists(path); ++tries) std::this_thread::sleep_for(10ms);
  client.connect();
  auto acc = client.get<Accumulator>("acc");
  EXPECT_EQ(acc.call(&Accumulator::server_pid).get(), ::getpid());
  EXPECT_EQ(acc.call(&Accumulator::add, 3L).get(), 5);
  // What an operator's tool would send: the server stops, its proxies fail, serve_forever returns.
  cohort::Runtime runtime(1);
  runtime.run([](boost::asio::io_context& loop, std::string where) -> cohort::task<void> {
    auto connection = co_await cohort::detail::ManagerConnection::async_open(loop, Address::unix_socket(where), "k", 2s);
    co_await connection->async_shutdown_server();
    connection->close("the test is done");  // as BaseManager does: its writer waits on it until then
  }(runtime.context(), path));
  server.join();
  EXPECT_THROW(acc.call(&Accumulator::total).get(), cohort::ActorDeadError);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ManagedQueue, ABlockingGetWaitsInTheServerWithoutHoldingUpOthers) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<cohort::managed::Queue<int>>("tasks");
  manager.register_type<cohort::managed::Queue<int>>("bounded", std::size_t{1});
  manager.register_type<Accumulator>("acc");
  manager.start();
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  EXPECT_THROW(manager.get<Accumulator>("tasks"), std::invalid_argument);

  BaseManager other({.address = manager.address(), .authkey = "k"});
  other.connect();
  auto theirs = other.get<cohort::managed::Queue<int>>("tasks");
  // A get on the empty queue waits in the server; the same client's other calls, another object and
  // the other client's put all go on meanwhile.
  auto waiting = theirs.call(&cohort::managed::Queue<int>::get, true, std::chrono::nanoseconds(-1));
  EXPECT_EQ(manager.get<Accumulator>("acc").call(&Accumulator::add, 2L).get(), 2);
  EXPECT_EQ(tasks.qsize(), 0u);
  tasks.put(7);
  EXPECT_EQ(waiting.get(), 7);

  EXPECT_THROW(tasks.get(false), cohort::Empty);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(tasks.get(true, 50ms), cohort::Empty);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  for (int i = 0; i < 3; ++i) tasks.put(i);
  EXPECT_EQ(tasks.get(), 0);
  EXPECT_EQ(tasks.get_nowait(), 1);
  EXPECT_EQ(tasks.qsize(), 1u);

  auto bounded = manager.get<cohort::managed::Queue<int>>("bounded");
  bounded.put(1);
  EXPECT_TRUE(bounded.full());
  EXPECT_THROW(bounded.put_nowait(2), cohort::Full);
  EXPECT_THROW(bounded.put(2, true, 20ms), cohort::Full);

  cohort::Runtime runtime(1);
  EXPECT_EQ(runtime.run([](cohort::Proxy<cohort::managed::Queue<int>> q) -> cohort::task<int> {
              co_await q.async_put(40);
              const int a = co_await q.async_get();
              const int b = co_await q.async_get();
              co_return a + b;
            }(tasks)),
            42);
}

TEST(ManagedQueue, AGetWhoseClientWentAwayTakesNothing) {
  BaseManager manager({.address = Address::tcp("127.0.0.1", 0), .authkey = "k"});
  manager.register_type<cohort::managed::Queue<int>>("tasks");
  manager.start();
  auto tasks = manager.get<cohort::managed::Queue<int>>("tasks");
  {
    BaseManager gone({.address = manager.address(), .authkey = "k"});
    gone.connect();
    auto q = gone.get<cohort::managed::Queue<int>>("tasks");
    auto never = q.call(&cohort::managed::Queue<int>::get, true, std::chrono::nanoseconds(-1));
    std::this_thread::sleep_for(20ms);  // the get waits in the server
  }  // its connection closes
  // The put comes on another connection: it must reach the server after the disconnect did, which
  // nothing orders but time.
  std::this_thread::sleep_for(200ms);
  tasks.put(5);
  EXPECT_EQ(tasks.get(true, 1s), 5) << "the item went to a client that had gone";
}

}  // namespace
