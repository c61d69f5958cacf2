// Stage 3 of gated training: gate and experts together (trainer.h).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include <torch/types.h>
#include <ATen/ops/argmax.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/full.h>
#include <ATen/ops/log.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/one_hot.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "model/branch_policy.h"
#include "model/collate.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/trainer.h"
#include "model/training_util.h"

namespace mmfuse::model {
namespace {

struct BranchOutcomes {
  torch::Tensor p_true;  // [B, branches]: probability of the true class, with gradients.
  torch::Tensor right;   // [B, branches]: 1 where the branch's top class is the label.
};

// Every usable branch's outcome on each sample of the batch (0 where the
// sample lacks the branch's modalities).
BranchOutcomes RunEveryBranch(MultimodalModel& model, const v1::ModelConfig& config,
                                     const std::vector<const v1::Example*>& batch,
                                     const std::vector<float>& usable, int64_t branches) {
  const std::vector<int> all = AllModalities(config);
  const int64_t rows = static_cast<int64_t>(batch.size());
  torch::Tensor p_true = at::zeros({rows, branches});
  torch::Tensor right = at::zeros({rows, branches});
  for (int64_t b = 0; b < branches; ++b) {
    std::vector<const v1::Example*> members;
    std::vector<int64_t> member_rows;
    for (int64_t i = 0; i < rows; ++i) {
      if (usable[i * branches + b] == 0) continue;
      members.push_back(batch[i]);
      member_rows.push_back(i);
    }
    if (members.empty()) continue;
    const torch::Tensor labels = Labels(members);
    const torch::Tensor log_p = at::log_softmax(
        model->forward(Collate(config, Features(members), all), static_cast<int>(b)), -1);
    const torch::Tensor index =
        at::from_blob(member_rows.data(), {static_cast<int64_t>(member_rows.size())}, at::kLong)
            .clone();
    const torch::Tensor column = at::full_like(index, b);
    p_true = p_true.index_put({index, column}, log_p.gather(1, labels.unsqueeze(1)).squeeze(1).exp());
    right = right.index_put({index, column}, at::argmax(log_p.detach(), -1).eq(labels).to(at::kFloat));
  }
  return {p_true, right};
}

}  // namespace

absl::StatusOr<EvalResult> FinetuneJointly(ModelPackage* package,
                                           const std::vector<v1::Example>& train,
                                           const std::vector<v1::Example>& eval,
                                           const JointTrainOptions& options) {
  if (!package->model->has_gate()) {
    return absl::FailedPreconditionError(
        "joint finetune: the config has fewer than two branches (no gate)");
  }
  if (options.epochs < 1 || options.batch_size < 1 || options.lambda < 0 ||
      !(options.temperature > 0) || !(options.learning_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "joint finetune: epochs=", options.epochs, " and batch_size=", options.batch_size,
        " must be >= 1, lambda=", options.lambda, " >= 0, temperature=", options.temperature,
        " and learning_rate=", options.learning_rate, " > 0"));
  }
  if (train.empty()) return absl::InvalidArgumentError("joint finetune: no training examples");
  if (absl::Status valid = CheckExamples(package->config, train, "train"); !valid.ok()) {
    return valid;
  }
  LimitMathThreads(1);
  const v1::ModelConfig& config = package->config;
  const BranchPolicy policy(config);
  const int64_t nb = static_cast<int64_t>(policy.branches().size());
  const std::vector<int> all = AllModalities(config);
  MultimodalModel& model = package->model;
  try {
    torch::manual_seed(options.seed);
    std::vector<torch::Tensor> trainable;
    for (const torch::Tensor& p : model->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    torch::optim::AdamW optimizer(
        trainable,
        torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
    std::mt19937_64 rng(options.seed);
    std::vector<size_t> order(train.size());
    std::iota(order.begin(), order.end(), 0);
    const bool tty = options.progress && StderrIsTty();
    model->train();
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      double loss_sum = 0, right_sum = 0, cost_sum = 0;
      int64_t seen = 0;
      for (size_t start = 0; start < order.size(); start += options.batch_size) {
        std::vector<const v1::Example*> batch;
        for (size_t k = start; k < std::min(order.size(), start + options.batch_size); ++k) {
          batch.push_back(&train[order[k]]);
        }
        const int64_t rows = static_cast<int64_t>(batch.size());
        std::vector<float> usable(rows * nb), cost(rows * nb);
        for (int64_t i = 0; i < rows; ++i) {
          const std::vector<int64_t> frames = FramesOf(config, batch[i]->features());
          const double full = policy.Gflops(policy.full_branch(), false, frames);
          for (int64_t b = 0; b < nb; ++b) {
            usable[i * nb + b] = policy.Usable(static_cast<int>(b), frames);
            cost[i * nb + b] =
                static_cast<float>(policy.Gflops(static_cast<int>(b), false, frames) / full);
          }
        }
        const torch::Tensor c = Matrix(cost, rows, nb);
        const torch::Tensor mask = Matrix(usable, rows, nb) == 0;
        const torch::Tensor logits =
            model->gate()->forward(Collate(config, Features(batch), all)).masked_fill(mask, -1e9);
        const torch::Tensor soft = at::softmax(logits / options.temperature, -1);
        const torch::Tensor hard = at::one_hot(at::argmax(soft, -1), nb).to(at::kFloat);
        const torch::Tensor g = hard - soft.detach() + soft;  // Straight-through.
        const BranchOutcomes outcomes = RunEveryBranch(model, config, batch, usable, nb);
        const torch::Tensor task = -at::log((g * outcomes.p_true).sum(1) + 1e-6).mean();
        const torch::Tensor loss = task + options.lambda * (g * c).sum(1).mean();
        optimizer.zero_grad();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(trainable, 1.0);
        optimizer.step();
        seen += rows;
        loss_sum += loss.item<double>() * rows;
        cost_sum += (hard * c).sum().item<double>();
        right_sum += (hard * outcomes.right).sum().item<double>();
        if (tty) {
          std::fprintf(stderr, "\rjoint epoch %d/%d  loss %.4f  acc %.3f  cost %.3f of full   ",
                       epoch, options.epochs, loss_sum / seen, right_sum / seen, cost_sum / seen);
        }
      }
      if (options.progress) {
        std::fprintf(stderr, "%sjoint epoch %d/%d  loss %.4f  train acc %.4f  expected cost %.3f "
                     "of full\n", tty ? "\r" : "", epoch, options.epochs, loss_sum / seen,
                     right_sum / seen, cost_sum / seen);
      }
    }
  } catch (const c10::Error& e) {
    model->eval();
    return absl::InternalError(absl::StrCat("joint finetune failed: ", e.what_without_backtrace()));
  }
  model->eval();
  return Evaluate(*package, eval.empty() ? train : eval);
}

}  // namespace mmfuse::model
