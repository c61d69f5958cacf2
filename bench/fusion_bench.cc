// fusion_bench: per fusion mode, the estimated GFLOPs per sample and the
// measured samples/s of the raw model (no server) at given batch sizes and
// length scales, one math thread; for PMF also trainable parameters and peak
// training memory against full finetuning. Results as a Markdown table or
// JSON lines.
//
//   build/bin/fusion_bench --config bench/configs/fusion.pbtxt --modes all \
//       --batch_sizes 1,32 --scales 1,4 --seconds 3
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "model/flops.h"
#include "model/fusion_transformer.h"
#include "model/inference.h"
#include "model/model_config.h"

ABSL_FLAG(std::string, config, "bench/configs/fusion.pbtxt", "Architecture (fusion_mode is replaced).");
ABSL_FLAG(std::string, modes, "all", "Comma-separated modes, or all.");
ABSL_FLAG(std::string, batch_sizes, "1,32", "Batch sizes to time.");
ABSL_FLAG(std::string, scales, "1,4", "Multiples of the reference lengths.");
ABSL_FLAG(double, seconds, 3, "Timed seconds per measurement (after warm-up).");
ABSL_FLAG(int, train_batch, 32, "PMF memory: training batch size.");
ABSL_FLAG(bool, json, false, "JSON lines instead of a Markdown table.");

namespace mmfuse {
namespace {

std::vector<int64_t> ParseInts(const std::string& text) {
  std::vector<int64_t> values;
  for (absl::string_view s : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) values.push_back(v);
  }
  return values;
}

std::vector<model::ModalityInput> RandomBatch(const v1::ModelConfig& config,
                                              const std::vector<int64_t>& frames, int64_t batch) {
  std::vector<model::ModalityInput> inputs;
  for (int m = 0; m < config.modalities_size(); ++m) {
    inputs.push_back({at::randn({batch, frames[m], config.modalities(m).feature_dim()}),
                      at::full({batch}, frames[m], at::kLong)});
  }
  return inputs;
}

// Samples per second of eval-mode forward passes over `seconds`.
double SamplesPerSecond(model::FusionTransformer& net, const std::vector<model::ModalityInput>& in,
                        int64_t batch, double seconds) {
  c10::InferenceMode guard;
  net->forward(in);  // Warm-up (allocator, caches).
  net->forward(in);
  const auto start = std::chrono::steady_clock::now();
  int64_t runs = 0;
  double elapsed = 0;
  do {
    net->forward(in);
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  return runs * batch / elapsed;
}

long ResidentKb() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Peak memory growth (KiB) of a few training steps, in a child process so
// each measurement starts clean. Run before anything else grows the parent.
long TrainingPeakKb(const v1::ModelConfig& config, int64_t batch) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    torch::manual_seed(1);
    model::FusionTransformer net(config);
    net->train();
    std::vector<torch::Tensor> trainable;
    for (const torch::Tensor& p : net->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    torch::optim::AdamW optimizer(trainable, torch::optim::AdamWOptions(1e-3));
    const auto in = RandomBatch(config, model::ReferenceFrames(config), batch);
    const torch::Tensor labels = at::randint(config.num_classes(), {batch}, at::kLong);
    const long before = ResidentKb();
    for (int step = 0; step < 3; ++step) {
      optimizer.zero_grad();
      torch::nn::functional::cross_entropy(net->forward(in), labels).backward();
      optimizer.step();
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const long growth = usage.ru_maxrss - before;
    _exit(write(pipe_fds[1], &growth, sizeof(growth)) == sizeof(growth) ? 0 : 1);
  }
  close(pipe_fds[1]);
  long growth = -1;
  if (read(pipe_fds[0], &growth, sizeof(growth)) != sizeof(growth)) growth = -1;
  close(pipe_fds[0]);
  waitpid(pid, nullptr, 0);
  return growth;
}

int Main() {
  model::LimitMathThreads(1);
  auto base = model::ReadModelConfig(absl::GetFlag(FLAGS_config));
  if (!base.ok()) {
    std::fprintf(stderr, "%s\n", std::string(base.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> modes = absl::StrSplit(absl::GetFlag(FLAGS_modes), ',');
  if (absl::GetFlag(FLAGS_modes) == "all") modes = {"concat", "late", "mbt", "sft", "locomt", "pmf"};
  const std::vector<int64_t> batches = ParseInts(absl::GetFlag(FLAGS_batch_sizes));
  const std::vector<int64_t> scales = ParseInts(absl::GetFlag(FLAGS_scales));
  // PMF: prompt-only training against full finetuning of the same model.
  v1::ModelConfig full = *base;
  full.set_fusion_mode(v1::FUSION_MODE_PMF);
  v1::ModelConfig prompts = full;
  prompts.mutable_pmf()->set_train_prompts_only(true);
  const int64_t all_params = model::CountParameters(*model::FusionTransformer(full));
  const int64_t prompt_params = model::CountParameters(*model::FusionTransformer(prompts));
  const long full_kb = TrainingPeakKb(full, absl::GetFlag(FLAGS_train_batch));
  const long prompt_kb = TrainingPeakKb(prompts, absl::GetFlag(FLAGS_train_batch));
  const bool json = absl::GetFlag(FLAGS_json);
  if (!json) {
    std::printf("| mode | lengths (a/v/t) | GFLOPs/sample | batch | samples/s | GFLOP/s |\n");
    std::printf("| --- | --- | --- | --- | --- | --- |\n");
  }
  for (const std::string& name : modes) {
    auto mode = model::ParseFusionMode(name);
    if (!mode.ok()) {
      std::fprintf(stderr, "%s\n", std::string(mode.status().message()).c_str());
      return 1;
    }
    v1::ModelConfig config = *base;
    config.set_fusion_mode(*mode);
    torch::manual_seed(1);
    model::FusionTransformer net(config);
    net->eval();
    for (int64_t scale : scales) {
      std::vector<int64_t> frames = model::ReferenceFrames(config);
      for (int64_t& f : frames) f *= scale;
      const double gflops = model::MacsToGflops(model::ForwardMacs(config, frames));
      for (int64_t batch : batches) {
        const double rate = SamplesPerSecond(net, RandomBatch(config, frames, batch), batch,
                                             absl::GetFlag(FLAGS_seconds));
        if (json) {
          std::printf("{\"mode\": \"%s\", \"scale\": %lld, \"batch\": %lld, \"gflops\": %.5f, "
                      "\"samples_per_s\": %.2f, \"gflop_per_s\": %.2f}\n",
                      name.c_str(), static_cast<long long>(scale), static_cast<long long>(batch),
                      gflops, rate, rate * gflops);
        } else {
          std::printf("| %s | %lld/%lld/%lld | %.4f | %lld | %.1f | %.2f |\n", name.c_str(),
                      static_cast<long long>(frames[0]), static_cast<long long>(frames[1]),
                      static_cast<long long>(frames[2]), gflops, static_cast<long long>(batch),
                      rate, rate * gflops);
        }
        std::fflush(stdout);
      }
    }
  }
  std::printf(json ? "{\"pmf_trainable\": %lld, \"pmf_parameters\": %lld, \"pmf_trainable_fraction\": %.4f, "
                     "\"full_finetune_peak_mib\": %ld, \"prompt_only_peak_mib\": %ld}\n"
                   : "\nPMF: %lld of %lld parameters trainable (%.2f%%); peak training memory "
                     "growth %ld MiB full finetuning vs %ld MiB prompts only\n",
              static_cast<long long>(prompt_params), static_cast<long long>(all_params),
              (json ? 1.0 : 100.0) * prompt_params / all_params, full_kb / 1024, prompt_kb / 1024);
  return 0;
}

}  // namespace
}  // namespace mmfuse

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return mmfuse::Main();
}
