// A line-based TCP chat server built of actors: one actor per room, one per connection (which owns the
// writing side of its socket, so that what it is sent goes out whole and in order), and a lobby actor
// that finds rooms by name. Each connection's coroutine reads lines and turns them into messages.
//
//   chat_server [--port N] [--port-file PATH]
//
// A client sends "/nick NAME", "/join ROOM", "/who", "/quit", or a line to say in its room. On SIGINT or
// SIGTERM every client is told so and disconnected, and the server exits with 0.
#include <cohort/cohort.hpp>
#include <cohort/server.hpp>

#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

namespace asio = boost::asio;

namespace {

constexpr std::size_t max_line = 4096;
constexpr std::size_t session_mailbox = 1024;  // lines waiting to go out to one client

/// One client's writing side: lines it is sent are written one whole line at a time.
class Session {
 public:
  explicit Session(std::shared_ptr<cohort::Server::Socket> socket) : socket_(std::move(socket)) {}

  cohort::task<void> deliver(std::string line) {
    line += '\n';
    boost::system::error_code ec;  // a client that has gone is the reader's business
    co_await asio::async_write(*socket_, asio::buffer(line), asio::redirect_error(asio::use_awaitable, ec));
  }

  /// Says goodbye and ends the connection (the reader sees end of file).
  cohort::task<void> disconnect(std::string why) {
    co_await deliver(std::move(why));
    boost::system::error_code ignored;
    socket_->shutdown(cohort::Server::Socket::shutdown_both, ignored);
  }

 private:
  std::shared_ptr<cohort::Server::Socket> socket_;
};

/// A room: who is in it, and what they say to each other.
class Room {
 public:
  explicit Room(std::string name) : name_(std::move(name)) {}

  /// Adds `nick`; false if somebody in the room has that name already.
  bool join(std::string nick, cohort::ActorRef<Session> session) {
    if (members_.contains(nick)) return false;
    announce("* " + nick + " joined " + name_, "");
    members_.emplace(std::move(nick), std::move(session));
    return true;
  }

  void leave(const std::string& nick) {
    if (members_.erase(nick) > 0) announce("* " + nick + " left " + name_, "");
  }

  void say(const std::string& nick, const std::string& text) { announce("[" + name_ + "] " + nick + ": " + text, nick); }

  std::string who() const {
    std::string names;
    for (const auto& [nick, session] : members_) names += (names.empty() ? "" : ", ") + nick;
    return "in " + name_ + ": " + names;
  }

 private:
  /// To every member but `except`. A member whose mailbox is full is too slow to keep: it is dropped
  /// rather than let its backlog grow without bound.
  void announce(const std::string& line, const std::string& except) {
    for (auto it = members_.begin(); it != members_.end();) {
      if (it->first == except) {
        ++it;
        continue;
      }
      try {
        it->second.tell(&Session::deliver, line);
        ++it;
      } catch (const cohort::Full&) {
        std::cerr << "room " << name_ << ": dropped " << it->first << ", who does not keep up\n";
        it = members_.erase(it);
      } catch (const cohort::ActorDeadError&) {
        it = members_.erase(it);
      }
    }
  }

  std::string name_;
  std::map<std::string, cohort::ActorRef<Session>> members_;
};

/// Finds rooms by name, making them on first use, and knows every client, rooms or not.
class Lobby {
 public:
  cohort::ActorRef<Room> room(const std::string& name) {
    auto found = rooms_.find(name);
    if (found == rooms_.end()) found = rooms_.emplace(name, cohort::spawn_actor<Room>(name)).first;
    return found->second;
  }

  void arrive(cohort::ActorRef<Session> session) { sessions_.insert(std::move(session)); }
  void depart(const cohort::ActorRef<Session>& session) { sessions_.erase(session); }

  /// Tells every client the server is stopping and disconnects it, then stops the rooms.
  cohort::task<void> close() {
    for (const auto& session : sessions_) {
      try {
        session.tell(&Session::disconnect, std::string("* the server is shutting down"));
      } catch (const cohort::Error&) {
        // Full or gone: the server cancels that connection when its drain time is up.
      }
    }
    sessions_.clear();
    for (auto& [name, room] : rooms_) co_await room.stop();
    rooms_.clear();
  }

 private:
  std::map<std::string, cohort::ActorRef<Room>> rooms_;
  std::unordered_set<cohort::ActorRef<Session>> sessions_;
};

/// One connection: reads lines and acts on them until the client quits or goes.
cohort::task<void> serve_client(cohort::ActorRef<Lobby> lobby, const cohort::Server& server, cohort::Server::Socket accepted) {
  auto socket = std::make_shared<cohort::Server::Socket>(std::move(accepted));
  auto session = cohort::spawn_actor<Session>({.mailbox_size = session_mailbox}, socket);
  lobby.tell(&Lobby::arrive, session);
  std::string nick;
  std::optional<cohort::ActorRef<Room>> room;
  session.tell(&Session::deliver, std::string("welcome: /nick NAME, /join ROOM, /who, /quit; other lines are said to your room"));
  std::string buffer;
  while (!server.closing()) {
    boost::system::error_code ec;
    const std::size_t n = co_await asio::async_read_until(*socket, asio::dynamic_buffer(buffer, max_line + 1), '\n',
                                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::not_found) {
      co_await session.ask(&Session::disconnect, std::string("error: a line may have at most 4096 bytes"));
      break;
    }
    if (ec) break;
    std::string line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string_view text = line;

    if (text.starts_with("/nick ")) {
      if (room) {
        session.tell(&Session::deliver, std::string("error: change your name before you join a room"));
      } else {
        nick = text.substr(6);
        session.tell(&Session::deliver, "you are " + nick);
      }
    } else if (text.starts_with("/join ")) {
      if (nick.empty()) {
        session.tell(&Session::deliver, std::string("error: say /nick NAME first"));
        continue;
      }
      if (room) co_await room->ask(&Room::leave, nick);
      const std::string name(text.substr(6));
      auto next = co_await lobby.ask(&Lobby::room, name);
      const bool joined = co_await next.ask(&Room::join, nick, session);
      if (joined) {
        room = next;
        const std::string members = co_await next.ask(&Room::who);
        session.tell(&Session::deliver, "joined " + name + "; " + members);
      } else {
        room.reset();
        session.tell(&Session::deliver, "error: " + nick + " is taken in " + name);
      }
    } else if (text == "/who") {
      if (!room) {
        session.tell(&Session::deliver, std::string("error: /join a room first"));
        continue;
      }
      const std::string members = co_await room->ask(&Room::who);
      session.tell(&Session::deliver, members);
    } else if (text == "/quit") {
      co_await session.ask(&Session::disconnect, std::string("bye"));
      break;
    } else if (!text.empty()) {
      if (room)
        room->tell(&Room::say, nick, line);
      else
        session.tell(&Session::deliver, std::string("error: /join a room first"));
    }
  }
  if (room) {
    try {
      co_await room->ask(&Room::leave, nick);
    } catch (const cohort::ActorDeadError&) {
      // The room has closed: the server is stopping.
    }
  }
  lobby.tell(&Lobby::depart, session);  // the lobby stops only once every connection has ended
  co_await session.stop();
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  std::uint16_t port = 0;
  std::string port_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port")
      port = static_cast<std::uint16_t>(std::stoul(argv[i + 1]));
    else if (flag == "--port-file")
      port_file = argv[i + 1];
  }
  cohort::run([&]() -> cohort::task<void> {
    auto lobby = cohort::spawn_actor<Lobby>();
    std::unique_ptr<cohort::Server> server;
    server = std::make_unique<cohort::Server>(
        cohort::ServerOptions{.port = port, .drain_timeout = std::chrono::seconds(5)},
        [lobby, &server](cohort::Server::Socket socket) { return serve_client(lobby, *server, std::move(socket)); });
    std::cout << "chat server on 127.0.0.1:" << server->port() << std::endl;
    if (!port_file.empty()) {
      std::ofstream(port_file + ".partial") << server->port() << "\n";
      std::rename((port_file + ".partial").c_str(), port_file.c_str());
    }
    // When the stop begins, the lobby says goodbye to every client, so their connections end at once.
    auto goodbye = cohort::spawn([](cohort::Server& server, cohort::ActorRef<Lobby> lobby) -> cohort::task<void> {
      co_await server.wait_closing();
      co_await lobby.ask(&Lobby::close);
    }(*server, lobby));
    co_await server->serve_forever();
    co_await goodbye.async_get();
    co_await lobby.stop();
    std::cout << "stopped gracefully after " << server->accepted_connections() << " connections" << std::endl;
  }());
}
