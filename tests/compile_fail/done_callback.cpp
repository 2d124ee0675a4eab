// add_done_callback with a callback that takes neither a Future nor nothing fails with one
// static_assert that names the accepted forms; generic and declared forms compile.
#include "cohort/future.hpp"

int main() {
  cohort::Promise<int> promise;
  auto future = promise.get_future();
#ifdef COHORT_MUST_NOT_COMPILE
  future.add_done_callback([](int value) { (void)value; });  // the value, not the future
#else
  future.add_done_callback([](auto& done) { (void)done.get(); });
  future.add_done_callback([](const auto& done) { (void)done.done(); });
  future.add_done_callback([](const cohort::Future<int>& done) { (void)done.done(); });
  future.add_done_callback([] {});
#endif
  promise.set_value(1);
}
