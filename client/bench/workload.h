// Workload: the requests of a bench run, built once before it starts so the
// sender only picks the next one (cycling through them) and never generates
// or converts features on its hot path.
//
// Samples come from a dataset file (replayed in file order) or from the
// seeded generator (data/generator.h), shaped by the served model's
// ModelInfo (feature dims, max frames). Then each request is assigned, in
// exact proportions over the set (largest remainder, then a seeded shuffle):
//   - a modality mix entry: modalities not in the entry are dropped (a
//     dataset sample left with none is sent whole);
//   - a budget mix entry (budget unset when the mix is empty).
// Requests carry no request_id: the runner adds a unique one per send.
//
// Thread-safety: BuildWorkload is a pure function; a Workload is immutable
// once built and may be read from any thread.
#ifndef MMFUSE_CLIENT_BENCH_WORKLOAD_H_
#define MMFUSE_CLIENT_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/bench/spec_parser.h"
#include "mmfuse/v1/classifier.pb.h"

namespace mmfuse::bench {

struct WorkloadOptions {
  // Dataset file to replay; empty = generate samples. Default empty.
  std::string data_path;
  // Distinct requests to build (then cycled). Generated: 0 = 512. From
  // data_path: the first `samples` examples, 0 = all. >= 0. Default 0.
  int samples = 0;
  // Seeds the generator (use the seed the model was trained on for
  // meaningful classes) and the mix assignment. Default 1.
  uint64_t seed = 1;
  // Generator sample stream; 0 and 1 are the CLI's train and test streams.
  // Default 2.
  uint64_t stream = 2;
  // Modalities each request keeps; empty = all. See ParseModalityMix.
  std::vector<ModalityMixEntry> modality_mix;
  // Budget levels; empty = budget unset. See ParseBudgetMix.
  std::vector<BudgetMixEntry> budget_mix;
  // ClassifyRequest.top_k. >= 0 (0 = the server's 1). Default 1.
  int top_k = 1;
  // ClassifyRequest.model; empty = the server's default model.
  std::string model;
  // ClassifyRequest.priority. >= 0. Default 0.
  int priority = 0;
};

struct Workload {
  std::vector<v1::ClassifyRequest> requests;  // Non-empty.
};

// Generated samples need `model_info` modalities named audio, video or text
// (the generator's); errors name the option at fault.
absl::StatusOr<Workload> BuildWorkload(const WorkloadOptions& options,
                                       const v1::ModelInfo& model_info);

// Exact integer counts for `weights` (summing to ~1) over `n` items: floors,
// then the largest remainders get one more. Sums to n.
std::vector<int> ApportionCounts(const std::vector<double>& weights, int n);

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_WORKLOAD_H_
