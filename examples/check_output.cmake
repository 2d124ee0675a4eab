# Runs one example and checks what it printed; used by cohort_add_example through `cmake -P`.
# A plain PASS_REGULAR_EXPRESSION would pass on any one match and ignore a crash after the output, so this
# requires exit status 0, every EXPECT_<i> pattern to match and no REJECT_<i> pattern to match.
#
# Inputs (-D): EXAMPLE (the executable), TIMEOUT (seconds), ARGS_COUNT / ARGS_<i> (its arguments),
# EXPECT_COUNT / EXPECT_<i> and REJECT_COUNT / REJECT_<i> (CMake regexes matched against stdout and
# stderr together; `.` also matches a newline, so "a.*b" means "a, later b").
cmake_minimum_required(VERSION 3.25)

if(NOT DEFINED EXAMPLE)
  message(FATAL_ERROR "check_output.cmake: EXAMPLE is not set")
endif()
if(NOT DEFINED TIMEOUT)
  set(TIMEOUT 60)
endif()

set(arguments "")
if(ARGS_COUNT GREATER 0)
  math(EXPR last "${ARGS_COUNT} - 1")
  foreach(i RANGE ${last})
    list(APPEND arguments "${ARGS_${i}}")
  endforeach()
endif()

execute_process(
  COMMAND "${EXAMPLE}" ${arguments}
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  RESULT_VARIABLE status
  TIMEOUT ${TIMEOUT})

# Always shown, so a failing check can be read next to the output it judged.
message("${output}")

set(failures "")
if(NOT status STREQUAL "0")
  string(APPEND failures "  exited with '${status}', expected 0\n")
endif()
if(EXPECT_COUNT GREATER 0)
  math(EXPR last "${EXPECT_COUNT} - 1")
  foreach(i RANGE ${last})
    if(NOT output MATCHES "${EXPECT_${i}}")
      string(APPEND failures "  missing: ${EXPECT_${i}}\n")
    endif()
  endforeach()
endif()
if(REJECT_COUNT GREATER 0)
  math(EXPR last "${REJECT_COUNT} - 1")
  foreach(i RANGE ${last})
    if(output MATCHES "${REJECT_${i}}")
      string(APPEND failures "  unexpected: ${REJECT_${i}} (matched '${CMAKE_MATCH_0}')\n")
    endif()
  endforeach()
endif()

if(failures)
  message(FATAL_ERROR "example ${EXAMPLE} failed its output check:\n${failures}")
endif()
