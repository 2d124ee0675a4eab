# Dependencies, all from Debian's packages (see scripts/install-deps.sh). Also used by cohortConfig.cmake.
include(GNUInstallDirs)
find_package(Threads REQUIRED)
find_package(Boost 1.81...<1.82 CONFIG REQUIRED)
find_package(cereal CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
# OpenSSL's libcrypto: the HMAC-SHA256 of the managers' authkey handshake and its random challenges.
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto)
# hiredis: the RESP formatting and parsing of RedisExecutor's and redis_worker's connections.
find_package(PkgConfig REQUIRED)
pkg_check_modules(hiredis REQUIRED IMPORTED_TARGET GLOBAL hiredis)
