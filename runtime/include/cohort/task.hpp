// task<T>: a coroutine on cohort's event loop (Python: a coroutine object).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace cohort {

/// The coroutine type of every cohort API: `task<int> f() { co_return 42; }`.
template <class T = void>
using task = boost::asio::awaitable<T>;

/// The executor every task runs on: a strand of a Runtime's event loop, or any Asio executor.
using Executor = boost::asio::any_io_executor;

}  // namespace cohort
