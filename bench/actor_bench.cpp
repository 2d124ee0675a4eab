// Local actors, measured as anchors/pykka_actor.py measures a Pykka ThreadingActor (the shared anchor 15):
//   actor_ask_rtt: 20,000 asks of Counter::add(1), one at a time; microseconds per ask.
//   actor_tell:    200,000 tells of Counter::add(1), then one ask; messages per second.
// Two ways to reach the actor: from a coroutine on the actor's own loop (co_await ask; "on one loop"),
// and from a plain thread to an actor on another thread (call().get(), as Pykka's proxy.add(1).get()).
// And a process actor, as anchors/manager_object_call.py measures a BaseManager-hosted object (anchor 16):
//   process_actor_call: 10,000 asks of Counter::add(1) one at a time, from a coroutine; calls per second.
// Prints one JSON line per workload ("cohort_" + the anchor's name, with "_thread" for the second way).
// Usage: actor_bench [actor_ask_rtt] [actor_tell] [actor_ask_rtt_thread] [actor_tell_thread]
//                    [process_actor_call]
#include <cohort/cohort.hpp>

#include <chrono>
#include <stdexcept>

#include "actor_workload.hpp"

namespace {

using cohort_bench::emit_like_anchor;
using cohort_bench::measure_like_anchor;
using cohort_bench::seconds_since;
using Clock = std::chrono::steady_clock;

constexpr long asks = cohort_bench::actor_asks;
constexpr long tells = cohort_bench::actor_tells;
constexpr long process_calls = 10'000;

class Counter {
 public:
  long add(long k) { return n_ += k; }
  long get() const { return n_; }

 private:
  long n_ = 0;
};

/// Seconds for `n` asks of add(1), one at a time; checks that every one arrived.
cohort::task<double> timed_asks(cohort::ActorRef<Counter> counter, long n) {
  const long before = co_await counter.ask(&Counter::get);
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) co_await counter.ask(&Counter::add, 1L);
  const double elapsed = seconds_since(start);
  if (co_await counter.ask(&Counter::get) != before + n) throw std::logic_error("lost asks");
  co_return elapsed;
}

cohort::task<double> ask_rtt_once(cohort::ActorRef<Counter> counter) {
  co_return co_await timed_asks(std::move(counter), asks) / asks * 1e6;
}

cohort::task<double> tell_once(cohort::ActorRef<Counter> counter) {
  const long before = co_await counter.ask(&Counter::get);
  const auto start = Clock::now();
  for (long i = 0; i < tells; ++i) counter.tell(&Counter::add, 1L);
  const long after = co_await counter.ask(&Counter::get);
  const double elapsed = seconds_since(start);
  if (after != before + tells) throw std::logic_error("lost tells");
  co_return tells / elapsed;
}

cohort::task<double> process_call_once(cohort::ActorRef<Counter> counter) {
  co_return process_calls / co_await timed_asks(std::move(counter), process_calls);
}

}  // namespace

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  const auto wanted = [&](const char* name) { return cohort_bench::workload_wanted(argc, argv, name); };
  {
    // One loop thread runs the asking coroutine and the actor.
    cohort::Runtime runtime(1);
    auto counter = cohort::spawn_actor<Counter>({.runtime = &runtime});
    const auto on_loop = [&](auto once) {
      return measure_like_anchor([&] { return runtime.run(once(counter)); });
    };
    if (wanted("actor_ask_rtt")) emit_like_anchor("cohort_actor_ask_rtt", on_loop(ask_rtt_once), "us/call");
    if (wanted("actor_tell")) emit_like_anchor("cohort_actor_tell", on_loop(tell_once), "msgs/s");
    if (wanted("process_actor_call")) {
      // As the anchor: the worker is forked, and started before the clock.
      auto hosted = cohort::spawn_process_actor<Counter>(
          {.runtime = &runtime, .start_method = cohort::StartMethod::fork});
      emit_like_anchor("cohort_process_actor_call",
                       measure_like_anchor([&] { return runtime.run(process_call_once(hosted)); }), "calls/s");
      runtime.run(hosted.stop());
    }
  }
  // From this thread to an actor on the default runtime's loop thread.
  auto counter = cohort::spawn_actor<Counter>();
  if (wanted("actor_ask_rtt_thread"))
    emit_like_anchor("cohort_actor_ask_rtt_thread", measure_like_anchor([&] {
                       const auto start = Clock::now();
                       for (long i = 0; i < asks; ++i) counter.call(&Counter::add, 1L).get();
                       return seconds_since(start) / asks * 1e6;
                     }),
                     "us/call");
  if (wanted("actor_tell_thread"))
    emit_like_anchor("cohort_actor_tell_thread", measure_like_anchor([&] {
                       const long before = counter.call(&Counter::get).get();
                       const auto start = Clock::now();
                       for (long i = 0; i < tells; ++i) counter.tell(&Counter::add, 1L);
                       const long after = counter.call(&Counter::get).get();
                       const double elapsed = seconds_since(start);
                       if (after != before + tells) throw std::logic_error("lost tells");
                       return tells / elapsed;
                     }),
                     "msgs/s");
}
