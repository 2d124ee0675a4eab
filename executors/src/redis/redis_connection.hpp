// One connection to a Redis server on an Asio event loop: commands are pipelined (each is written as
// soon as it is sent, its reply handed to its callback in order), hiredis formats them and parses the
// replies (RESP2), Asio does the I/O. Everything but construction runs on the loop's one thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/detail/clock.hpp"
#include "cohort/error.hpp"
#include "cohort/task.hpp"

struct redisReply;
struct redisReader;

namespace cohort::detail {

/// Where a Redis server is: `redis://[[user]:password@]host[:port][/db]` (port 6379, db 0 by default).
struct RedisAddress {
  std::string host;
  std::uint16_t port = 6379;
  std::string user;
  std::string password;
  int db = 0;

  /// std::invalid_argument naming the URL when it is not of that form.
  static RedisAddress parse(std::string_view url);
  /// host:port, as error messages name the server.
  std::string to_string() const;
};

/// A command's answer from Redis, or the news that the connection ended before it came.
class RedisReply {
 public:
  RedisReply() = default;
  explicit RedisReply(redisReply* reply) noexcept : reply_(reply) {}
  static RedisReply lost(std::string why);
  RedisReply(RedisReply&& other) noexcept;
  RedisReply& operator=(RedisReply&& other) noexcept;
  ~RedisReply();

  /// The connection ended before the answer: why.
  bool is_lost() const noexcept { return reply_ == nullptr; }
  const std::string& lost_why() const noexcept { return why_; }
  /// Redis answered with an error (`-ERR ...`).
  bool is_error() const noexcept;
  /// The reply itself; throws (see check()) when lost.
  const redisReply& operator*() const;
  const redisReply* operator->() const { return &**this; }
  /// Throws cohort::Error when lost, RedisCommandError when Redis answered with an error.
  const redisReply& check() const;

 private:
  redisReply* reply_ = nullptr;
  std::string why_;
};

/// Redis answered a command with an error reply (its text is what()).
class RedisCommandError : public Error {
 public:
  using Error::Error;
};

/// The text of a string, status or error reply (empty for others).
std::string_view reply_text(const redisReply& reply) noexcept;
/// The integer of an integer reply, or of a string reply that holds one; else `fallback`.
long long reply_integer(const redisReply& reply, long long fallback = 0) noexcept;
/// The elements of an array reply (none for others, and for a nil array).
std::span<redisReply* const> reply_elements(const redisReply& reply) noexcept;

/// One connection to Redis on an Asio loop. Its pending reads and writes do not keep it alive: the
/// socket closes when the last owner lets go (so a setup step that throws leaves no connection open);
/// commands still waiting then get no answer, so owners close() first when anything waits.
class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using Callback = std::function<void(RedisReply)>;

  /// Connects, authenticates and selects the database. cohort::Error naming the address when nothing
  /// answers there or the server refuses, TimeoutError-like cohort::Error past `timeout`.
  static task<std::shared_ptr<RedisConnection>> connect(boost::asio::io_context& loop, const RedisAddress& address,
                                                        Clock::duration timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Writes the command (its arguments as binary-safe strings); `on_reply` gets its answer, or a lost
  /// reply if the connection ends first (also when it has already ended).
  void send(std::span<const std::string_view> arguments, Callback on_reply);
  void send(std::initializer_list<std::string_view> arguments, Callback on_reply) {
    send(std::span<const std::string_view>(arguments.begin(), arguments.size()), std::move(on_reply));
  }
  /// send() for a coroutine: the answer, or cohort::Error when the connection ends first. Redis' error
  /// replies are returned, not thrown (check() throws them).
  task<RedisReply> call(std::vector<std::string> arguments);
  /// SCRIPT LOAD: the SHA1 that EVALSHA names the script by on this server.
  task<std::string> load_script(std::string_view body);

  /// Called once, on the loop, when the connection ends (the server closed it, an I/O error, close()).
  void on_lost(std::function<void(const std::string& why)> handler) { on_lost_ = std::move(handler); }
  /// Ends the connection: every command still waiting gets a lost reply saying `why`.
  void close(const std::string& why = "the connection was closed");
  bool is_open() const noexcept;
  /// Commands written whose answers have not come yet.
  std::size_t waiting() const noexcept { return callbacks_.size(); }
  const RedisAddress& address() const noexcept { return address_; }

  struct Socket;  // the Asio socket, kept out of this header

 private:
  RedisConnection(boost::asio::io_context& loop, RedisAddress address);
  void start_reading();
  void write_more();
  void fail(const std::string& why);

  boost::asio::io_context* loop_;
  RedisAddress address_;
  std::unique_ptr<Socket> socket_;
  redisReader* reader_ = nullptr;
  std::deque<Callback> callbacks_;
  std::string outgoing_;  // commands not written yet
  std::string writing_;   // what the write in progress sends
  bool write_in_progress_ = false;
  bool lost_ = false;
  std::string lost_why_;
  std::function<void(const std::string&)> on_lost_;
};

}  // namespace cohort::detail
