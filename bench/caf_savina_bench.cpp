// CAF 0.17's side of the Savina benchmarks and of the idle-actor count (savina_workload.hpp): event-based
// actors on CAF's default work-stealing scheduler, started and awaited from this thread. Prints one JSON
// line per workload, named "caf_" + the workload.
// Usage: caf_savina_bench [savina_ping_pong] [savina_thread_ring] [savina_counting] [idle_actors]
#include <caf/all.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <vector>

#include "savina_workload.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

// --- ping-pong: pong answers each count to whoever sent it ---

caf::behavior pong(caf::event_based_actor* self) {
  return {[self](long left) { self->send(caf::actor_cast<caf::actor>(self->current_sender()), left); }};
}

caf::behavior ping(caf::event_based_actor* self, caf::actor peer, std::shared_ptr<std::promise<void>> done) {
  return {[self, peer, done](long left) {
    if (left == 0) {
      done->set_value();
      self->quit();
    } else {
      self->send(peer, left - 1);
    }
  }};
}

double ping_pong_once(caf::actor_system& system) {
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  auto peer = system.spawn(pong);
  auto pinger = system.spawn(ping, peer, done);
  const auto start = Clock::now();
  caf::send_as(pinger, peer, cohort_bench::ping_pongs);  // sent "from" ping, so pong answers ping
  finished.wait();
  const double elapsed = seconds_since(start);
  caf::anon_send_exit(peer, caf::exit_reason::user_shutdown);
  return 2.0 * static_cast<double>(cohort_bench::ping_pongs) / elapsed;
}

// --- thread ring ---

struct RingState {
  caf::actor next;
};

caf::behavior ring_member(caf::stateful_actor<RingState>* self, std::shared_ptr<std::promise<void>> done) {
  return {[self](caf::actor next) { self->state.next = std::move(next); },
          [self, done](long left) {
            if (left == 0)
              done->set_value();
            else
              self->send(self->state.next, left - 1);
          }};
}

double thread_ring_once(caf::actor_system& system) {
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  std::vector<caf::actor> ring;
  for (long i = 0; i < cohort_bench::ring_actors; ++i) ring.push_back(system.spawn(ring_member, done));
  {
    caf::scoped_actor self{system};
    for (std::size_t i = 0; i < ring.size(); ++i) self->send(ring[i], ring[(i + 1) % ring.size()]);
  }
  const auto start = Clock::now();
  caf::anon_send(ring[0], cohort_bench::ring_hops);
  finished.wait();
  const double elapsed = seconds_since(start);
  for (auto& member : ring) caf::anon_send_exit(member, caf::exit_reason::user_shutdown);
  return static_cast<double>(cohort_bench::ring_hops) / elapsed;
}

// --- counting actor: a producer actor sends the increments, then requests the total ---

caf::behavior counter(caf::event_based_actor*, std::shared_ptr<long> n) {
  return {[n](caf::put_atom) { ++*n; }, [n](caf::get_atom) { return *n; }};
}

caf::behavior producer(caf::event_based_actor* self, std::shared_ptr<std::promise<long>> total) {
  return {[self, total](const caf::actor& target, long n) {
    for (long i = 0; i < n; ++i) self->send(target, caf::put_atom::value);
    self->request(target, caf::infinite, caf::get_atom::value).then([self, total](long value) {
      total->set_value(value);
      self->quit();
    });
  }};
}

double counting_once(caf::actor_system& system) {
  auto total = std::make_shared<std::promise<long>>();
  auto result = total->get_future();
  auto target = system.spawn(counter, std::make_shared<long>(0));
  auto source = system.spawn(producer, total);
  const auto start = Clock::now();
  caf::anon_send(source, target, cohort_bench::counting_messages);
  const long counted = result.get();
  const double elapsed = seconds_since(start);
  if (counted != cohort_bench::counting_messages) throw std::logic_error("lost increments");
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
  return static_cast<double>(cohort_bench::counting_messages) / elapsed;
}

// --- idle actors ---

caf::behavior idle_plain(caf::stateful_actor<long>* self) {
  return {[self](long k) { return self->state += k; }};
}

void idle_actors(caf::actor_system& system) {
  const double before = cohort_bench::resident_bytes();
  std::vector<caf::actor> actors;
  actors.reserve(cohort_bench::idle_actors);
  const auto start = Clock::now();
  for (long i = 0; i < cohort_bench::idle_actors; ++i) actors.push_back(system.spawn(idle_plain));
  const double elapsed = seconds_since(start);
  const double bytes = (cohort_bench::resident_bytes() - before) / static_cast<double>(cohort_bench::idle_actors);
  caf::scoped_actor self{system};
  for (auto* target : {&actors.front(), &actors.back()}) {
    long reply = 0;
    self->request(*target, caf::infinite, 1L).receive([&](long value) { reply = value; }, [](caf::error&) {});
    if (reply != 1) throw std::logic_error("an idle actor did not answer");
  }
  emit_like_anchor("caf_idle_actors_spawn", {elapsed / static_cast<double>(cohort_bench::idle_actors) * 1e6}, "us/actor");
  emit_like_anchor("caf_idle_actors_bytes", {bytes}, "bytes/actor");
  for (auto& actor : actors) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

}  // namespace

int main(int argc, char** argv) {
  caf::actor_system_config config;
  caf::actor_system system{config};
  const auto wanted = [&](const char* name) { return cohort_bench::workload_wanted(argc, argv, name); };
  const auto measure = [&](double (*once)(caf::actor_system&)) {
    return measure_like_anchor([&] { return once(system); });
  };
  if (wanted("savina_ping_pong")) emit_like_anchor("caf_savina_ping_pong", measure(ping_pong_once), "msgs/s");
  if (wanted("savina_thread_ring")) emit_like_anchor("caf_savina_thread_ring", measure(thread_ring_once), "hops/s");
  if (wanted("savina_counting")) emit_like_anchor("caf_savina_counting", measure(counting_once), "msgs/s");
  if (wanted("idle_actors")) idle_actors(system);
}
