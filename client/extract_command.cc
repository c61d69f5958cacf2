// `mmfuse extract`: flags -> featurize::ExtractOptions (client/featurize/
// extract.h); prints a summary and sets the exit code.
#include "client/extract_command.h"

#include <cstdio>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "client/featurize/extract.h"

ABSL_DECLARE_FLAG(std::string, out);
ABSL_FLAG(std::string, manifest, "",
          "extract: JSON-lines manifest ({\"label\": ..., \"audio\"|\"image\"|\"video\"|\"text\": "
          "...} per line; paths relative to the manifest).");
ABSL_FLAG(std::string, featurizers, "",
          "extract: config.pbtxt (or package directory) with the featurizers; classify: take the "
          "featurizers from it instead of from the server.");
ABSL_FLAG(std::string, labels, "",
          "extract: label names, one per line; empty = labels.txt beside the config.");
ABSL_FLAG(bool, strict, false, "extract: fail (write nothing) if any manifest line is bad.");
ABSL_FLAG(int, jobs, 1, "extract: threads featurizing manifest lines.");
ABSL_FLAG(std::string, progress, "auto", "extract: progress bar: auto (on a terminal), on, off.");

namespace mmfuse::client {

int RunExtractCommand() {
  featurize::ExtractOptions options;
  options.manifest_path = absl::GetFlag(FLAGS_manifest);
  options.featurizers_path = absl::GetFlag(FLAGS_featurizers);
  options.labels_path = absl::GetFlag(FLAGS_labels);
  options.out_path = absl::GetFlag(FLAGS_out);
  options.strict = absl::GetFlag(FLAGS_strict);
  options.jobs = absl::GetFlag(FLAGS_jobs);
  const std::string progress = absl::GetFlag(FLAGS_progress);
  if (progress == "on") {
    options.progress = featurize::Progress::kOn;
  } else if (progress == "off") {
    options.progress = featurize::Progress::kOff;
  } else if (progress != "auto") {
    std::fprintf(stderr, "mmfuse: --progress=%s is not one of auto, on, off\n", progress.c_str());
    return 2;
  }
  absl::StatusOr<featurize::ExtractResult> result = featurize::Extract(options);
  if (!result.ok()) {
    std::fprintf(stderr, "mmfuse: %s\n", std::string(result.status().ToString()).c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %lld of %lld examples to %s (%zu bad lines skipped)\n",
               static_cast<long long>(result->written), static_cast<long long>(result->lines),
               options.out_path.c_str(), result->errors.size());
  return 0;
}

}  // namespace mmfuse::client
