#!/usr/bin/env bash
# Installs cohort's build dependencies from Debian's packages. Quiet, and quick, when they are present.
# Usage: install-deps.sh [--bench]   (--bench: also the peers bench/run.sh measures cohort against)
set -euo pipefail

packages=(cmake ninja-build g++ python3 libboost1.81-all-dev libcereal-dev libspdlog-dev libfmt-dev
          libssl-dev libhiredis-dev redis-server libgtest-dev libgmock-dev libbenchmark-dev curl)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(libcaf-dev python3-pykka python3-aiohttp wrk python3-celery python3-redis python3-distributed redis-tools)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
((${#missing[@]} == 0)) && exit 0

as_root=()
[[ "$(id -u)" -ne 0 ]] && as_root=(sudo)
echo "Installing from Debian's packages: ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
