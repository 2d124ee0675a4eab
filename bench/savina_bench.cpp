// cohort's side of the Savina benchmarks and of the idle-actor count (savina_workload.hpp): every actor
// on one Runtime with one loop thread. Prints one JSON line per workload, named "cohort_" + the workload.
// Usage: savina_bench [savina_ping_pong] [savina_thread_ring] [savina_counting] [idle_actors]
#include <cohort/cohort.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <vector>

#include "savina_workload.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

// --- ping-pong ---

class Ping;

class Pong {
 public:
  void set_peer(cohort::ActorRef<Ping> ping) { ping_.emplace(std::move(ping)); }
  void ping(long left);

 private:
  std::optional<cohort::ActorRef<Ping>> ping_;
};

class Ping {
 public:
  Ping(cohort::ActorRef<Pong> pong, cohort::Promise<void>* done) : pong_(std::move(pong)), done_(done) {}
  void pong(long left) {
    if (left == 0)
      done_->set_value();
    else
      pong_.tell(&Pong::ping, left - 1);
  }

 private:
  cohort::ActorRef<Pong> pong_;
  cohort::Promise<void>* done_;
};

void Pong::ping(long left) { ping_->tell(&Ping::pong, left); }

cohort::task<double> ping_pong_once() {
  cohort::Promise<void> done;
  auto pong = cohort::spawn_actor<Pong>();
  auto ping = cohort::spawn_actor<Ping>(pong, &done);
  co_await pong.ask(&Pong::set_peer, ping);
  const auto start = Clock::now();
  pong.tell(&Pong::ping, cohort_bench::ping_pongs);
  co_await done.get_future().async_get();
  const double elapsed = seconds_since(start);
  co_await ping.stop();
  co_await pong.stop();
  co_return 2.0 * static_cast<double>(cohort_bench::ping_pongs) / elapsed;
}

// --- thread ring ---

class RingMember {
 public:
  explicit RingMember(cohort::Promise<void>* done) : done_(done) {}
  void set_next(cohort::ActorRef<RingMember> next) { next_.emplace(std::move(next)); }
  void token(long left) {
    if (left == 0)
      done_->set_value();
    else
      next_->tell(&RingMember::token, left - 1);
  }
  void unlink() { next_.reset(); }  // the ring's refs form a cycle; broken before the stop

 private:
  std::optional<cohort::ActorRef<RingMember>> next_;
  cohort::Promise<void>* done_;
};

cohort::task<double> thread_ring_once() {
  cohort::Promise<void> done;
  std::vector<cohort::ActorRef<RingMember>> ring;
  for (long i = 0; i < cohort_bench::ring_actors; ++i) ring.push_back(cohort::spawn_actor<RingMember>(&done));
  for (std::size_t i = 0; i < ring.size(); ++i) co_await ring[i].ask(&RingMember::set_next, ring[(i + 1) % ring.size()]);
  const auto start = Clock::now();
  ring[0].tell(&RingMember::token, cohort_bench::ring_hops);
  co_await done.get_future().async_get();
  const double elapsed = seconds_since(start);
  for (auto& member : ring) {
    co_await member.ask(&RingMember::unlink);
    co_await member.stop();
  }
  co_return static_cast<double>(cohort_bench::ring_hops) / elapsed;
}

// --- counting actor ---

class Counter {
 public:
  void increment() { ++n_; }
  long get() const { return n_; }

 private:
  long n_ = 0;
};

class Producer {
 public:
  cohort::task<long> produce(cohort::ActorRef<Counter> counter, long n) {
    for (long i = 0; i < n; ++i) counter.tell(&Counter::increment);
    co_return co_await counter.ask(&Counter::get);
  }
};

cohort::task<double> counting_once() {
  auto counter = cohort::spawn_actor<Counter>();
  auto producer = cohort::spawn_actor<Producer>();
  const auto start = Clock::now();
  const long total = co_await producer.ask(&Producer::produce, counter, cohort_bench::counting_messages);
  const double elapsed = seconds_since(start);
  if (total != cohort_bench::counting_messages) throw std::logic_error("lost increments");
  co_await producer.stop();
  co_await counter.stop();
  co_return static_cast<double>(cohort_bench::counting_messages) / elapsed;
}

// --- idle actors ---

class Idle {
 public:
  long add(long k) { return n_ += k; }

 private:
  long n_ = 0;
};

/// Spawns the idle actors, checks that the first and last answer, and reports both figures.
cohort::task<void> idle_actors() {
  const double before = cohort_bench::resident_bytes();
  std::vector<cohort::ActorRef<Idle>> actors;
  actors.reserve(cohort_bench::idle_actors);
  const auto start = Clock::now();
  for (long i = 0; i < cohort_bench::idle_actors; ++i) actors.push_back(cohort::spawn_actor<Idle>());
  const double elapsed = seconds_since(start);
  const double bytes = (cohort_bench::resident_bytes() - before) / static_cast<double>(cohort_bench::idle_actors);
  const long first = co_await actors.front().ask(&Idle::add, 1L);
  const long last = co_await actors.back().ask(&Idle::add, 1L);
  if (first != 1 || last != 1) throw std::logic_error("an idle actor did not answer");
  emit_like_anchor("cohort_idle_actors_spawn", {elapsed / static_cast<double>(cohort_bench::idle_actors) * 1e6}, "us/actor");
  emit_like_anchor("cohort_idle_actors_bytes", {bytes}, "bytes/actor");
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  const auto wanted = [&](const char* name) { return cohort_bench::workload_wanted(argc, argv, name); };
  cohort::Runtime runtime(1);
  const auto on_loop = [&](auto once) { return measure_like_anchor([&] { return runtime.run(once()); }); };
  if (wanted("savina_ping_pong")) emit_like_anchor("cohort_savina_ping_pong", on_loop(ping_pong_once), "msgs/s");
  if (wanted("savina_thread_ring")) emit_like_anchor("cohort_savina_thread_ring", on_loop(thread_ring_once), "hops/s");
  if (wanted("savina_counting")) emit_like_anchor("cohort_savina_counting", on_loop(counting_once), "msgs/s");
  if (wanted("idle_actors")) runtime.run(idle_actors());
}
