// Propagation helpers for absl::Status / absl::StatusOr (Abseil 20220623 has
// none of its own).
#ifndef MMFUSE_COMMON_STATUS_MACROS_H_
#define MMFUSE_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MMFUSE_RETURN_IF_ERROR(expr)                  \
  do {                                                \
    ::absl::Status mmfuse_status_ = (expr);           \
    if (!mmfuse_status_.ok()) return mmfuse_status_;  \
  } while (0)

#define MMFUSE_STATUS_CONCAT_INNER_(a, b) a##b
#define MMFUSE_STATUS_CONCAT_(a, b) MMFUSE_STATUS_CONCAT_INNER_(a, b)

// MMFUSE_ASSIGN_OR_RETURN(auto x, MakeX()); declares x or returns the error.
#define MMFUSE_ASSIGN_OR_RETURN(lhs, expr) \
  MMFUSE_ASSIGN_OR_RETURN_IMPL_(MMFUSE_STATUS_CONCAT_(mmfuse_statusor_, __LINE__), lhs, expr)
#define MMFUSE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(*statusor)

#endif  // MMFUSE_COMMON_STATUS_MACROS_H_
