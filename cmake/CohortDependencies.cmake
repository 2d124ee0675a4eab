# Dependencies, all from Debian's packages (see scripts/install-deps.sh). Also used by cohortConfig.cmake.
include(GNUInstallDirs)
find_package(Threads REQUIRED)
find_package(Boost 1.81...<1.82 CONFIG REQUIRED)
find_package(cereal CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
