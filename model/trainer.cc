#include "model/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include <ATen/ops/argmax.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/log.h>
#include <ATen/ops/one_hot.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/augment.h"
#include "model/branch_policy.h"
#include "model/collate.h"
#include "model/feature_check.h"
#include "model/flops.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/training_util.h"

namespace mmfuse::model {
namespace {

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

// Learning rate at `step` of `total`: linear warmup, then cosine decay.
double LearningRate(const TrainOptions& options, int64_t step, int64_t total) {
  const double warmup = std::floor(options.warmup_fraction * total);
  if (step < warmup) return options.learning_rate * (step + 1) / warmup;
  const double t = (step - warmup) / std::max(1.0, total - warmup);
  return 0.5 * options.learning_rate * (1 + std::cos(M_PI * t));
}

// Mean cross-entropy of per-stream logits over the samples that have the
// stream (`present[m]`); undefined when no sample has any.
torch::Tensor PresentStreamsLoss(const std::vector<torch::Tensor>& logits,
                                 const std::vector<torch::Tensor>& present,
                                 const torch::Tensor& labels, double smoothing) {
  torch::Tensor sum, count;
  for (size_t m = 0; m < logits.size(); ++m) {
    if (!logits[m].defined()) continue;
    const torch::Tensor weight = present[m].to(logits[m].scalar_type());
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits[m], labels,
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(smoothing).reduction(
            torch::kNone));
    sum = sum.defined() ? sum + (loss * weight).sum() : (loss * weight).sum();
    count = count.defined() ? count + weight.sum() : weight.sum();
  }
  if (!sum.defined()) return sum;
  return sum / count.clamp_min(1);
}

// Per modality of an expert: LayerNorm and linear on its encoder's class
// token, for the auxiliary losses. Lives only while its expert trains.
class AuxHeadsImpl : public torch::nn::Module {
 public:
  AuxHeadsImpl(const v1::ModelConfig& config) {
    const int64_t d = config.transformer().d_model();
    for (const v1::ModalityConfig& m : config.modalities()) {
      norms_.push_back(register_module(absl::StrCat(m.name(), "_norm"),
                                       torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}))));
      heads_.push_back(register_module(absl::StrCat(m.name(), "_head"),
                                       torch::nn::Linear(d, config.num_classes())));
    }
  }
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& cls) {
    std::vector<torch::Tensor> logits(cls.size());
    for (size_t m = 0; m < cls.size(); ++m) {
      if (cls[m].defined()) logits[m] = heads_[m](norms_[m](cls[m]));
    }
    return logits;
  }

 private:
  std::vector<torch::nn::LayerNorm> norms_;
  std::vector<torch::nn::Linear> heads_;
};
TORCH_MODULE(AuxHeads);

// Top-1 accuracy of `expert` on `examples`.
double ExpertAccuracy(FusionTransformer& expert, const v1::ModelConfig& config,
                      const std::vector<const v1::Example*>& examples) {
  if (examples.empty()) return 0;
  c10::InferenceMode inference;
  const std::vector<int> all = AllModalities(config);
  int64_t correct = 0;
  for (size_t start = 0; start < examples.size(); start += 128) {
    const std::vector<const v1::Example*> batch(
        examples.begin() + start, examples.begin() + std::min(examples.size(), start + 128));
    const torch::Tensor logits = expert->forward(Collate(config, Features(batch), all));
    correct += at::argmax(logits, -1).eq(Labels(batch)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / examples.size();
}

// Copies of every parameter and buffer, to keep the best epoch's weights.
std::vector<torch::Tensor> Snapshot(torch::nn::Module& module) {
  std::vector<torch::Tensor> copies;
  for (const torch::Tensor& p : module.parameters()) copies.push_back(p.detach().clone());
  for (const torch::Tensor& b : module.buffers()) copies.push_back(b.detach().clone());
  return copies;
}

void Restore(torch::nn::Module& module, const std::vector<torch::Tensor>& copies) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (torch::Tensor& p : module.parameters()) p.copy_(copies[i++]);
  for (torch::Tensor& b : module.buffers()) b.copy_(copies[i++]);
}

// Trains one expert on `examples` (those its branch can use); with `eval`
// (those of the eval set it can use), keeps the best epoch's weights.
// Returns that epoch (0 without evaluation data); appends each epoch's
// evaluation accuracy to `epoch_accuracy`.
int TrainExpert(FusionTransformer& expert, const v1::ModelConfig& config,
                const std::vector<const v1::Example*>& examples,
                const std::vector<const v1::Example*>& eval, const TrainOptions& options,
                const std::string& name, std::mt19937_64* rng,
                std::vector<double>* epoch_accuracy) {
  const std::vector<int> all = AllModalities(config);
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  const int64_t steps_per_epoch = (examples.size() + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = std::max<int64_t>(1, steps_per_epoch * options.epochs);
  const bool tty = options.progress && StderrIsTty();
  AuxHeads aux(config);
  std::vector<torch::Tensor> trainable;
  for (const torch::Tensor& p : expert->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  if (options.aux_loss_weight > 0) {
    for (const torch::Tensor& p : aux->parameters()) trainable.push_back(p);
  }
  torch::optim::AdamW optimizer(
      trainable,
      torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
  const auto smoothed = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
      options.label_smoothing);
  int64_t step = 0;
  int best_epoch = 0, since_best = 0;
  double best_accuracy = -1;
  std::vector<torch::Tensor> best;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    expert->train();
    aux->train();
    std::shuffle(order.begin(), order.end(), *rng);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    for (size_t start = 0; start < order.size(); start += options.batch_size, ++step) {
      std::vector<const v1::Example*> batch;
      for (size_t i = start; i < std::min(order.size(), start + options.batch_size); ++i) {
        batch.push_back(examples[order[i]]);
      }
      std::vector<ModalityInput> inputs = Collate(config, Features(batch), all);
      if (options.augment) Augment(config, options.augmentation, rng, &inputs);
      DropModalities(&inputs, options.modality_dropout, rng);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options())
            .lr(LearningRate(options, step, total_steps));
      }
      const torch::Tensor labels = Labels(batch);
      const FusionTransformerImpl::TrainingOutput out = expert->ForwardForTraining(inputs);
      const torch::Tensor& logits = out.fusion.logits;
      torch::Tensor loss = at::zeros({}, logits.options());
      if (out.fusion.fused_loss) {
        loss = loss + torch::nn::functional::cross_entropy(logits, labels, smoothed);
      }
      const torch::Tensor stream_loss = PresentStreamsLoss(out.fusion.stream_logits, out.present,
                                                           labels, options.label_smoothing);
      if (stream_loss.defined()) loss = loss + stream_loss;
      if (options.aux_loss_weight > 0) {
        const torch::Tensor aux_loss = PresentStreamsLoss(aux->forward(out.encoder_cls),
                                                          out.present, labels,
                                                          options.label_smoothing);
        if (aux_loss.defined()) loss = loss + options.aux_loss_weight * aux_loss;
      }
      optimizer.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(trainable, 1.0);
      optimizer.step();
      loss_sum += loss.item<double>() * batch.size();
      correct += at::argmax(logits, -1).eq(labels).sum().item<int64_t>();
      seen += batch.size();
      if (tty) {
        std::fprintf(stderr, "\r%s epoch %d/%d  step %lld/%lld  loss %.4f  acc %.3f   ",
                     name.c_str(), epoch, options.epochs, static_cast<long long>(step + 1),
                     static_cast<long long>(total_steps), loss_sum / seen,
                     static_cast<double>(correct) / seen);
      }
    }
    expert->eval();
    double eval_accuracy = -1;
    if (!eval.empty()) {
      eval_accuracy = ExpertAccuracy(expert, config, eval);
      epoch_accuracy->push_back(eval_accuracy);
      if (eval_accuracy > best_accuracy) {
        best_accuracy = eval_accuracy;
        best_epoch = epoch;
        best = Snapshot(*expert);
        since_best = 0;
      } else {
        ++since_best;
      }
    }
    if (options.progress) {
      std::fprintf(stderr, "%s%s epoch %d/%d  train loss %.4f  train acc %.4f", tty ? "\r" : "",
                   name.c_str(), epoch, options.epochs, loss_sum / std::max<int64_t>(1, seen),
                   static_cast<double>(correct) / std::max<int64_t>(1, seen));
      if (eval_accuracy >= 0) std::fprintf(stderr, "  eval acc %.4f", eval_accuracy);
      std::fprintf(stderr, "\n");
    }
    if (options.early_stopping_patience > 0 && since_best >= options.early_stopping_patience) {
      if (options.progress) {
        std::fprintf(stderr, "%s: no better eval accuracy for %d epochs; stopping\n", name.c_str(),
                     since_best);
      }
      break;
    }
  }
  if (!best.empty()) {
    Restore(*expert, best);
    if (options.progress) {
      std::fprintf(stderr, "%s: kept epoch %d (eval acc %.4f)\n", name.c_str(), best_epoch,
                   best_accuracy);
    }
  }
  expert->eval();
  return best_epoch;
}

}  // namespace

absl::Status ValidateTrainOptions(const TrainOptions& o) {
  auto bad = [](const char* field, double value, const char* range) {
    return absl::InvalidArgumentError(absl::StrCat("train: ", field, "=", value, " is outside ", range));
  };
  if (o.epochs < 0) return bad("epochs", o.epochs, "[0, inf)");
  if (o.batch_size < 1) return bad("batch_size", o.batch_size, "[1, inf)");
  if (!(o.learning_rate > 0)) return bad("learning_rate", o.learning_rate, "(0, inf)");
  if (!(o.warmup_fraction >= 0 && o.warmup_fraction < 1)) {
    return bad("warmup_fraction", o.warmup_fraction, "[0, 1)");
  }
  if (!(o.weight_decay >= 0)) return bad("weight_decay", o.weight_decay, "[0, inf)");
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 1)) {
    return bad("label_smoothing", o.label_smoothing, "[0, 1)");
  }
  if (!(o.modality_dropout >= 0 && o.modality_dropout < 1)) {
    return bad("modality_dropout", o.modality_dropout, "[0, 1)");
  }
  if (!(o.aux_loss_weight >= 0)) return bad("aux_loss_weight", o.aux_loss_weight, "[0, inf)");
  if (o.early_stopping_patience < 0) {
    return bad("early_stopping_patience", o.early_stopping_patience, "[0, inf)");
  }
  return ValidateAugmentOptions(o.augmentation);
}

absl::StatusOr<EvalResult> Evaluate(const ModelPackage& package,
                                    const std::vector<v1::Example>& examples, int batch_size,
                                    v1::BudgetLevel level) {
  absl::Status valid = CheckExamples(package.config, examples, "eval");
  if (!valid.ok()) return valid;
  const BranchPolicy policy(package.config);
  const int num_branches = static_cast<int>(policy.branches().size());
  const int num_classes = static_cast<int>(package.config.num_classes());
  v1::ComputeBudget budget;
  budget.set_level(level);
  EvalResult result;
  result.branch_fraction.assign(num_branches, 0);
  double loss_sum = 0, gflops_sum = 0;
  int64_t correct = 0;
  for (size_t start = 0; start < examples.size(); start += batch_size) {
    const size_t end = std::min(examples.size(), start + batch_size);
    std::vector<const FeatureMap*> all_features;
    for (size_t i = start; i < end; ++i) all_features.push_back(&examples[i].features());
    std::vector<float> logits;
    if (policy.NeedsGate(budget)) {
      absl::StatusOr<std::vector<float>> gate = GateLogits(package, all_features);
      if (!gate.ok()) return gate.status();
      logits = std::move(*gate);
    }
    // Group the batch by chosen branch; each group runs only its expert.
    std::vector<std::vector<size_t>> groups(num_branches);
    std::vector<BranchChoice> choices(end - start);
    for (size_t i = start; i < end; ++i) {
      const std::vector<int64_t> frames = FramesOf(package.config, examples[i].features());
      absl::Span<const float> row;
      if (!logits.empty()) row = absl::MakeConstSpan(logits).subspan((i - start) * num_branches, num_branches);
      absl::StatusOr<BranchChoice> choice = policy.Choose(frames, budget, row, 0);
      if (!choice.ok()) return choice.status();
      choices[i - start] = *choice;
      groups[choice->branch].push_back(i);
      gflops_sum += policy.Gflops(choice->branch, choice->gate_ran, frames);
    }
    for (int b = 0; b < num_branches; ++b) {
      if (groups[b].empty()) continue;
      std::vector<const FeatureMap*> batch;
      for (size_t i : groups[b]) batch.push_back(&examples[i].features());
      absl::StatusOr<std::vector<float>> probabilities = PredictProbabilities(package, batch, b);
      if (!probabilities.ok()) return probabilities.status();
      for (size_t k = 0; k < groups[b].size(); ++k) {
        const v1::Example& e = examples[groups[b][k]];
        const float* row = probabilities->data() + k * num_classes;
        const int predicted = static_cast<int>(std::max_element(row, row + num_classes) - row);
        correct += predicted == static_cast<int>(e.label());
        loss_sum += -std::log(std::max(row[e.label()], 1e-12f));
        result.branch_fraction[b] += 1;
      }
    }
  }
  result.examples = static_cast<int64_t>(examples.size());
  if (result.examples > 0) {
    result.accuracy = static_cast<double>(correct) / result.examples;
    result.mean_loss = loss_sum / result.examples;
    result.mean_gflops = gflops_sum / result.examples;
    for (double& f : result.branch_fraction) f /= result.examples;
  }
  return result;
}

absl::StatusOr<EvalResult> Train(ModelPackage* package, const std::vector<v1::Example>& train,
                                 const std::vector<v1::Example>& eval,
                                 const TrainOptions& options) {
  MMFUSE_RETURN_IF_ERROR(ValidateTrainOptions(options));
  if (train.empty()) return absl::InvalidArgumentError("train: no training examples");
  absl::Status valid = CheckExamples(package->config, train, "train");
  if (!valid.ok()) return valid;
  LimitMathThreads(1);
  const BranchPolicy policy(package->config);
  std::mt19937_64 rng(options.seed);
  // Auxiliary heads and dropout draw from LibTorch's generator: seeded here,
  // so a training depends on its options and not on what ran before it.
  torch::manual_seed(options.seed);
  int best_epoch = 0;
  std::vector<double> epoch_accuracy;
  try {
    for (int b = 0; b < static_cast<int>(policy.branches().size()); ++b) {
      const Branch& branch = policy.branches()[b];
      std::vector<const v1::Example*> usable;
      for (const v1::Example& e : train) {
        if (policy.Usable(b, FramesOf(package->config, e.features()))) usable.push_back(&e);
      }
      if (usable.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("train: no example has the modalities of branch ", branch.name));
      }
      std::vector<const v1::Example*> usable_eval;
      for (const v1::Example& e : eval) {
        if (policy.Usable(b, FramesOf(package->config, e.features()))) usable_eval.push_back(&e);
      }
      epoch_accuracy.clear();
      best_epoch = std::max(best_epoch, TrainExpert(package->model->expert(b),
                                                    ExpertConfig(package->config, branch), usable,
                                                    usable_eval, options,
                                                    absl::StrCat("expert ", branch.name), &rng,
                                                    &epoch_accuracy));
    }
  } catch (const c10::Error& e) {
    package->model->eval();
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
  package->model->eval();
  absl::StatusOr<EvalResult> result = Evaluate(*package, eval.empty() ? train : eval);
  if (result.ok()) {
    result->best_epoch = best_epoch;
    result->epoch_accuracy = std::move(epoch_accuracy);
  }
  return result;
}

absl::StatusOr<EvalResult> TrainGate(ModelPackage* package, const std::vector<v1::Example>& train,
                                     const std::vector<v1::Example>& eval,
                                     const GateTrainOptions& options) {
  if (!package->model->has_gate()) {
    return absl::FailedPreconditionError("train --gate: the config has fewer than two branches");
  }
  if (options.epochs < 1 || options.batch_size < 1 || options.lambda < 0) {
    return absl::InvalidArgumentError("train --gate: epochs, batch_size >= 1 and lambda >= 0");
  }
  absl::Status valid = CheckExamples(package->config, train, "train");
  if (!valid.ok()) return valid;
  LimitMathThreads(1);
  const BranchPolicy policy(package->config);
  const int64_t n = static_cast<int64_t>(train.size());
  const int64_t nb = static_cast<int64_t>(policy.branches().size());

  // Frozen experts: each one's probability of the true class and whether it
  // is right, for every example it can answer; costs relative to the full
  // branch. Computed once, so gate epochs are cheap.
  std::vector<float> p_true(n * nb, 0), right(n * nb, 0), usable(n * nb, 0), cost(n * nb, 0);
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int64_t> frames = FramesOf(package->config, train[i].features());
    const double full = policy.Gflops(policy.full_branch(), false, frames);
    for (int64_t b = 0; b < nb; ++b) {
      usable[i * nb + b] = policy.Usable(static_cast<int>(b), frames);
      cost[i * nb + b] = static_cast<float>(policy.Gflops(static_cast<int>(b), false, frames) / full);
    }
  }
  const int classes = static_cast<int>(package->config.num_classes());
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t start = 0; start < n; start += 256) {
      std::vector<int64_t> rows;
      std::vector<const FeatureMap*> batch;
      for (int64_t i = start; i < std::min(n, start + 256); ++i) {
        if (usable[i * nb + b] == 0) continue;
        rows.push_back(i);
        batch.push_back(&train[i].features());
      }
      if (batch.empty()) continue;
      auto probabilities = PredictProbabilities(*package, batch, static_cast<int>(b));
      if (!probabilities.ok()) return probabilities.status();
      for (size_t k = 0; k < rows.size(); ++k) {
        const float* row = probabilities->data() + k * classes;
        const uint32_t label = train[rows[k]].label();
        p_true[rows[k] * nb + b] = row[label];
        right[rows[k] * nb + b] =
            static_cast<float>(std::max_element(row, row + classes) - row) == label;
      }
    }
  }

  try {
    torch::manual_seed(options.seed);
    Gate& gate = package->model->gate();
    gate->train();
    torch::optim::Adam optimizer(gate->parameters(), torch::optim::AdamOptions(options.learning_rate));
    std::mt19937_64 rng(options.seed);
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    const std::vector<int> all = AllModalities(package->config);
    const bool tty = options.progress && StderrIsTty();
    for (int epoch = 0; epoch < options.epochs; ++epoch) {
      const double t = options.epochs > 1 ? static_cast<double>(epoch) / (options.epochs - 1) : 1;
      const double temperature = options.start_temperature *
                                 std::pow(options.end_temperature / options.start_temperature, t);
      std::shuffle(order.begin(), order.end(), rng);
      double loss_sum = 0, right_sum = 0, cost_sum = 0;
      for (int64_t start = 0; start < n; start += options.batch_size) {
        const int64_t end = std::min(n, start + options.batch_size);
        std::vector<const FeatureMap*> batch;
        std::vector<float> bp, bu, bc, br;
        for (int64_t k = start; k < end; ++k) {
          const int64_t i = order[k];
          batch.push_back(&train[i].features());
          for (int64_t b = 0; b < nb; ++b) {
            bp.push_back(p_true[i * nb + b]);
            bu.push_back(usable[i * nb + b]);
            bc.push_back(cost[i * nb + b]);
            br.push_back(right[i * nb + b]);
          }
        }
        const int64_t rows = end - start;
        const torch::Tensor p = Matrix(bp, rows, nb), c = Matrix(bc, rows, nb);
        const torch::Tensor r = Matrix(br, rows, nb);
        const torch::Tensor mask = Matrix(bu, rows, nb) == 0;
        torch::Tensor logits = gate->forward(Collate(package->config, batch, all));
        if (options.gumbel) logits = logits - at::log(-at::log(at::rand_like(logits).clamp(1e-9, 1 - 1e-9)));
        logits = logits.masked_fill(mask, -1e9);
        const torch::Tensor soft = at::softmax(logits / temperature, -1);
        const torch::Tensor hard = at::one_hot(at::argmax(soft, -1), nb).to(at::kFloat);
        // Straight-through: the forward pass uses the hard choice, gradients
        // flow through the tempered softmax.
        const torch::Tensor g = hard - soft.detach() + soft;
        const torch::Tensor task = -at::log((g * p).sum(1) + 1e-6).mean();
        const torch::Tensor resource = options.lambda * (g * c).sum(1).mean();
        const torch::Tensor loss = task + resource;
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>() * rows;
        right_sum += (hard * r).sum().item<double>();
        cost_sum += (hard * c).sum().item<double>();
        if (tty) {
          std::fprintf(stderr, "\rgate epoch %d/%d  loss %.4f  acc %.3f  cost %.3f of full   ",
                       epoch + 1, options.epochs, loss_sum / end, right_sum / end, cost_sum / end);
        }
      }
      if (options.progress) {
        std::fprintf(stderr, "%sgate epoch %d/%d  tau %.3f  loss %.4f  train acc %.4f  "
                     "expected cost %.3f of full\n", tty ? "\r" : "", epoch + 1, options.epochs,
                     temperature, loss_sum / n, right_sum / n, cost_sum / n);
      }
    }
    gate->eval();
  } catch (const c10::Error& e) {
    package->model->eval();
    return absl::InternalError(absl::StrCat("gate training failed: ", e.what_without_backtrace()));
  }
  package->model->eval();
  return Evaluate(*package, eval.empty() ? train : eval);
}

}  // namespace mmfuse::model
