// raw_model_bench: the ceiling a server can reach with a model package: the
// in-process batched forward throughput over a dataset's samples, with
// `--workers` threads each running whole batches (one math thread each, as
// the server's workers do). No gRPC, no queueing.
//
//   build/bin/raw_model_bench --model_dir models/default --data datasets/test.mmds \
//       --workers 2 --batch_sizes 1,4,8,16 --seconds 5
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "data/dataset_io.h"
#include "model/device.h"
#include "model/inference.h"
#include "model/model_package.h"

ABSL_FLAG(std::string, model_dir, "models/default", "Model package.");
ABSL_FLAG(std::string, data, "datasets/test.mmds", "Dataset whose samples are classified.");
ABSL_FLAG(std::string, device, "cpu", "Where the model runs: cpu, cuda, cuda:N or auto.");
ABSL_FLAG(std::string, precision, "fp32", "Number format: fp32, bf16 or fp16 (GPU).");
ABSL_FLAG(bool, cuda_graphs, false, "Replay CUDA graphs per shape bucket (GPU only).");
ABSL_FLAG(int, workers, 2, "Threads running batches (on a GPU, one stream each).");
ABSL_FLAG(std::string, batch_sizes, "1,4,8,16", "Batch sizes to measure.");
ABSL_FLAG(double, seconds, 5, "Timed seconds per batch size.");
ABSL_FLAG(int, branch, -1, "Branch to run; -1 = the full branch.");

namespace mmfuse {
namespace {

int Main() {
  model::LimitMathThreads(1);
  absl::StatusOr<std::string> device = model::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "--device: %s\n", std::string(device.status().message()).c_str());
    return 1;
  }
  auto package = model::LoadModelPackage(absl::GetFlag(FLAGS_model_dir), *device,
                                         absl::GetFlag(FLAGS_precision));
  auto examples = data::ReadDataset(absl::GetFlag(FLAGS_data));
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
  const std::vector<model::Branch> branches = model::ResolveBranches((*package)->config);
  const int branch =
      absl::GetFlag(FLAGS_branch) >= 0 ? absl::GetFlag(FLAGS_branch) : model::FullBranch(branches);
  std::printf("| batch | workers | samples/s |\n| --- | --- | --- |\n");
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_batch_sizes), ',')) {
    int batch = 0;
    if (!absl::SimpleAtoi(text, &batch) || batch < 1) continue;
    std::atomic<int64_t> samples{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < absl::GetFlag(FLAGS_workers); ++w) {
      workers.emplace_back([&, w] {
        size_t next = static_cast<size_t>(w) * batch;
        while (!stop.load()) {
          std::vector<const model::FeatureMap*> features;
          for (int i = 0; i < batch; ++i) {
            features.push_back(&(*examples)[next++ % examples->size()].features());
          }
          if (!model::PredictProbabilities(**package, features, branch).ok()) return;
          samples.fetch_add(batch);
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
    std::printf("| %d | %d | %.1f |\n", batch, absl::GetFlag(FLAGS_workers), done / elapsed);
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
