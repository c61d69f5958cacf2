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
#include "model/augment_options.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/dataset.pb.h"

namespace mmfuse::model {

struct ModelPackage;

struct TrainOptions {
  // Passes over the training set. >= 0 (0 keeps the experts as they are,
  // e.g. to train only a gate over experts loaded with --init_from).
  // Default 8.
  int epochs = 8;
  // Examples per optimiser step. >= 1. Default 32.
  int batch_size = 32;
  // AdamW peak learning rate: linear warmup from 0 over the first
  // `warmup_fraction` of the steps, then cosine decay to 0. > 0.
  // Default 2e-3.
  double learning_rate = 2e-3;
  // Share of the steps spent warming up. In [0, 1). Default 0.05.
  double warmup_fraction = 0.05;
  // AdamW decoupled weight decay. >= 0. Default 0.01.
  double weight_decay = 0.01;
  // Label smoothing of every cross-entropy term. In [0, 1). Default 0.1.
  double label_smoothing = 0.1;
  // Shuffling, modality dropout and augmentation. Default 1.
  uint64_t seed = 1;
  // Probability of hiding each modality of a training sample (one always
  // stays), so the model answers from whatever subset a request brings.
  // In [0, 1). Default 0.15.
  double modality_dropout = 0.15;
  // Weight of the auxiliary losses: a head per modality (LayerNorm, linear)
  // on the modality's class token after its unimodal layers, trained with
  // the fused loss over the samples that have the modality, so fusion
  // cannot leave a weaker modality's encoder untrained. Training-only: the
  // heads are not saved and cost nothing at inference. >= 0 (0 = none).
  // Default 0.5.
  double aux_loss_weight = 0.5;
  // Feature augmentation per batch (augment.h). Default off: at the epoch
  // budgets measured on AVD-10 it slowed learning more than it regularised
  // (docs/AVD10.md, "What bought what").
  bool augment = false;
  AugmentOptions augmentation;
  // With evaluation data: stop when this many epochs in a row bring no
  // better evaluation accuracy. >= 0 (0 = run every epoch). Default 0. The
  // weights of the best epoch are kept either way.
  int early_stopping_patience = 0;
  // A progress line on stderr (overwritten in place on a TTY). Default off.
  bool progress = false;
};

// Whether every field of `options` is in range; the error names the field.
absl::Status ValidateTrainOptions(const TrainOptions& options);

// Stage 2 of gated training (DynMM): the gate learns, experts frozen.
struct GateTrainOptions {
  // Passes over the training set. >= 1. Default 30.
  int epochs = 30;
  // Examples per step. >= 1. Default 64.
  int batch_size = 64;
  // Adam learning rate. Default 2e-3.
  double learning_rate = 2e-3;
  // Weight of the resource loss: lambda * sum_b mean(g_b) * cost_b / cost_full.
  // >= 0. Default 0.1.
  double lambda = 0.1;
  // Softmax temperature, annealed geometrically from start to end over the
  // epochs; the forward pass is always the hard (straight-through) choice.
  // DynMM's modality-level reference keeps 1; annealing further makes the
  // logits so large that budgets can no longer shift the choice.
  double start_temperature = 1.0;
  double end_temperature = 0.5;
  // Gumbel noise on the logits during training. Default off.
  bool gumbel = false;
  uint64_t seed = 1;
  bool progress = false;
};

// Stage 3 of gated training (optional): gate and experts finetuned together
// on the same loss as stage 2. Every usable expert runs on every batch so the
// gate's straight-through gradient sees all of them; an expert's weights get
// the task gradient only from the samples the gate sends it, so experts
// specialise on the samples they will serve.
struct JointTrainOptions {
  // Passes over the training set. >= 1. Default 2.
  int epochs = 2;
  // Examples per step. >= 1. Default 32.
  int batch_size = 32;
  // AdamW learning rate, constant: a finetune of trained weights, well below
  // stage 1's. Default 2e-4.
  double learning_rate = 2e-4;
  double weight_decay = 0.01;
  // Resource-loss weight, as in stage 2. >= 0. Default 0.1.
  double lambda = 0.1;
  // Gate softmax temperature for the straight-through gradient. > 0.
  // Default 0.5 (stage 2's final temperature).
  double temperature = 0.5;
  uint64_t seed = 1;
  bool progress = false;
};

struct EvalResult {
  // Stage 1 with evaluation data: the epoch whose weights were kept (the
  // best evaluation accuracy of the experts; 0 = the last epoch, no
  // evaluation data).
  int best_epoch = 0;
  // Stage 1 with evaluation data: per epoch, the evaluation accuracy of the
  // last expert trained (the only one of a package without a gate).
  std::vector<double> epoch_accuracy;
  int64_t examples = 0;
  double accuracy = 0;      // Top-1, in [0, 1].
  double mean_loss = 0;     // Cross-entropy.
  double mean_gflops = 0;   // Per example, at its own lengths, gate included.
  // Fraction of examples each branch answered (ResolveBranches order).
  std::vector<double> branch_fraction;
};

// Stage 1: trains every branch's expert in place on the examples it can
// use. With `eval` (may be empty), each expert is evaluated on the eval
// examples it can use after every epoch and keeps the weights of its best
// epoch. Returns the final evaluation (of `train` when `eval` is empty).
// Leaves the model in eval mode. For a gated package, evaluation goes
// through the current gate.
absl::StatusOr<EvalResult> Train(ModelPackage* package, const std::vector<v1::Example>& train,
                                 const std::vector<v1::Example>& eval,
                                 const TrainOptions& options);

// Stage 2: trains the gate of a package with several branches, experts
// frozen; returns the evaluation of `eval` (or `train`) through the gate.
absl::StatusOr<EvalResult> TrainGate(ModelPackage* package, const std::vector<v1::Example>& train,
                                     const std::vector<v1::Example>& eval,
                                     const GateTrainOptions& options);

// Stage 3: see JointTrainOptions. Returns the evaluation of `eval` (or
// `train`) through the gate; the model is left in eval mode.
absl::StatusOr<EvalResult> FinetuneJointly(ModelPackage* package,
                                           const std::vector<v1::Example>& train,
                                           const std::vector<v1::Example>& eval,
                                           const JointTrainOptions& options);

struct LambdaSweepRow {
  double lambda = 0;
  EvalResult result;  // Through the gate trained with this lambda (BALANCED).
};

// The accuracy-compute trade-off of a package's experts: per lambda, a fresh
// gate (the same seeded initialisation each time) trains over the frozen
// experts on `gate_train` (stage 2 with `options`, its lambda replaced) and
// `eval` is evaluated through it. `package` is left unchanged.
absl::StatusOr<std::vector<LambdaSweepRow>> SweepLambda(const ModelPackage& package,
                                                        const std::vector<v1::Example>& gate_train,
                                                        const std::vector<v1::Example>& eval,
                                                        const std::vector<double>& lambdas,
                                                        const GateTrainOptions& options);

// Evaluates with the branch choice a request of budget `level` gets
// (BALANCED: through the gate; ACCURATE: the full branch).
absl::StatusOr<EvalResult> Evaluate(const ModelPackage& package,
                                    const std::vector<v1::Example>& examples, int batch_size = 64,
                                    v1::BudgetLevel level = v1::BUDGET_LEVEL_BALANCED);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_TRAINER_H_
