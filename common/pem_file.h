// ReadPemFile: the contents of a PEM file named by a TLS option (a
// certificate, key or CA bundle), checked to hold a PEM block. gRPC would
// only fail at the first handshake; reading through this refuses a wrong
// file at start-up instead, naming the option and the path.
//
// Thread-safety: thread-safe (no shared state).
#ifndef MMFUSE_COMMON_PEM_FILE_H_
#define MMFUSE_COMMON_PEM_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace mmfuse {

// The contents of the PEM file `path`, given as option `field` (used only in
// errors). NOT_FOUND if the file cannot be read; INVALID_ARGUMENT if it holds
// no "-----BEGIN " line.
absl::StatusOr<std::string> ReadPemFile(const std::string& field, const std::string& path);

}  // namespace mmfuse

#endif  // MMFUSE_COMMON_PEM_FILE_H_
