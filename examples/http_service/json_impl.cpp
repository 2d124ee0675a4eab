// Boost.JSON compiled into the example (header-only use: this is its one translation unit).
#include <boost/json/src.hpp>
