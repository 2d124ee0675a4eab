// RedisConnection: hiredis' command formatting and reply parser over an Asio TCP socket.
#include "redis/redis_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <array>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/future_state.hpp"

namespace cohort::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct RedisConnection::Socket {
  explicit Socket(asio::io_context& loop) : socket(loop) {}
  tcp::socket socket;
  std::array<char, 64 * 1024> buffer;
};

namespace {

std::invalid_argument bad_url(std::string_view url, std::string_view why) {
  return std::invalid_argument(fmt::format("Redis URL '{}': {}; expected redis://[[user]:password@]host[:port][/db]", url, why));
}

int parse_number(std::string_view text, std::string_view url, std::string_view what, int low, int high) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < low || value > high)
    throw bad_url(url, fmt::format("'{}' is not a {}", text, what));
  return value;
}

}  // namespace

RedisAddress RedisAddress::parse(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) throw bad_url(url, "it does not start with redis://");
  std::string_view rest = url.substr(scheme.size());
  RedisAddress address;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (const auto colon = credentials.find(':'); colon != std::string_view::npos) {
      address.user = credentials.substr(0, colon);
      address.password = credentials.substr(colon + 1);
    } else {
      address.password = credentials;
    }
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = rest.substr(slash + 1);
    if (!db.empty()) address.db = parse_number(db, url, "database number", 0, 1 << 20);
    rest = rest.substr(0, slash);
  }
  std::string_view port;
  if (rest.starts_with('[')) {  // [::1]:6379
    const auto close = rest.find(']');
    if (close == std::string_view::npos) throw bad_url(url, "an IPv6 address lacks its ']'");
    address.host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (rest.starts_with(':')) port = rest.substr(1);
    else if (!rest.empty()) throw bad_url(url, "junk after the host");
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    address.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    address.host = rest;
  }
  if (address.host.empty()) throw bad_url(url, "no host");
  if (!port.empty()) address.port = static_cast<std::uint16_t>(parse_number(port, url, "port", 1, 65535));
  return address;
}

std::string RedisAddress::to_string() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

RedisReply RedisReply::lost(std::string why) {
  RedisReply reply;
  reply.why_ = std::move(why);
  return reply;
}

RedisReply::RedisReply(RedisReply&& other) noexcept
    : reply_(std::exchange(other.reply_, nullptr)), why_(std::move(other.why_)) {}

RedisReply& RedisReply::operator=(RedisReply&& other) noexcept {
  if (this != &other) {
    if (reply_) freeReplyObject(reply_);
    reply_ = std::exchange(other.reply_, nullptr);
    why_ = std::move(other.why_);
  }
  return *this;
}

RedisReply::~RedisReply() {
  if (reply_) freeReplyObject(reply_);
}

bool RedisReply::is_error() const noexcept { return reply_ && reply_->type == REDIS_REPLY_ERROR; }

const redisReply& RedisReply::operator*() const {
  if (!reply_) throw Error(why_);
  return *reply_;
}

const redisReply& RedisReply::check() const {
  const auto& reply = **this;
  if (reply.type == REDIS_REPLY_ERROR) throw RedisCommandError(std::string(reply.str, reply.len));
  return reply;
}

std::string_view reply_text(const redisReply& reply) noexcept {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return {reply.str, reply.len};
    default:
      return {};
  }
}

long long reply_integer(const redisReply& reply, long long fallback) noexcept {
  if (reply.type == REDIS_REPLY_INTEGER) return reply.integer;
  if (reply.type == REDIS_REPLY_STRING) {
    long long value = 0;
    const auto [end, ec] = std::from_chars(reply.str, reply.str + reply.len, value);
    if (ec == std::errc{} && end == reply.str + reply.len) return value;
  }
  return fallback;
}

std::span<redisReply* const> reply_elements(const redisReply& reply) noexcept {
  if (reply.type != REDIS_REPLY_ARRAY || reply.element == nullptr) return {};
  return {reply.element, reply.elements};
}

RedisConnection::RedisConnection(asio::io_context& loop, RedisAddress address)
    : loop_(&loop), address_(std::move(address)), socket_(std::make_unique<Socket>(loop)), reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
}

RedisConnection::~RedisConnection() {
  boost::system::error_code ignored;
  socket_->socket.close(ignored);
  redisReaderFree(reader_);
}

task<std::shared_ptr<RedisConnection>> RedisConnection::connect(asio::io_context& loop, const RedisAddress& address,
                                                                Clock::duration timeout) {
  std::shared_ptr<RedisConnection> self(new RedisConnection(loop, address));
  const auto where = address.to_string();
  // The timer closes the socket, which ends whichever step is under way with operation_aborted.
  asio::steady_timer timer(loop, timeout);
  bool timed_out = false;
  timer.async_wait([&timed_out, socket = &self->socket_->socket](const boost::system::error_code& ec) {
    if (ec) return;
    timed_out = true;
    boost::system::error_code ignored;
    socket->close(ignored);
  });
  const auto too_slow = [&] {
    return Error(fmt::format("Redis at {}: no connection within {} ms", where,
                             std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
  };

  boost::system::error_code ec;
  tcp::resolver resolver(loop);
  const auto found = co_await resolver.async_resolve(address.host, std::to_string(address.port),
                                                     tcp::resolver::numeric_service,
                                                     asio::redirect_error(asio::use_awaitable, ec));
  if (ec) throw Error(fmt::format("Redis at {}: cannot resolve the host: {}", where, ec.message()));
  if (timed_out) throw too_slow();
  co_await asio::async_connect(self->socket_->socket, found, asio::redirect_error(asio::use_awaitable, ec));
  if (timed_out) throw too_slow();
  if (ec) throw Error(fmt::format("Redis at {}: cannot connect: {}", where, ec.message()));
  self->socket_->socket.set_option(tcp::no_delay(true), ec);
  self->start_reading();

  if (!address.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!address.user.empty()) auth.push_back(address.user);
    auth.push_back(address.password);
    const auto reply = co_await self->call(std::move(auth));
    if (timed_out) throw too_slow();
    if (reply.is_error()) throw Error(fmt::format("Redis at {}: AUTH refused: {}", where, reply_text(*reply)));
  }
  // (Each command is built in a statement of its own: GCC 12 cannot keep an initializer list's array
  // in a coroutine frame across a co_await.)
  auto hello = address.db != 0 ? std::vector<std::string>{"SELECT", std::to_string(address.db)}
                               : std::vector<std::string>{"PING"};
  const auto pong = co_await self->call(std::move(hello));
  if (timed_out) throw too_slow();
  if (pong.is_error()) throw Error(fmt::format("Redis at {}: {}", where, reply_text(*pong)));
  timer.cancel();
  co_return self;
}

bool RedisConnection::is_open() const noexcept { return !lost_; }

void RedisConnection::send(std::span<const std::string_view> arguments, Callback on_reply) {
  if (lost_) {
    on_reply(RedisReply::lost(lost_why_));
    return;
  }
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  pointers.reserve(arguments.size());
  lengths.reserve(arguments.size());
  for (const auto& argument : arguments) {
    pointers.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  char* command = nullptr;
  const int length = redisFormatCommandArgv(&command, static_cast<int>(arguments.size()), pointers.data(), lengths.data());
  if (length < 0) throw std::bad_alloc();
  outgoing_.append(command, static_cast<std::size_t>(length));
  redisFreeCommand(command);
  callbacks_.push_back(std::move(on_reply));
  if (!write_in_progress_) write_more();
}

task<RedisReply> RedisConnection::call(std::vector<std::string> arguments) {
  const std::vector<std::string_view> views(arguments.begin(), arguments.end());
  auto answer = std::make_shared<FutureState<RedisReply>>();
  send(views, [answer](RedisReply reply) { answer->try_set_value(std::move(reply)); });
  if (!answer->done()) co_await async_wait_direct(answer);
  auto reply = answer->take();
  if (reply.is_lost()) throw Error(fmt::format("Redis at {}: {}", address_.to_string(), reply.lost_why()));
  co_return reply;
}

task<std::string> RedisConnection::load_script(std::string_view body) {
  std::vector<std::string> command{"SCRIPT", "LOAD", std::string(body)};
  const auto reply = co_await call(std::move(command));
  co_return std::string(reply_text(reply.check()));
}

void RedisConnection::write_more() {
  if (outgoing_.empty() || lost_) {
    write_in_progress_ = false;
    return;
  }
  write_in_progress_ = true;
  writing_.clear();
  writing_.swap(outgoing_);
  asio::async_write(socket_->socket, asio::buffer(writing_),
                    [weak = weak_from_this()](const boost::system::error_code& ec, std::size_t) {
                      const auto self = weak.lock();
                      if (!self) return;
                      if (ec) return self->fail(fmt::format("writing to Redis at {} failed: {}", self->address_.to_string(), ec.message()));
                      self->write_more();
                    });
}

void RedisConnection::start_reading() {
  socket_->socket.async_read_some(
      asio::buffer(socket_->buffer), [weak = weak_from_this()](const boost::system::error_code& ec, std::size_t size) {
        const auto self = weak.lock();
        if (!self || self->lost_) return;
        if (ec) {
          return self->fail(ec == asio::error::eof
                                ? fmt::format("Redis at {} closed the connection", self->address_.to_string())
                                : fmt::format("reading from Redis at {} failed: {}", self->address_.to_string(), ec.message()));
        }
        if (redisReaderFeed(self->reader_, self->socket_->buffer.data(), size) != REDIS_OK)
          return self->fail(fmt::format("Redis at {} sent what is not RESP: {}", self->address_.to_string(), self->reader_->errstr));
        while (!self->lost_) {
          void* parsed = nullptr;
          if (redisReaderGetReply(self->reader_, &parsed) != REDIS_OK)
            return self->fail(fmt::format("Redis at {} sent what is not RESP: {}", self->address_.to_string(), self->reader_->errstr));
          if (!parsed) break;
          RedisReply reply(static_cast<redisReply*>(parsed));
          if (self->callbacks_.empty())
            return self->fail(fmt::format("Redis at {} answered a command that was not sent", self->address_.to_string()));
          auto callback = std::move(self->callbacks_.front());
          self->callbacks_.pop_front();
          callback(std::move(reply));
        }
        if (!self->lost_) self->start_reading();
      });
}

void RedisConnection::close(const std::string& why) { fail(why); }

void RedisConnection::fail(const std::string& why) {
  if (lost_) return;
  lost_ = true;
  lost_why_ = why;
  boost::system::error_code ignored;
  socket_->socket.close(ignored);
  outgoing_.clear();
  auto waiting = std::move(callbacks_);
  callbacks_.clear();
  for (auto& callback : waiting) callback(RedisReply::lost(why));
  if (auto handler = std::move(on_lost_)) handler(why);
}

}  // namespace cohort::detail
