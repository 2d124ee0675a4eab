// The mutual HMAC-SHA256 challenge of a manager's connections, on OpenSSL's libcrypto.
#include "cohort/detail/authentication.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include "cohort/error.hpp"

namespace cohort::detail {

namespace {

constexpr std::string_view challenge_tag = "#CHALLENGE#";
constexpr std::string_view welcome = "#WELCOME#";
constexpr std::string_view failure = "#FAILURE#";
constexpr std::string_view digest_tag = "{sha256}";
/// Python's size: 40 random bytes, far past any chance of a nonce seen twice.
constexpr std::size_t nonce_size = 40;
/// A handshake message is short; a longer one is not a peer of this protocol.
constexpr std::size_t handshake_limit = 256;

/// A printable start of an unexpected message, for the error.
std::string shown(std::string_view bytes) {
  std::string out;
  for (const char c : bytes.substr(0, 20)) out += (c >= 0x20 && c < 0x7f) ? c : '.';
  return bytes.size() > 20 ? out + "..." : out;
}

bool same_digest(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view message) {
  std::string digest(EVP_MAX_MD_SIZE, '\0');
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), reinterpret_cast<unsigned char*>(digest.data()), &length) == nullptr)
    throw Error("HMAC-SHA256 failed in OpenSSL");
  digest.resize(length);
  return digest;
}

std::string random_bytes(std::size_t size) {
  std::string bytes(size, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(size)) != 1)
    throw Error("OpenSSL could not draw random bytes");
  return bytes;
}

task<void> async_deliver_challenge(SocketChannel& channel, std::string authkey) {
  std::string message(digest_tag);
  message.resize(digest_tag.size() + nonce_size);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(message.data() + digest_tag.size()), static_cast<int>(nonce_size)) != 1)
    throw Error("OpenSSL could not draw the random bytes of a challenge");
  co_await channel.async_send(std::string(challenge_tag) + message);
  const std::string response = co_await channel.async_recv(handshake_limit);
  const std::string expected = std::string(digest_tag) + hmac_sha256(authkey, message);
  if (!same_digest(response, expected)) {
    co_await channel.async_send(std::string(failure));
    throw AuthenticationError(fmt::format("the peer {} answered the challenge wrongly (another authkey?)", channel.peer()));
  }
  co_await channel.async_send(std::string(welcome));
}

task<void> async_answer_challenge(SocketChannel& channel, std::string authkey) {
  const std::string challenge = co_await channel.async_recv(handshake_limit);
  if (!challenge.starts_with(challenge_tag))
    throw AuthenticationError(fmt::format("the peer {} sent '{}' where a challenge was due", channel.peer(), shown(challenge)));
  const std::string_view message = std::string_view(challenge).substr(challenge_tag.size());
  if (!message.starts_with(digest_tag) || message.size() < digest_tag.size() + 20)
    throw AuthenticationError(fmt::format("the peer {} challenged with an unknown digest ('{}')", channel.peer(), shown(message)));
  co_await channel.async_send(std::string(digest_tag) + hmac_sha256(authkey, message));
  std::string verdict;
  bool closed = false;
  try {
    verdict = co_await channel.async_recv(handshake_limit);
  } catch (const EOFError&) {
    closed = true;
  }
  if (closed || verdict == failure)
    throw AuthenticationError(fmt::format("the peer {} rejected this side's answer: the authkeys differ", channel.peer()));
  if (verdict != welcome)
    throw AuthenticationError(fmt::format("the peer {} sent '{}' where a verdict was due", channel.peer(), shown(verdict)));
}

task<void> async_authenticate_client(SocketChannel& channel, std::string authkey) {
  co_await async_deliver_challenge(channel, authkey);
  co_await async_answer_challenge(channel, std::move(authkey));
}

task<void> async_authenticate_server(SocketChannel& channel, std::string authkey) {
  co_await async_answer_challenge(channel, authkey);
  co_await async_deliver_challenge(channel, std::move(authkey));
}

}  // namespace cohort::detail
