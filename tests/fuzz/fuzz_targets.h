// The fuzz targets' bodies, one function per target: each takes the raw
// fuzz input, drives one input-facing component with it and checks its
// invariants (MMFUSE_CHECK aborts, so a broken invariant is a crash to
// libFuzzer). The libFuzzer executables (fuzzer_main.cc) and the regression
// test (regression_test.cc, which replays tests/fuzz/regressions/) call the
// same functions, so a crash input checked in stays a normal unit test.
//
// The fixed model every request-shaped target validates against is small
// (a few features per frame, a few frames) so that a fuzzer can reach valid
// inputs in a few hundred bytes; it has the generator's modalities and the
// gated default branches, so the server's admission path (validation, then
// the branch choice) runs in full.
#ifndef MMFUSE_TESTS_FUZZ_FUZZ_TARGETS_H_
#define MMFUSE_TESTS_FUZZ_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/generator.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::fuzz {

// Bytes -> mmfuse.v1.ClassifyRequest -> the server's request validation,
// then (for a valid request) the branch choice it makes on admission.
void RunRequestTarget(const uint8_t* data, size_t size);

// Bytes -> a stream of FeatureChunks (see EncodeChunkStream) fed to a
// FeatureAssembler; a request it assembles must pass request validation.
void RunStreamTarget(const uint8_t* data, size_t size);

// Bytes -> config.pbtxt text -> ParseModelConfig -> ValidateModelConfig;
// a valid config goes through what loading a model derives from it (branches,
// experts, FLOP quotes) and must survive a text round trip.
void RunConfigTarget(const uint8_t* data, size_t size);

// Bytes -> a dataset file (length-delimited Examples) -> DatasetReader; the
// examples read are feature-checked like training data and must survive a
// write/read round trip.
void RunDatasetTarget(const uint8_t* data, size_t size);

// The model the request and stream targets validate against.
const v1::ModelConfig& FuzzModelConfig();
// Generator options producing examples that fit FuzzModelConfig().
data::GeneratorOptions FuzzGeneratorOptions(uint64_t seed);

// The stream target's input format: one byte of options (bit 0: at most 3
// chunks; bit 1: at most 64 data bytes; otherwise the server's defaults),
// then each chunk as a varint length and the serialized FeatureChunk.
std::string EncodeChunkStream(uint8_t options, const std::vector<v1::FeatureChunk>& chunks);

}  // namespace mmfuse::fuzz

#endif  // MMFUSE_TESTS_FUZZ_FUZZ_TARGETS_H_
