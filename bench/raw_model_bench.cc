// raw_model_bench: the ceiling a server can reach with a model package: the
// in-process batched forward throughput over a dataset's samples, with
// `--workers` threads each running whole batches (one math thread each, as
// the server's workers do). No gRPC, no queueing.
//
// `--order batcher` (the default) forms batches as the server's batcher
// does: samples that carry the same modalities, with lengths in the same
// per-modality buckets (`--length_bucket_ratio`) and total tokens in the
// same bucket (`--length_bucket_edges`; both default to the package's),
// batch together.
// `--frames audio=40,video=20,text=14` replaces the dataset with samples of
// exactly that shape (the shapes bench/onnx/compare.sh gives ONNX Runtime).
// `--order dataset` takes them in dataset order, mixing both. Each row also
// reports tokens computed per token present: the encoders' padding (an
// absent modality padded to the batch's longest, shorter sequences to the
// longest) that the batch pays for.
//
//   build/bin/raw_model_bench --model_dir models/default --data datasets/test.mmds \
//       --workers 2 --batch_sizes 1,4,8,16 --seconds 5
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "batching/queue_set.h"
#include "data/dataset_io.h"
#include "model/device.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/transformer_layer.h"

ABSL_FLAG(std::string, model_dir, "models/default", "Model package.");
ABSL_FLAG(std::string, data, "datasets/test.mmds", "Dataset whose samples are classified.");
ABSL_FLAG(std::string, device, "cpu", "Where the model runs: cpu, cuda, cuda:N or auto.");
ABSL_FLAG(std::string, precision, "fp32", "Number format: fp32, bf16 or fp16 (GPU).");
ABSL_FLAG(bool, cuda_graphs, false, "Replay CUDA graphs per shape bucket (GPU only).");
ABSL_FLAG(int, workers, 2, "Threads running batches (on a GPU, one stream each).");
ABSL_FLAG(std::string, batch_sizes, "1,4,8,16", "Batch sizes to measure.");
ABSL_FLAG(double, seconds, 5, "Timed seconds per batch size.");
ABSL_FLAG(int, branch, -1, "Branch to run; -1 = the full branch.");
ABSL_FLAG(bool, fused_layers, true,
          "Run encoder layers with ATen's fused kernel where it applies (model/transformer_layer.h); "
          "false = op by op.");
ABSL_FLAG(std::string, order, "batcher",
          "How batches form: batcher (same modalities present and length bucket, as the "
          "server's batcher groups them) or dataset (dataset order).");
ABSL_FLAG(double, length_bucket_ratio, -1,
          "Per-modality geometric length buckets for --order batcher (0 = none); -1 = the "
          "package's batching.length_bucket_ratio.");
ABSL_FLAG(std::string, frames, "",
          "Fixed shapes instead of --data's samples: name=FRAMES per modality, comma-separated "
          "(e.g. audio=40,video=20,text=14; modalities not named are absent); 64 samples of "
          "seeded random features, every one that shape (bench/onnx/compare.sh).");
ABSL_FLAG(std::string, length_bucket_edges, "",
          "Comma-separated token edges of the length buckets for --order batcher; empty = the "
          "package's batching.length_bucket_edges.");

namespace mmfuse {
namespace {

// The batches of up to `size` samples that the bench cycles through: in
// dataset order, or grouped as the batcher groups requests (model
// BatchingKeyOf: the modalities present, and the length bucket of the
// tokens), each group cut into batches in dataset order.
std::vector<std::vector<const model::FeatureMap*>> FormBatches(
    const v1::ModelConfig& config, const model::Branch& branch,
    const std::vector<v1::Example>& examples, int size, bool like_the_batcher,
    const std::vector<int64_t>& edges, double bucket_ratio) {
  std::map<std::pair<uint64_t, int>, std::vector<const model::FeatureMap*>> groups;
  for (const v1::Example& example : examples) {
    std::pair<uint64_t, int> key{0, 0};
    if (like_the_batcher) {
      const model::BatchingKey batching = model::BatchingKeyOf(
          branch, model::FramesOf(config, example.features()), bucket_ratio);
      key = {batching.input_group, batching::LengthBucket(edges, batching.tokens)};
    }
    groups[key].push_back(&example.features());
  }
  std::vector<std::vector<const model::FeatureMap*>> batches;
  for (const auto& [key, members] : groups) {
    for (size_t start = 0; start < members.size(); start += size) {
      batches.emplace_back(members.begin() + start,
                           members.begin() + std::min(members.size(), start + size));
    }
  }
  return batches;
}

// `count` samples with exactly the frames of `spec` ("audio=40,video=20")
// per modality, seeded random features.
absl::StatusOr<std::vector<v1::Example>> FixedShapeExamples(const v1::ModelConfig& config,
                                                           const std::string& spec, int count) {
  std::vector<std::pair<int, int>> shape;  // (modality, frames)
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const int m = model::ModalityIndex(config, kv.first);
    int frames = 0;
    if (m < 0 || !absl::SimpleAtoi(kv.second, &frames) || frames < 1 ||
        frames > static_cast<int>(config.modalities(m).max_frames())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--frames has \"", item, "\"; give name=FRAMES with a modality of the model and "
          "FRAMES in [1, its max_frames]"));
    }
    shape.emplace_back(m, frames);
  }
  if (shape.empty()) return absl::InvalidArgumentError("--frames names no modality");
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  std::vector<v1::Example> examples(count);
  for (v1::Example& example : examples) {
    for (const auto& [m, frames] : shape) {
      v1::FeatureSequence& sequence =
          (*example.mutable_features())[config.modalities(m).name()];
      sequence.set_frames(frames);
      sequence.set_dim(config.modalities(m).feature_dim());
      for (int64_t i = 0; i < int64_t{frames} * config.modalities(m).feature_dim(); ++i) {
        sequence.add_data(normal(random));
      }
    }
  }
  return examples;
}

// Encoder tokens (a class token and the frames per modality) the batches
// compute against those their samples carry: collation pads each modality
// that any sample of a batch has to the batch's longest, for every sample.
struct Padding {
  int64_t computed = 0;
  int64_t present = 0;
  double Ratio() const { return present > 0 ? static_cast<double>(computed) / present : 0; }
};

Padding PaddingOf(const v1::ModelConfig& config, const model::Branch& branch,
                  const std::vector<std::vector<const model::FeatureMap*>>& batches) {
  Padding padding;
  for (const auto& batch : batches) {
    for (int m : branch.modalities) {
      int64_t longest = 0;
      for (const model::FeatureMap* sample : batch) {
        auto it = sample->find(config.modalities(m).name());
        const int64_t frames = it == sample->end() ? 0 : it->second.frames();
        longest = std::max(longest, frames);
        if (frames > 0) padding.present += 1 + frames;
      }
      if (longest > 0) padding.computed += static_cast<int64_t>(batch.size()) * (1 + longest);
    }
  }
  return padding;
}

int Main() {
  model::LimitMathThreads(1);
  model::SetFusedInferenceLayers(absl::GetFlag(FLAGS_fused_layers));
  absl::StatusOr<std::string> device = model::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "--device: %s\n", std::string(device.status().message()).c_str());
    return 1;
  }
  auto package = model::LoadModelPackage(absl::GetFlag(FLAGS_model_dir), *device,
                                         absl::GetFlag(FLAGS_precision));
  absl::StatusOr<std::vector<v1::Example>> examples =
      absl::GetFlag(FLAGS_frames).empty() || !package.ok()
          ? data::ReadDataset(absl::GetFlag(FLAGS_data))
          : FixedShapeExamples((*package)->config, absl::GetFlag(FLAGS_frames), 64);
  if (!package.ok() || !examples.ok()) {
    std::fprintf(stderr, "%s\n", std::string(!package.ok() ? package.status().message()
                                                           : examples.status().message())
                                     .c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_cuda_graphs)) {
    if (absl::Status enabled = model::EnableCudaGraphs(package->get()); !enabled.ok()) {
      std::fprintf(stderr, "--cuda_graphs: %s\n", std::string(enabled.message()).c_str());
      return 1;
    }
  }
  const v1::ModelConfig& config = (*package)->config;
  const std::vector<model::Branch> branches = model::ResolveBranches(config);
  const int branch =
      absl::GetFlag(FLAGS_branch) >= 0 ? absl::GetFlag(FLAGS_branch) : model::FullBranch(branches);
  const std::string order = absl::GetFlag(FLAGS_order);
  if (order != "batcher" && order != "dataset") {
    std::fprintf(stderr, "--order=%s is not one of batcher, dataset\n", order.c_str());
    return 1;
  }
  std::vector<int64_t> edges(config.batching().length_bucket_edges().begin(),
                             config.batching().length_bucket_edges().end());
  if (!absl::GetFlag(FLAGS_length_bucket_edges).empty()) {
    edges.clear();
    for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_length_bucket_edges), ',')) {
      int64_t edge = 0;
      if (!absl::SimpleAtoi(text, &edge) || edge < 1 || (!edges.empty() && edge <= edges.back())) {
        std::fprintf(stderr, "--length_bucket_edges: \"%s\" is not an increasing edge >= 1\n",
                     std::string(text).c_str());
        return 1;
      }
      edges.push_back(edge);
    }
  }
  const double bucket_ratio = absl::GetFlag(FLAGS_length_bucket_ratio) >= 0
                                  ? absl::GetFlag(FLAGS_length_bucket_ratio)
                                  : config.batching().length_bucket_ratio();
  std::printf("order: %s; length bucket ratio: %g; token bucket edges: %s\n\n", order.c_str(),
              bucket_ratio, edges.empty() ? "none" : absl::StrJoin(edges, ",").c_str());
  std::printf("| batch | workers | samples/s | mean batch | tokens computed / present |\n"
              "| --- | --- | --- | --- | --- |\n");
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_batch_sizes), ',')) {
    int batch = 0;
    if (!absl::SimpleAtoi(text, &batch) || batch < 1) continue;
    const std::vector<std::vector<const model::FeatureMap*>> batches =
        FormBatches(config, branches[branch], *examples, batch, order == "batcher", edges,
                    bucket_ratio);
    const Padding padding = PaddingOf(config, branches[branch], batches);
    std::atomic<int64_t> samples{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < absl::GetFlag(FLAGS_workers); ++w) {
      workers.emplace_back([&, w] {
        size_t next = static_cast<size_t>(w);
        while (!stop.load()) {
          const std::vector<const model::FeatureMap*>& features = batches[next++ % batches.size()];
          if (!model::PredictProbabilities(**package, features, branch).ok()) return;
          samples.fetch_add(static_cast<int64_t>(features.size()));
        }
      });
    }
    // Warm-up, then a timed window.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const int64_t start_samples = samples.load();
    const auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<int>(absl::GetFlag(FLAGS_seconds) * 1000)));
    const int64_t done = samples.load() - start_samples;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stop.store(true);
    for (auto& t : workers) t.join();
    std::printf("| %d | %d | %.1f | %.2f | %.2f |\n", batch, absl::GetFlag(FLAGS_workers),
                done / elapsed, static_cast<double>(examples->size()) / batches.size(),
                padding.Ratio());
    std::fflush(stdout);
  }
  if ((*package)->cuda_graphs) {
    const model::CudaGraphStats stats = model::StatsOf(*(*package)->cuda_graphs);
    std::printf("\nCUDA graphs: %lld captured, %lld failed, %lld batches replayed, %lld eager\n",
                static_cast<long long>(stats.captured), static_cast<long long>(stats.failed),
                static_cast<long long>(stats.replays), static_cast<long long>(stats.eager));
  }
  return 0;
}

}  // namespace
}  // namespace mmfuse

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return mmfuse::Main();
}
