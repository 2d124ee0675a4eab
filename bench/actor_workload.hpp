// The local-actor workload of anchors/pykka_actor.py (the shared anchor 15), shared by cohort's driver and
// its CAF peer so that both run exactly what the anchor runs.
#pragma once

#include "anchor_driver.hpp"

namespace cohort_bench {

/// actor_ask_rtt: this many asks of add(1), one at a time; microseconds per ask.
inline constexpr long actor_asks = 20'000;
/// actor_tell: this many tells of add(1), then one ask; messages per second.
inline constexpr long actor_tells = 200'000;

}  // namespace cohort_bench
