#!/usr/bin/env bash
# Builds cohort out of tree and runs its whole test suite: unit tests, examples and consumer projects.
# Usage: scripts/test.sh [release|debug|asan|tsan]   (default: release)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"

scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
