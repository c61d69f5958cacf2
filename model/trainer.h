// Training and evaluation of a model package on dataset examples. The header
// carries no LibTorch.
//
// Deterministic: the same package initialisation, data and options give the
// same weights (one math thread; LimitMathThreads(1) is applied).
#ifndef MMFUSE_MODEL_TRAINER_H_
#define MMFUSE_MODEL_TRAINER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "mmfuse/v1/dataset.pb.h"

namespace mmfuse::model {

struct ModelPackage;

struct TrainOptions {
  // Passes over the training set. >= 1. Default 8.
  int epochs = 8;
  // Examples per optimiser step. >= 1. Default 32.
  int batch_size = 32;
  // AdamW peak learning rate, cosine-decayed to 0 over training. Default 2e-3.
  double learning_rate = 2e-3;
  // AdamW decoupled weight decay. Default 0.01.
  double weight_decay = 0.01;
  // Shuffling and modality dropout. Default 1.
  uint64_t seed = 1;
  // Probability of hiding each modality of a training sample (one always
  // stays), so the model answers from whatever subset a request brings.
  // In [0, 1). Default 0.15.
  double modality_dropout = 0.15;
  // A progress line on stderr (overwritten in place on a TTY). Default off.
  bool progress = false;
};

struct EvalResult {
  int64_t examples = 0;
  double accuracy = 0;      // Top-1, in [0, 1].
  double mean_loss = 0;     // Cross-entropy.
  double mean_gflops = 0;   // Per example, at its own lengths.
};

// Trains `package->model` in place on `train`; evaluates on `eval` (may be
// empty) after each epoch; returns the final evaluation (of `train` when
// `eval` is empty). Leaves the model in eval mode.
absl::StatusOr<EvalResult> Train(ModelPackage* package, const std::vector<v1::Example>& train,
                                 const std::vector<v1::Example>& eval,
                                 const TrainOptions& options);

absl::StatusOr<EvalResult> Evaluate(const ModelPackage& package,
                                    const std::vector<v1::Example>& examples, int batch_size = 64);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_TRAINER_H_
