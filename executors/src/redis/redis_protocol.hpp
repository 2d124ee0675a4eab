// How RedisExecutor's clients and redis_worker's workers share a queue in Redis.
//
// Queue "q" is the stream `cohort:{q}:tasks`, read by the consumer group `workers` (at-least-once: an
// entry stays pending under the worker that read it until that worker acknowledges it). A task entry has
// one field, `task`: a RedisTask. A worker runs its call in a local process pool and then, in one Lua
// script, acknowledges and deletes the entry and adds the reply (a PoolReply, as the local pools send)
// to the submitting client's own stream `cohort:{q}:results:<client>`, field `reply`, which expires
// `result_ttl` after its last reply. The first acknowledgement wins: a task run twice (its worker was
// thought dead) answers once. The client reads its stream with XREAD, which takes nothing away, and
// trims what it has read afterwards: a reply whose read Redis answered into a crash is read again.
//
// A worker keeps the entries it holds fresh (XCLAIM JUSTID, which resets their idle time without
// counting a delivery); an entry idle for `claim_after` belonged to a worker that died, and another worker
// claims it (XAUTOCLAIM), counting the claim in the hash `cohort:{q}:claims`. A task claimed more than its
// `max_retries` times fails with the reason instead of running again.
#pragma once

#include <cereal/types/string.hpp>

#include "cohort/task.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace cohort::detail {
class RedisConnection;
}

namespace cohort::detail::redis {

inline constexpr std::string_view group = "workers";
inline constexpr std::string_view task_field = "task";

inline std::string tasks_key(std::string_view queue) { return "cohort:{" + std::string(queue) + "}:tasks"; }
inline std::string claims_key(std::string_view queue) { return "cohort:{" + std::string(queue) + "}:claims"; }
inline std::string results_key(std::string_view queue, std::string_view client) {
  return "cohort:{" + std::string(queue) + "}:results:" + std::string(client);
}

/// A task entry's `task` field.
struct RedisTask {
  std::string client;             // whose results stream gets the reply
  std::uint64_t id = 0;           // the client's id for the task (the reply's id)
  std::uint32_t max_retries = 0;  // claims after a worker's death before the task fails
  std::uint32_t result_ttl = 0;   // seconds the results stream lives after the reply is added
  std::string build;              // program_build() of the client: calls by address need the same build
  std::string call;               // the CallFrame, as cereal encodes it

  template <class Archive>
  void serialize(Archive& archive) {
    archive(client, id, max_retries, result_ttl, build, call);
  }
};

/// Makes the queue's stream and group unless they exist (the group reads from the stream's start, so
/// that tasks added before any worker came are served). cohort::Error naming the queue if Redis refuses.
task<void> make_queue(RedisConnection& connection, std::string_view queue);

/// What identifies this program's build: the executable's GNU build-id (or, without one, its size and
/// modification time). A call named by address may only run in a process of the same build.
const std::string& program_build();

/// A name for this process unique among the clients and workers of a Redis: host, pid, random.
std::string process_identity(std::string_view role);

/// KEYS: tasks, results, claims. ARGV: group, entry id, reply (empty: none), ttl in seconds.
/// Acknowledges the entry and, if this was its first acknowledgement, adds the reply. Returns 1 if it
/// did, 0 if another worker answered first.
inline constexpr std::string_view ack_script = R"lua(
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'reply', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 1
)lua";

/// KEYS: tasks, claims. ARGV: group, consumer, min idle ms, count, start cursor.
/// Claims entries idle that long (their worker died) and counts each claim. Returns {next cursor,
/// entries, claim counts}.
inline constexpr std::string_view claim_script = R"lua(
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5], 'COUNT', ARGV[4])
local counts = {}
for i, entry in ipairs(claimed[2]) do counts[i] = redis.call('HINCRBY', KEYS[2], entry[1], 1) end
return {claimed[1], claimed[2], counts}
)lua";

/// KEYS: tasks. ARGV: group, consumer, entry ids. Resets the idle time of those of the entries this
/// consumer still holds (one claimed away by another worker stays there). Returns how many.
inline constexpr std::string_view heartbeat_script = R"lua(
local held = 0
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    held = held + 1
  end
end
return held
)lua";

/// KEYS: tasks. ARGV: group, consumer. A worker that leaves removes its name from the group, unless
/// entries are still pending under it (a read whose answer it never got): those must stay to be claimed.
inline constexpr std::string_view leave_script = R"lua(
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
)lua";

/// KEYS: tasks. ARGV: group, entry ids. Deletes the entries no worker has read yet (in the stream, not
/// pending); returns their indexes among the ids, from 1.
inline constexpr std::string_view cancel_script = R"lua(
local cancelled = {}
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) == 0 and
     redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    cancelled[#cancelled + 1] = i - 1
  end
end
return cancelled
)lua";

/// KEYS: tasks, results. ARGV: the last reply read, entry ids. After a reconnection: takes the replies
/// after the last one read and tells which of the entries are gone from the stream (Redis lost them),
/// atomically, so that a task answered meanwhile is not taken for lost. Returns {replies, 1-based
/// indexes of lost entries, the id of the last reply taken (the one given if none)}.
inline constexpr std::string_view resync_script = R"lua(
local replies = {}
local last = ARGV[1]
for i, entry in ipairs(redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+')) do
  replies[i] = entry[2][2]
  last = entry[1]
end
local lost = {}
for i = 2, #ARGV do
  if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then lost[#lost + 1] = i - 1 end
end
return {replies, lost, last}
)lua";

}  // namespace cohort::detail::redis
