#include "common/pem_file.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mmfuse {

absl::StatusOr<std::string> ReadPemFile(const std::string& field, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(field, "=", path, ": cannot read the file"));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (!absl::StrContains(contents.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "=", path, ": no PEM block (-----BEGIN ...) in the file"));
  }
  return contents.str();
}

}  // namespace mmfuse
