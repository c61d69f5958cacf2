// fuzz_seed_gen OUT_DIR: writes the seed corpora (seeds.h) as files, one
// directory per target: OUT_DIR/{request,stream,dataset,config}/seed-NNN.
// run_fuzzer.sh calls it before a fuzzer's first run.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "tests/fuzz/seeds.h"

namespace {

namespace fs = std::filesystem;

// Seeds per target: enough to cover the variants seeds.cc cycles through.
constexpr int kSeedsPerTarget = 24;

bool WriteAll(const fs::path& dir, const std::vector<std::string>& seeds) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    std::fprintf(stderr, "fuzz_seed_gen: cannot create %s: %s\n", dir.c_str(),
                 error.message().c_str());
    return false;
  }
  for (size_t i = 0; i < seeds.size(); ++i) {
    const fs::path path = dir / absl::StrFormat("seed-%03d", i);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(seeds[i].data(), static_cast<std::streamsize>(seeds[i].size()));
    if (!file.good()) {
      std::fprintf(stderr, "fuzz_seed_gen: cannot write %s\n", path.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  using namespace mmfuse::fuzz;
  const bool ok = WriteAll(out / "request", RequestSeeds(kSeedsPerTarget)) &&
                  WriteAll(out / "stream", StreamSeeds(kSeedsPerTarget)) &&
                  WriteAll(out / "dataset", DatasetSeeds(kSeedsPerTarget)) &&
                  WriteAll(out / "config", ConfigSeeds());
  return ok ? 0 : 1;
}
