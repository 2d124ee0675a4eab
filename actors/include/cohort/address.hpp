// Where a manager listens or connects: a TCP host and port, or a Unix-domain socket's path (Python's
// address tuples and path strings of multiprocessing.connection).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace cohort {

class Address {
 public:
  enum class Kind : std::uint8_t { tcp, unix_socket };

  /// A TCP address: a numeric IPv4 or IPv6 host ("127.0.0.1", "0.0.0.0", "::1") or a name resolved when
  /// connecting; port 0 asks a listener for any free port (address() on the started manager tells which).
  static Address tcp(std::string host, std::uint16_t port) { return Address(Kind::tcp, std::move(host), port); }
  /// A Unix-domain socket at `path` (at most 107 bytes); a listener creates it and removes it when done.
  /// A path that begins with a NUL byte names a socket in Linux's abstract namespace: no file, gone when
  /// its listener closes (to_string shows the NUL as '@').
  static Address unix_socket(std::string path) { return Address(Kind::unix_socket, std::move(path), 0); }

  /// The loopback TCP address with a port of the system's choosing.
  Address() : Address(Kind::tcp, "127.0.0.1", 0) {}

  Kind kind() const noexcept { return kind_; }
  bool is_tcp() const noexcept { return kind_ == Kind::tcp; }
  /// TCP: the host. Empty for a Unix-domain socket.
  const std::string& host() const noexcept { return is_tcp() ? where_ : empty(); }
  /// TCP: the port. 0 for a Unix-domain socket.
  std::uint16_t port() const noexcept { return port_; }
  /// Unix-domain socket: the path. Empty for TCP.
  const std::string& path() const noexcept { return is_tcp() ? empty() : where_; }
  /// A Unix-domain socket in the abstract namespace (its path begins with a NUL byte).
  bool is_abstract() const noexcept { return !is_tcp() && !where_.empty() && where_.front() == '\0'; }

  /// "tcp://127.0.0.1:5000", "tcp://[::1]:5000" or "unix:/tmp/manager.sock", for logs and errors.
  std::string to_string() const {
    if (!is_tcp()) return "unix:" + (is_abstract() ? "@" + where_.substr(1) : where_);
    const bool v6 = where_.find(':') != std::string::npos;
    return "tcp://" + (v6 ? "[" + where_ + "]" : where_) + ":" + std::to_string(port_);
  }

  friend bool operator==(const Address&, const Address&) = default;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(kind_, where_, port_);
  }

 private:
  Address(Kind kind, std::string where, std::uint16_t port) : kind_(kind), where_(std::move(where)), port_(port) {}

  static const std::string& empty() noexcept {
    static const std::string none;
    return none;
  }

  Kind kind_;
  std::string where_;
  std::uint16_t port_;
};

}  // namespace cohort
