// Manifest lines of `mmfuse extract` (docs/FEATURES.md, "Manifest"): one JSON
// object per line,
//   {"label": "3", "audio": "audio/0001.wav", "image": "images/0001.png",
//    "video": "clips/x.mp4", "text": "trois", "id": "optional"}
// every modality key optional (at least one present), paths relative to the
// manifest's directory, label a name from the model's labels.
#ifndef MMFUSE_CLIENT_FEATURIZE_MANIFEST_H_
#define MMFUSE_CLIENT_FEATURIZE_MANIFEST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/featurize/media_featurizer.h"

namespace mmfuse::featurize {

struct ManifestEntry {
  std::string label;
  std::string id;  // Empty if the line has none.
  MediaInput media;  // Paths resolved against the manifest's directory.
  // Keys the line has that the format does not know (ignored).
  std::vector<std::string> unknown_keys;
};

// Parses one manifest line. `base_dir` is the manifest's directory ("" =
// current). Errors say what is wrong (bad JSON, a key of the wrong type, no
// label, no modality).
absl::StatusOr<ManifestEntry> ParseManifestLine(absl::string_view line,
                                                const std::string& base_dir);

// `path` if absolute or `base_dir` is empty, else base_dir/path.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_MANIFEST_H_
