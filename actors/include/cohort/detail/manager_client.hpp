// A client's connection to a manager's server, shared by every proxy it made: one authenticated socket
// carrying the calls of all of them (each with an id, answered in any order), and the proxies' cores,
// actors whose mailboxes forward each message to the object they name.
#pragma once

#include <boost/asio/io_context.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <typeindex>

#include "cohort/address.hpp"
#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/direct_manager_connection.hpp"
#include "cohort/detail/manager_protocol.hpp"
#include "cohort/detail/process_actor_protocol.hpp"
#include "cohort/detail/socket_channel.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

class ManagerConnection : public std::enable_shared_from_this<ManagerConnection> {
 public:
  /// Connects to `address` and authenticates with `authkey` (AuthenticationError if refused,
  /// TimeoutError past `timeout`, ProcessError naming the address if nothing listens there).
  static task<std::shared_ptr<ManagerConnection>> async_open(boost::asio::io_context& loop, Address address,
                                                             std::string authkey, Clock::duration timeout);
  ~ManagerConnection();

  boost::asio::io_context& context() const noexcept { return *loop_; }
  const Address& address() const noexcept { return address_; }
  const std::string& authkey() const noexcept { return authkey_; }

  /// Sends a proxy's message for `object`; it is settled by the server's answer, or fails with
  /// ActorDeadError once the connection is gone.
  void send(const std::string& object, std::unique_ptr<ActorMessage> message);
  /// Is `object` served as a `type`? std::out_of_range (unknown name) or std::invalid_argument (another
  /// type) from the server.
  task<void> async_lookup(std::string object, std::string type);
  /// Builds a new object on the server with the factory registered as `factory` (Manager's dict() and
  /// the like) from `arguments`; returns the name it is served under.
  task<std::string> async_create(std::string factory, std::string arguments);
  /// Asks the server to stop and waits for its answer.
  task<void> async_shutdown_server();
  /// Closes the socket: what is in flight fails with ActorDeadError saying `why`.
  void close(const std::string& why) noexcept;

  /// This thread's own connection for a blocking call (opened on first use), or null when the call
  /// goes through the shared connection: after this thread's non-blocking calls here (a direct call
  /// could overtake them), once this connection is closed, or when enough threads have theirs.
  DirectManagerConnection* direct_for_this_thread();
  /// Notes that this thread sends a non-blocking call here: its later blocking calls come after it on
  /// the shared connection.
  void note_async_call();
  /// This thread ends: its direct connection goes.
  void forget_thread(std::uint64_t token) noexcept;

  struct Pending;

 private:
  ManagerConnection(boost::asio::io_context& loop, Address address, std::string authkey, SocketChannel channel);
  task<ProcessActorReply> control(ManagerRequest request);
  void queue_locked(ManagerRequest& request);
  static task<void> write_requests(std::shared_ptr<ManagerConnection> self);
  static task<void> read_replies(std::shared_ptr<ManagerConnection> self);

  boost::asio::io_context* loop_;
  Address address_;
  std::string authkey_;
  SocketChannel channel_;
  // Where the server takes connections from its own machine (ManagerKind::same_machine_address), if
  // elsewhere than address_: where the threads' own connections go first.
  std::optional<Address> same_machine_;

  std::mutex mutex_;  // guards what follows
  bool open_ = true;
  std::string closed_why_;
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, Pending> in_flight_;
  struct ThreadLink {
    std::unique_ptr<DirectManagerConnection> direct;
    bool sent_async = false;
  };
  std::map<std::uint64_t, ThreadLink> threads_;  // by this_thread_token()
  std::size_t direct_count_ = 0;
  std::deque<std::string> outgoing_;  // frames, or the rest of one
  bool writing_ = false;              // the writer sends a batch: nobody else may write
  std::shared_ptr<FutureState<void>> writer_wake_;
};

/// This process's open connection to the manager at `address`, shared by every proxy that arrived here
/// as an argument (opened on the default runtime's loop on first use; blocks while it connects).
std::shared_ptr<ManagerConnection> shared_manager_connection(const Address& address, const std::string& authkey);

/// Runs `work` on the loop of the proxies made here (the current Runtime's, else the default one) and
/// blocks until it ends; InvalidStateError when called on that loop, where it would never end.
void run_on_proxy_loop(task<void> work);

/// The core of a Proxy: an actor whose messages go to `object` on the manager behind `connection`.
class ProxyCore final : public ActorCore {
 public:
  ProxyCore(std::shared_ptr<ManagerConnection> connection, std::string object, std::type_index type);

  const std::shared_ptr<ManagerConnection>& connection() const noexcept { return connection_; }
  const std::string& object_name() const noexcept { return object_; }

 private:
  void* object() noexcept override { return nullptr; }
  void call_on_stop() noexcept override {}
  void drop_object() noexcept override {}
  void forward(std::unique_ptr<ActorMessage> message) override;
  void forward_stop() override;

  std::shared_ptr<ManagerConnection> connection_;
  std::string object_;
};

}  // namespace cohort::detail
