#include "client/featurize/file_check.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace mmfuse::featurize {

absl::StatusOr<int64_t> CheckMediaFile(const std::string& kind, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    if (error == ENOENT) {
      return absl::NotFoundError(absl::StrCat(kind, " file ", path, ": does not exist"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " file ", path, ": cannot stat: ", std::strerror(error)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " file ", path, ": not a regular file"));
  }
  if (st.st_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " file ", path, ": is empty (0 bytes)"));
  }
  if (st.st_size > kMaxMediaFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " file ", path, ": ", st.st_size,
                                                   " bytes exceeds the limit of ",
                                                   kMaxMediaFileBytes));
  }
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<std::string> ReadMediaFile(const std::string& kind, const std::string& path) {
  absl::StatusOr<int64_t> size = CheckMediaFile(kind, path);
  if (!size.ok()) return size.status();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " file ", path, ": cannot open: ", std::strerror(errno)));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (static_cast<int64_t>(bytes.size()) != *size) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " file ", path, ": read ", bytes.size(),
                                                   " of ", *size, " bytes"));
  }
  return bytes;
}

}  // namespace mmfuse::featurize
