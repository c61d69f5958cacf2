#include "model/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include <ATen/ops/argmax.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include "absl/strings/str_cat.h"
#include "model/collate.h"
#include "model/flops.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"

namespace mmfuse::model {
namespace {

std::vector<int> AllModalities(const v1::ModelConfig& config) {
  std::vector<int> all(config.modalities_size());
  std::iota(all.begin(), all.end(), 0);
  return all;
}

absl::Status CheckExamples(const v1::ModelConfig& config, const std::vector<v1::Example>& examples,
                           const char* which) {
  for (size_t i = 0; i < examples.size(); ++i) {
    const v1::Example& e = examples[i];
    if (e.label() >= config.num_classes()) {
      return absl::InvalidArgumentError(absl::StrCat(which, " example ", i, " (id ", e.id(),
                                                     "): label=", e.label(), " >= num_classes=",
                                                     config.num_classes()));
    }
    bool any = false;
    for (const auto& [name, seq] : e.features()) {
      const int m = ModalityIndex(config, name);
      if (m < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(which, " example ", i, ": unknown modality \"", name, "\""));
      }
      const v1::ModalityConfig& mc = config.modalities(m);
      const uint64_t values = static_cast<uint64_t>(seq.frames()) * seq.dim();
      if (seq.dim() != mc.feature_dim() || seq.frames() > mc.max_frames() ||
          static_cast<uint64_t>(seq.data_size()) != values) {
        return absl::InvalidArgumentError(absl::StrCat(
            which, " example ", i, ": ", name, " has frames=", seq.frames(), " dim=", seq.dim(),
            " values=", seq.data_size(), "; the model wants dim=", mc.feature_dim(),
            ", frames <= ", mc.max_frames(), ", frames*dim float values"));
      }
      any |= seq.frames() > 0;
    }
    if (!any) return absl::InvalidArgumentError(absl::StrCat(which, " example ", i, " is empty"));
  }
  return absl::OkStatus();
}

torch::Tensor Labels(const std::vector<const v1::Example*>& batch) {
  std::vector<int64_t> labels;
  for (const v1::Example* e : batch) labels.push_back(e->label());
  return at::from_blob(labels.data(), {static_cast<int64_t>(labels.size())}, at::kLong).clone();
}

std::vector<const FeatureMap*> Features(const std::vector<const v1::Example*>& batch) {
  std::vector<const FeatureMap*> features;
  for (const v1::Example* e : batch) features.push_back(&e->features());
  return features;
}

// Hides modalities of training samples by zeroing their lengths, keeping at
// least one present modality per sample.
void DropModalities(std::vector<ModalityInput>* inputs, double rate, std::mt19937_64* rng) {
  if (rate <= 0) return;
  std::uniform_real_distribution<double> unit(0, 1);
  int64_t size = 0;
  for (const ModalityInput& in : *inputs) {
    if (in.lengths.defined()) size = in.lengths.size(0);
  }
  for (int64_t b = 0; b < size; ++b) {
    std::vector<int64_t*> present;
    for (ModalityInput& in : *inputs) {
      if (!in.lengths.defined()) continue;
      int64_t* length = in.lengths.data_ptr<int64_t>() + b;
      if (*length > 0) present.push_back(length);
    }
    std::shuffle(present.begin(), present.end(), *rng);
    for (size_t i = 1; i < present.size(); ++i) {
      if (unit(*rng) < rate) *present[i] = 0;
    }
  }
}

bool StderrIsTty() { return isatty(STDERR_FILENO) == 1; }

}  // namespace

absl::StatusOr<EvalResult> Evaluate(const ModelPackage& package,
                                    const std::vector<v1::Example>& examples, int batch_size) {
  absl::Status valid = CheckExamples(package.config, examples, "eval");
  if (!valid.ok()) return valid;
  EvalResult result;
  const std::vector<int> all = AllModalities(package.config);
  const int num_classes = static_cast<int>(package.config.num_classes());
  double loss_sum = 0;
  double gflops_sum = 0;
  int64_t correct = 0;
  for (size_t start = 0; start < examples.size(); start += batch_size) {
    std::vector<const FeatureMap*> batch;
    for (size_t i = start; i < std::min(examples.size(), start + batch_size); ++i) {
      batch.push_back(&examples[i].features());
    }
    absl::StatusOr<std::vector<float>> probabilities = PredictProbabilities(package, batch, all);
    if (!probabilities.ok()) return probabilities.status();
    for (size_t i = 0; i < batch.size(); ++i) {
      const v1::Example& e = examples[start + i];
      const float* row = probabilities->data() + i * num_classes;
      const int predicted = static_cast<int>(std::max_element(row, row + num_classes) - row);
      correct += predicted == static_cast<int>(e.label());
      loss_sum += -std::log(std::max(row[e.label()], 1e-12f));
      std::vector<int64_t> frames(package.config.modalities_size(), 0);
      for (const auto& [name, seq] : e.features()) {
        frames[ModalityIndex(package.config, name)] = seq.frames();
      }
      gflops_sum += MacsToGflops(ForwardMacs(package.config, frames));
    }
  }
  result.examples = static_cast<int64_t>(examples.size());
  if (result.examples > 0) {
    result.accuracy = static_cast<double>(correct) / result.examples;
    result.mean_loss = loss_sum / result.examples;
    result.mean_gflops = gflops_sum / result.examples;
  }
  return result;
}

absl::StatusOr<EvalResult> Train(ModelPackage* package, const std::vector<v1::Example>& train,
                                 const std::vector<v1::Example>& eval,
                                 const TrainOptions& options) {
  if (options.epochs < 1 || options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("train: epochs=", options.epochs,
                                                   " and batch_size=", options.batch_size,
                                                   " must be >= 1"));
  }
  if (train.empty()) return absl::InvalidArgumentError("train: no training examples");
  absl::Status valid = CheckExamples(package->config, train, "train");
  if (!valid.ok()) return valid;
  LimitMathThreads(1);

  const std::vector<int> all = AllModalities(package->config);
  FusionTransformer& model = package->model;
  std::mt19937_64 rng(options.seed);
  std::vector<size_t> order(train.size());
  std::iota(order.begin(), order.end(), 0);
  const int64_t steps_per_epoch = (train.size() + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = steps_per_epoch * options.epochs;
  const bool tty = options.progress && StderrIsTty();

  try {
    std::vector<torch::Tensor> trainable;
    for (const torch::Tensor& p : model->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    torch::optim::AdamW optimizer(
        trainable,
        torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
    int64_t step = 0;
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      model->train();
      std::shuffle(order.begin(), order.end(), rng);
      double loss_sum = 0;
      int64_t correct = 0;
      int64_t seen = 0;
      for (size_t start = 0; start < order.size(); start += options.batch_size, ++step) {
        std::vector<const v1::Example*> batch;
        for (size_t i = start; i < std::min(order.size(), start + options.batch_size); ++i) {
          batch.push_back(&train[order[i]]);
        }
        std::vector<ModalityInput> inputs = Collate(package->config, Features(batch), all);
        DropModalities(&inputs, options.modality_dropout, &rng);
        const double lr = 0.5 * options.learning_rate *
                          (1 + std::cos(M_PI * static_cast<double>(step) / total_steps));
        for (auto& group : optimizer.param_groups()) {
          static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
        }
        torch::Tensor labels = Labels(batch);
        torch::Tensor logits = model->forward(inputs);
        torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
        optimizer.zero_grad();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(trainable, 1.0);
        optimizer.step();
        loss_sum += loss.item<double>() * batch.size();
        correct += at::argmax(logits, -1).eq(labels).sum().item<int64_t>();
        seen += batch.size();
        if (tty) {
          std::fprintf(stderr, "\repoch %d/%d  step %lld/%lld  loss %.4f  acc %.3f   ", epoch,
                       options.epochs, static_cast<long long>(step + 1),
                       static_cast<long long>(total_steps), loss_sum / seen,
                       static_cast<double>(correct) / seen);
        }
      }
      model->eval();
      if (options.progress) {
        std::string line = absl::StrCat("epoch ", epoch, "/", options.epochs, "  train loss ",
                                        loss_sum / seen, "  train acc ",
                                        static_cast<double>(correct) / seen);
        if (!eval.empty()) {
          absl::StatusOr<EvalResult> result = Evaluate(*package, eval);
          if (!result.ok()) return result.status();
          absl::StrAppend(&line, "  eval acc ", result->accuracy, "  eval loss ",
                          result->mean_loss);
        }
        std::fprintf(stderr, "%s%s\n", tty ? "\r" : "", line.c_str());
      }
    }
  } catch (const c10::Error& e) {
    model->eval();
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
  model->eval();
  return Evaluate(*package, eval.empty() ? train : eval);
}

}  // namespace mmfuse::model
