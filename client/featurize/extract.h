// `mmfuse extract`: a manifest of media files -> a dataset file
// (data/dataset_io.h) of feature sequences, computed by the featurizers of a
// model config. Bad lines are reported (line, file, what was wrong) and
// skipped; the rest goes on.
#ifndef MMFUSE_CLIENT_FEATURIZE_EXTRACT_H_
#define MMFUSE_CLIENT_FEATURIZE_EXTRACT_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mmfuse::featurize {

enum class Progress { kAuto, kOn, kOff };

struct ExtractOptions {
  // JSON-lines manifest (manifest.h). Required.
  std::string manifest_path;
  // config.pbtxt with the featurizers, or a package directory holding one.
  // Required.
  std::string featurizers_path;
  // Label names, one per line; empty = labels.txt beside the config.
  std::string labels_path;
  // Dataset file written (replaced only when the run succeeds). Required.
  std::string out_path;
  // Any bad line fails the run (and nothing is written).
  bool strict = false;
  // Threads featurizing lines (output order is the manifest's). [1, 64].
  // Default 1.
  int jobs = 1;
  // Progress bar on `log`: kAuto = only when `log` is a terminal.
  Progress progress = Progress::kAuto;
  // Bad lines and warnings go here. Not owned; nullptr = stderr.
  std::FILE* log = nullptr;
};

struct ExtractResult {
  int64_t lines = 0;    // Non-blank manifest lines.
  int64_t written = 0;  // Examples written.
  // One message per skipped line: "<manifest>:<line>: <what was wrong>".
  std::vector<std::string> errors;
};

// Runs the extraction. An error for setup problems (unreadable manifest,
// config or labels, unwritable output), for nothing written, or with
// `strict` for any bad line; else the counts (bad lines listed in `errors`).
absl::StatusOr<ExtractResult> Extract(const ExtractOptions& options);

// Label names of a labels file (one per line, trailing blank lines ignored).
absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_EXTRACT_H_
