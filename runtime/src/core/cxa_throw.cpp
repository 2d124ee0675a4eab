// __cxa_throw, which every throw expression calls, defined here so that a worker can note where each
// exception is thrown (throw_site.cpp); it then hands the throw to the C++ runtime's own __cxa_throw, the
// next definition (found with dlsym), so exceptions behave exactly as before. A program linking cohort
// gets this definition for its own throw expressions. This file includes no C++ ABI header: the compiler
// declares __cxa_throw itself, with `void*` for the type, which <cxxabi.h> would contradict.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace cohort::detail {

using Destroy = void (*)(void*);
Destroy note_throw(void* object, Destroy destroy) noexcept;

bool throw_hook_linked() noexcept { return true; }

}  // namespace cohort::detail

extern "C" [[noreturn]] void __cxa_throw(void* object, void* type, void (*destroy)(void*)) {
  using CxaThrow = void (*)(void*, void*, void (*)(void*));
  static const auto next = reinterpret_cast<CxaThrow>(::dlsym(RTLD_NEXT, "__cxa_throw"));
  if (next == nullptr) {
    std::fputs("cohort: the C++ runtime's __cxa_throw cannot be found\n", stderr);
    std::abort();
  }
  next(object, type, cohort::detail::note_throw(object, destroy));
  __builtin_unreachable();
}
