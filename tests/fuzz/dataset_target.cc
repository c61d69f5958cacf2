// The dataset reader: a file of length-delimited Examples (training and
// evaluation data, `mmfuse datagen` output) read record by record; every
// example read is checked like training data and must survive a write/read
// round trip.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "data/dataset_io.h"
#include "model/feature_check.h"
#include "model/model_config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace mmfuse::fuzz {
namespace {

// Records beyond this are not read.
constexpr int kMaxRecords = 64;

// The reader takes a path: one scratch file per process (pid-named, so
// parallel fuzzer jobs do not share it), removed at exit.
struct ScratchFiles {
  std::string in;
  std::string out;
};

const ScratchFiles& Scratch() {
  static const ScratchFiles* const files = [] {
    const std::string base =
        (std::filesystem::temp_directory_path() / absl::StrCat("mmfuse_fuzz_dataset_", getpid()))
            .string();
    auto* f = new ScratchFiles{base + ".in", base + ".out"};
    std::atexit([] {
      std::remove(Scratch().in.c_str());
      std::remove(Scratch().out.c_str());
    });
    return f;
  }();
  return *files;
}

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  MMFUSE_CHECK(file.good(), "cannot write the fuzz scratch file " + path);
}

}  // namespace

void RunDatasetTarget(const uint8_t* data, size_t size) {
  const std::string& path = Scratch().in;
  WriteFile(path, data, size);
  absl::StatusOr<std::unique_ptr<data::DatasetReader>> reader = data::DatasetReader::Open(path);
  MMFUSE_CHECK(reader.ok(), reader.status().ToString());

  std::vector<v1::Example> examples;
  for (int i = 0; i < kMaxRecords; ++i) {
    v1::Example example;
    absl::StatusOr<bool> more = (*reader)->Next(&example);
    if (!more.ok()) {
      MMFUSE_CHECK(more.status().code() == absl::StatusCode::kDataLoss, more.status().ToString());
      break;
    }
    if (!*more) break;
    // The trainer's check of every example against the model.
    const v1::ModelConfig& config = FuzzModelConfig();
    for (const auto& [name, seq] : example.features()) {
      const int m = model::ModalityIndex(config, name);
      if (m >= 0) model::ValidateFeatures(config.modalities(m), seq).IgnoreError();
    }
    examples.push_back(std::move(example));
  }

  const std::string& out = Scratch().out;
  const absl::Status written = data::WriteDataset(out, examples);
  MMFUSE_CHECK(written.ok(), written.ToString());
  absl::StatusOr<std::vector<v1::Example>> reread = data::ReadDataset(out);
  MMFUSE_CHECK(reread.ok(), "a dataset we wrote does not read back: " + reread.status().ToString());
  MMFUSE_CHECK(reread->size() == examples.size(), "round trip changed the number of examples");
  for (size_t i = 0; i < examples.size(); ++i) {
    MMFUSE_CHECK((*reread)[i].ByteSizeLong() == examples[i].ByteSizeLong(),
                 "round trip changed an example");
  }
}

}  // namespace mmfuse::fuzz
