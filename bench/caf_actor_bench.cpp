// The CAF 0.17 peer of actor_bench.cpp (Debian's libcaf-dev): the same Counter as an event-based actor on
// CAF's work-stealing scheduler, reached from a scoped_actor (a blocking actor on this thread):
//   actor_ask_rtt: 20,000 request(...).receive(...) of add(1), one at a time; microseconds per request.
//   actor_tell:    200,000 anon_send(add 1), then one request; messages per second.
// Prints JSON lines named "caf_" + the anchor's name.
#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "actor_workload.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

constexpr long asks = cohort_bench::actor_asks;
constexpr long tells = cohort_bench::actor_tells;

caf::behavior counter(caf::event_based_actor*, std::shared_ptr<long> n) {
  return {[n](long k) { return *n += k; }};
}

long request(caf::scoped_actor& self, const caf::actor& target, long k) {
  long reply = -1;
  self->request(target, caf::infinite, k)
      .receive([&](long value) { reply = value; },
               [&](caf::error& e) { throw std::runtime_error(to_string(e)); });
  return reply;
}

}  // namespace

int main(int argc, char** argv) {
  caf::actor_system_config config;
  caf::actor_system system{config};
  auto target = system.spawn(counter, std::make_shared<long>(0));
  caf::scoped_actor self{system};
  if (cohort_bench::workload_wanted(argc, argv, "actor_ask_rtt"))
    emit_like_anchor("caf_actor_ask_rtt", measure_like_anchor([&] {
                       const auto start = Clock::now();
                       for (long i = 0; i < asks; ++i) request(self, target, 1);
                       return seconds_since(start) / asks * 1e6;
                     }),
                     "us/call");
  if (cohort_bench::workload_wanted(argc, argv, "actor_tell"))
    emit_like_anchor("caf_actor_tell", measure_like_anchor([&] {
                       const long before = request(self, target, 0);
                       const auto start = Clock::now();
                       for (long i = 0; i < tells; ++i) caf::anon_send(target, 1L);
                       const long after = request(self, target, 0);
                       const double elapsed = seconds_since(start);
                       if (after != before + tells) throw std::logic_error("lost messages");
                       return tells / elapsed;
                     }),
                     "msgs/s");
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}
