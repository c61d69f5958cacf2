// `mmfuse tune`: measures a model package's batching on this machine and
// writes the best settings, with the table measured, into its config.pbtxt
// (batching, and the record in `tuning`). tuning/search.h says how the
// choice is made.
#ifndef MMFUSE_TUNING_TUNE_COMMAND_H_
#define MMFUSE_TUNING_TUNE_COMMAND_H_

#include <string>

#include "absl/status/status.h"
#include "tuning/search.h"
#include "tuning/served_trials.h"

namespace mmfuse::tuning {

struct TuneCommandOptions {
  std::string model_dir;  // The package to tune, and to write. Required.
  std::string data;       // Dataset whose samples are replayed. Required.
  // Most samples of `data` replayed (the first ones); 0 = all. >= 0.
  int max_samples = 0;
  std::string device = "cpu";  // As the server's --device (resolved).
  std::string precision = "fp32";
  // Where to write the table as Markdown too; empty = stdout only.
  std::string table_out;
  // Measure and print, but leave config.pbtxt as it is.
  bool dry_run = false;
  SearchOptions search;
  ServedTrialOptions trials;
};

// Prints progress to stderr and the table to stdout; errors name the option
// or the file at fault.
absl::Status RunTuneCommand(const TuneCommandOptions& options);

}  // namespace mmfuse::tuning

#endif  // MMFUSE_TUNING_TUNE_COMMAND_H_
