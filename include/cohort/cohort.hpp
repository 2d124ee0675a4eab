// Everything cohort offers, in one include.
#pragma once

#include "cohort/codec.hpp"
#include "cohort/connection.hpp"
#include "cohort/context.hpp"
#include "cohort/error.hpp"
#include "cohort/future.hpp"
#include "cohort/gather.hpp"
#include "cohort/init.hpp"
#include "cohort/log.hpp"
#include "cohort/process.hpp"
#include "cohort/runtime.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"
#include "cohort/task.hpp"
#include "cohort/wait_for.hpp"

#include "cohort/as_completed.hpp"
#include "cohort/map_result.hpp"
#include "cohort/run_in_executor.hpp"
#include "cohort/thread_pool_executor.hpp"
#include "cohort/wait.hpp"
