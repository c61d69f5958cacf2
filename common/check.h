// MMFUSE_CHECK: guards invariants (never input: input errors are statuses).
// Abseil 20220623 has no CHECK of its own; this prints and aborts.
#ifndef MMFUSE_COMMON_CHECK_H_
#define MMFUSE_COMMON_CHECK_H_

#include <string_view>

namespace mmfuse::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              std::string_view message);
}  // namespace mmfuse::internal

// MMFUSE_CHECK(ptr != nullptr, "worker needs a processor");
#define MMFUSE_CHECK(condition, message)                                          \
  do {                                                                            \
    if (!(condition)) {                                                           \
      ::mmfuse::internal::CheckFailed(__FILE__, __LINE__, #condition, (message)); \
    }                                                                             \
  } while (0)

#endif  // MMFUSE_COMMON_CHECK_H_
