// The lambda sweep (trainer.h): one fresh gate per lambda over frozen experts.
#include <string>

#include <torch/utils.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/inference.h"
#include "model/model_package.h"
#include "model/trainer.h"

namespace mmfuse::model {
namespace {

// `to` (a fresh package of the same config) takes every expert weight and
// buffer of `from`; its gate keeps its fresh initialisation.
void CopyExperts(const ModelPackage& from, ModelPackage* to) {
  torch::NoGradGuard no_grad;
  auto targets = to->model->named_parameters();
  for (const auto& item : from.model->named_parameters()) {
    if (absl::StartsWith(item.key(), "gate.")) continue;
    targets[item.key()].copy_(item.value());
  }
  auto buffers = to->model->named_buffers();
  for (const auto& item : from.model->named_buffers()) {
    if (absl::StartsWith(item.key(), "gate.")) continue;
    buffers[item.key()].copy_(item.value());
  }
}

}  // namespace

absl::StatusOr<std::vector<LambdaSweepRow>> SweepLambda(const ModelPackage& package,
                                                        const std::vector<v1::Example>& gate_train,
                                                        const std::vector<v1::Example>& eval,
                                                        const std::vector<double>& lambdas,
                                                        const GateTrainOptions& options) {
  if (lambdas.empty()) return absl::InvalidArgumentError("lambda sweep: no lambda given");
  for (double lambda : lambdas) {
    if (!(lambda >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat("lambda sweep: lambda=", lambda, " is < 0"));
    }
  }
  std::vector<LambdaSweepRow> rows;
  for (double lambda : lambdas) {
    SeedRandom(options.seed);  // The same initial gate for every lambda.
    absl::StatusOr<std::shared_ptr<ModelPackage>> fresh =
        NewModelPackage(package.config, package.labels);
    if (!fresh.ok()) return fresh.status();
    try {
      CopyExperts(package, fresh->get());
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("lambda sweep: copying experts failed: ", e.what_without_backtrace()));
    }
    GateTrainOptions with_lambda = options;
    with_lambda.lambda = lambda;
    absl::StatusOr<EvalResult> result = TrainGate(fresh->get(), gate_train, eval, with_lambda);
    if (!result.ok()) return result.status();
    rows.push_back({lambda, *std::move(result)});
  }
  return rows;
}

}  // namespace mmfuse::model
