// Seed corpora built from real data: requests, feature streams and dataset
// files made of the data generator's examples (shaped for FuzzModelConfig()),
// and config.pbtxt texts of every fusion mode. fuzz_seed_gen writes them as
// files; the regression test checks that they are accepted, so the fuzzers
// start from inputs that reach past the first validation error.
#ifndef MMFUSE_TESTS_FUZZ_SEEDS_H_
#define MMFUSE_TESTS_FUZZ_SEEDS_H_

#include <string>
#include <vector>

namespace mmfuse::fuzz {

// Serialized ClassifyRequests, each valid for FuzzModelConfig(): float32
// and fp16 features, every budget level, priorities, some modalities absent.
std::vector<std::string> RequestSeeds(int count);

// Stream target inputs (EncodeChunkStream), each assembling into a valid
// request: header-only or header-carrying first chunks, offsets and
// appends, both encodings.
std::vector<std::string> StreamSeeds(int count);

// Dataset files of 1 to 4 examples, written by data::DatasetWriter.
std::vector<std::string> DatasetSeeds(int count);

// Valid config.pbtxt texts: the default model and one per fusion mode, with
// gated branches.
std::vector<std::string> ConfigSeeds();

}  // namespace mmfuse::fuzz

#endif  // MMFUSE_TESTS_FUZZ_SEEDS_H_
