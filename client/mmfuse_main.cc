// mmfuse: the command-line tool.
//   mmfuse classify   send one sample (from a dataset file or generated)
//   mmfuse info       describe the served model
//   mmfuse health     grpc.health.v1 check; exit 0 when SERVING
//   mmfuse datagen    write a generated dataset file
//   mmfuse train      train a model package
//   mmfuse eval       evaluate a model package on a dataset file
//   mmfuse flops      estimated GFLOPs of a package or fusion mode at given lengths
//   mmfuse check      load a model package; exit 0 if it is whole
//   mmfuse tune       measure a package's batching here; write the best into its config
//   mmfuse extract    featurize a manifest of media files into a dataset file
//   (classify --audio/--image/--video/--text featurizes media: media_classify.h)
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "client/classifier_client.h"
#if MMFUSE_WITH_MEDIA
#include "client/extract_command.h"
#include "client/media_classify.h"
#endif
#include "common/status_macros.h"
#include "data/dataset_io.h"
#include "data/generator.h"
#include "google/protobuf/util/json_util.h"
#include "model/default_config.h"
#include "model/device.h"
#include "model/flops.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/trainer.h"
#include "tuning/tune_command.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "classify/info/health: server address.");
ABSL_FLAG(std::string, model, "", "classify/info: model name; empty = the server's default.");
ABSL_FLAG(std::string, data, "",
          "classify: dataset file to take the sample from (else one is generated); "
          "train/eval: dataset file; tune: dataset whose samples are replayed.");
ABSL_FLAG(int, index, 0, "classify: index of the sample in --data.");
ABSL_FLAG(int, label, -1, "classify: class of the generated sample; -1 = random.");
ABSL_FLAG(int, top_k, 3, "classify: classes to return.");
ABSL_FLAG(std::string, budget, "balanced",
          "classify/eval: accurate (full branch), balanced (the gate) or fast.");
ABSL_FLAG(double, max_gflops, 0, "classify: GFLOP cap of the branch; 0 = none.");
ABSL_FLAG(int, priority, 0, "classify: 0 = default, 1 = most urgent.");
ABSL_FLAG(int, timeout_ms, 10000, "classify/info/health: RPC deadline in ms.");
ABSL_FLAG(bool, json, false, "Print JSON instead of text.");
ABSL_FLAG(std::string, service, "", "health: service name; empty = the whole server.");
ABSL_FLAG(bool, tls, false,
          "classify/info/health: connect over TLS (implied by any --tls_*_file).");
ABSL_FLAG(std::string, tls_ca_file, "",
          "classify/info/health: PEM CA bundle verifying the server; empty = system roots.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "classify/info/health: PEM client certificate for mutual TLS (with --tls_key_file).");
ABSL_FLAG(std::string, tls_key_file, "", "classify/info/health: PEM key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_server_name, "",
          "classify/info/health: name the server certificate must carry; empty = the host of "
          "--server.");
ABSL_FLAG(std::string, out, "", "datagen: dataset file to write; train: package directory.");
ABSL_FLAG(int, examples, 2000, "datagen: number of examples.");
ABSL_FLAG(uint64_t, seed, 1, "datagen/train/classify: seed.");
ABSL_FLAG(int, split, 0, "datagen/classify: sample stream (0 = train, 1 = test, ...).");
ABSL_FLAG(double, missing_rate, 0.0, "datagen: probability a modality is absent.");
ABSL_FLAG(std::string, only, "",
          "datagen: keep only this modality of every sample (same samples otherwise).");
ABSL_FLAG(std::string, eval_data, "",
          "train: held-out dataset file evaluated after every epoch; each expert keeps the "
          "weights of its best epoch. Empty = --val_fraction of --data.");
ABSL_FLAG(double, val_fraction, 0.0,
          "train without --eval_data: this fraction of --data (drawn with --seed) is held out "
          "for per-epoch evaluation and best-epoch selection, in [0, 0.5]; 0 = none.");
ABSL_FLAG(int, early_stopping, 0,
          "train: stop after this many epochs without a better evaluation accuracy; 0 = off.");
ABSL_FLAG(double, warmup_fraction, 0.05,
          "train: share of the steps with a linear learning-rate warmup before the cosine "
          "decay, in [0, 1).");
ABSL_FLAG(double, weight_decay, 0.01, "train: AdamW decoupled weight decay, >= 0.");
ABSL_FLAG(double, label_smoothing, 0.1, "train: label smoothing of every loss, in [0, 1).");
ABSL_FLAG(double, modality_dropout, 0.15,
          "train: probability of hiding each modality of a training sample (one always stays), "
          "in [0, 1).");
ABSL_FLAG(double, dropout, -1,
          "train: dropout of every transformer layer, in [0, 1); -1 = the config's "
          "(transformer.dropout).");
ABSL_FLAG(double, aux_weight, 0.5,
          "train: weight of the auxiliary losses (a training-only head per modality on its "
          "encoder's class token), >= 0; 0 = none.");
ABSL_FLAG(bool, augment, false,
          "train: feature augmentation, redrawn every batch (audio time and frequency masks, "
          "image shifts and random erasing, text token dropout; modalities with a featurizer "
          "in the config only).");
ABSL_FLAG(int, aug_time_masks, 2, "train --augment: time masks per audio sample, >= 0.");
ABSL_FLAG(double, aug_time_mask_fraction, 0.1,
          "train --augment: longest time mask, as a fraction of the sample's frames, in [0, 1].");
ABSL_FLAG(int, aug_freq_masks, 2, "train --augment: frequency masks per audio sample, >= 0.");
ABSL_FLAG(int, aug_freq_mask_bands, 6, "train --augment: widest frequency mask in mel bands, >= 0.");
ABSL_FLAG(int, aug_image_shift, 2, "train --augment: largest image shift in pixels, >= 0.");
ABSL_FLAG(double, aug_image_erase, 0.5,
          "train --augment: probability of erasing a rectangle of the image, in [0, 1].");
ABSL_FLAG(double, aug_token_dropout, 0.1,
          "train --augment: probability of dropping each text token, in [0, 1).");
ABSL_FLAG(std::string, config, "", "train: config.pbtxt to start from; empty = default.");
ABSL_FLAG(int, epochs, 8, "train: epochs.");
ABSL_FLAG(int, batch_size, 32, "train: batch size.");
ABSL_FLAG(double, learning_rate, 2e-3, "train: peak learning rate.");
ABSL_FLAG(std::string, model_dir, "models/default",
          "eval/flops/check/tune: model package directory.");
ABSL_FLAG(std::string, device, "cpu",
          "eval/check/tune: where the model runs: cpu, cuda, cuda:N or auto (model/device.h).");
ABSL_FLAG(std::string, precision, "fp32", "eval/check/tune: number format: fp32, bf16 or fp16 (GPU).");
ABSL_FLAG(std::string, mode, "",
          "train: fusion mode (concat, late, mbt, sft, locomt, pmf) replacing the config's; "
          "flops: a mode on the default architecture, or \"all\"; empty = --model_dir's.");
ABSL_FLAG(bool, gate, false,
          "train: gated model (DynMM): experts per branch (default branches text, audio, video, "
          "full unless the config lists some), then the gate with the experts frozen.");
ABSL_FLAG(double, lambda, 0.1, "train --gate: weight of the resource loss.");
ABSL_FLAG(int, gate_epochs, 30, "train --gate: epochs of gate training.");
ABSL_FLAG(bool, gumbel, false, "train --gate: Gumbel noise on the gate logits in training.");
ABSL_FLAG(double, end_temperature, 0.5, "train --gate: final softmax temperature (from 1).");
ABSL_FLAG(std::string, gate_data, "",
          "train --gate: dataset the gate learns on; empty = --data. Held-out data shows the "
          "gate how the experts do on samples they were not trained on.");
ABSL_FLAG(std::string, gate_branches, "modality",
          "train --gate (when the config lists no branches): modality (text, audio, video, "
          "full), fusion (full, fuse_last, late: the same modalities fused at other depths) or "
          "modality,fusion (both).");
ABSL_FLAG(std::string, gate_pooling, "mean_max",
          "train --gate: how the gate summarises each modality's frames: mean or mean_max.");
ABSL_FLAG(int, joint_epochs, 0,
          "train --gate: epochs of stage 3, gate and experts finetuned together; 0 = none.");
ABSL_FLAG(double, joint_learning_rate, 2e-4, "train --gate --joint_epochs: learning rate.");
ABSL_FLAG(std::string, lambda_sweep, "",
          "eval: comma-separated lambdas; per lambda a fresh gate trains over the package's "
          "frozen experts on --gate_data and --data is evaluated through it (one row each).");
ABSL_FLAG(double, easy_fraction, 0.0,
          "datagen: fraction of samples whose text alone gives the class (the rest need fusion).");
ABSL_FLAG(bool, train_prompts_only, false, "train: PMF trains only prompts, adapters and heads.");
ABSL_FLAG(std::string, init_from, "",
          "train: start from packages' weights: comma-separated PATH (every parameter; same "
          "architecture, e.g. PMF prompt training on unimodally trained streams) or "
          "PATH:PREFIX[:PREFIX...] (only parameters whose names start with a prefix, e.g. "
          "models/audio:expert_full.audio_ for the audio encoder of a unimodal package); "
          "PREFIX may be FROM=TO to copy under another name (e.g. "
          "expert_full.audio_=expert_audio.audio_ into a gated package's audio expert).");
ABSL_FLAG(std::string, lengths, "", "flops: frames per modality, e.g. audio=100,video=64,text=48; "
          "empty = the reference lengths.");
ABSL_FLAG(int, workers, 2, "tune: batcher workers of every trial (as mmfuse-server --workers).");
ABSL_FLAG(int, concurrency, 0,
          "tune: requests in flight at the saturating load; 0 = 8 per worker.");
ABSL_FLAG(double, trial_seconds, 2,
          "tune: measured seconds per setting at the saturating load (half as long at one "
          "request per worker), > 0.");
ABSL_FLAG(int, warmup_ms, 300, "tune: load before each measured window, ms, >= 0.");
ABSL_FLAG(std::string, batch_sizes, "1,2,4,8,16,32", "tune: max_batch_size candidates.");
ABSL_FLAG(std::string, bucket_ratios, "0,1.5,2,3",
          "tune: length_bucket_ratio candidates (0 = no per-modality length buckets).");
ABSL_FLAG(std::string, delays_us, "0,250,1000", "tune: max_queue_delay_us candidates.");
ABSL_FLAG(std::string, token_multiples, "0,4,8",
          "tune: max_batch_tokens candidates, as multiples of the requests' mean tokens "
          "(0 = no bound).");
ABSL_FLAG(double, min_gain, 0.03,
          "tune: throughput gain a setting needs over the best so far to replace it, in [0, 1).");
ABSL_FLAG(double, max_latency_increase, 0.15,
          "tune: how far above max batch 1's a lone request's p50 may be, in [0, 10].");
ABSL_FLAG(int, confirm_repeats, 3,
          "tune: side by side runs of the choice and max batch 1, each, in [1, 20].");
ABSL_FLAG(int, max_samples, 0, "tune: replay the first N samples of --data; 0 = all.");
ABSL_FLAG(std::string, table_out, "", "tune: also write the measured table (Markdown) here.");
ABSL_FLAG(bool, dry_run, false, "tune: measure and print, but leave config.pbtxt unchanged.");

namespace mmfuse {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "mmfuse: %s\n", std::string(status.ToString()).c_str());
  return 1;
}

// A client of --server with the --tls* flags' security.
absl::StatusOr<std::unique_ptr<client::ClassifierClient>> Connect() {
  client::ChannelSecurityOptions security;
  security.tls = absl::GetFlag(FLAGS_tls);
  security.ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  security.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  security.key_file = absl::GetFlag(FLAGS_tls_key_file);
  security.server_name = absl::GetFlag(FLAGS_tls_server_name);
  return client::ClassifierClient::Create(absl::GetFlag(FLAGS_server), security);
}

absl::Duration Timeout() { return absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms)); }

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

absl::StatusOr<v1::Example> LoadSample() {
  const std::string path = absl::GetFlag(FLAGS_data);
  if (path.empty()) {
    data::GeneratorOptions options;
    options.seed = absl::GetFlag(FLAGS_seed);
    data::Generator generator(options, absl::GetFlag(FLAGS_split));
    const int label = absl::GetFlag(FLAGS_label);
    return label >= 0 ? generator.NextOfClass(label % data::kGeneratedClasses) : generator.Next();
  }
  auto reader = data::DatasetReader::Open(path);
  if (!reader.ok()) return reader.status();
  v1::Example example;
  for (int i = 0; i <= absl::GetFlag(FLAGS_index); ++i) {
    absl::StatusOr<bool> more = (*reader)->Next(&example);
    if (!more.ok()) return more.status();
    if (!*more) {
      return absl::OutOfRangeError(absl::StrCat("--index=", absl::GetFlag(FLAGS_index), " but ",
                                                path, " has only ", i, " examples"));
    }
  }
  return example;
}

absl::StatusOr<v1::BudgetLevel> ParseBudget(std::string name) {
  name = absl::AsciiStrToLower(name);
  if (name == "accurate") return v1::BUDGET_LEVEL_ACCURATE;
  if (name == "balanced") return v1::BUDGET_LEVEL_BALANCED;
  if (name == "fast") return v1::BUDGET_LEVEL_FAST;
  return absl::InvalidArgumentError(
      absl::StrCat("--budget=", name, " is not one of accurate, balanced, fast"));
}

// The sample to classify: featurized from --audio/--image/--video/--text
// when given (builds with media support), else --data/--index.
absl::StatusOr<v1::Example> SampleToClassify() {
#if MMFUSE_WITH_MEDIA
  if (client::HasMediaFlags()) return client::MediaSampleFromFlags(Connect);
#endif
  return LoadSample();
}

// `mmfuse extract`, in builds with media support.
int Extract() {
#if MMFUSE_WITH_MEDIA
  return client::RunExtractCommand();
#else
  return Fail(absl::UnimplementedError(
      "extract: this mmfuse was built without media support (-DMMFUSE_WITH_MEDIA=OFF)"));
#endif
}

int Classify() {
  absl::StatusOr<v1::Example> example = SampleToClassify();
  if (!example.ok()) return Fail(example.status());
  absl::StatusOr<v1::BudgetLevel> budget = ParseBudget(absl::GetFlag(FLAGS_budget));
  if (!budget.ok()) return Fail(budget.status());
  v1::ClassifyRequest request = client::RequestFromExample(*example);
  request.set_model(absl::GetFlag(FLAGS_model));
  request.set_top_k(absl::GetFlag(FLAGS_top_k));
  request.mutable_budget()->set_level(*budget);
  request.mutable_budget()->set_max_gflops(absl::GetFlag(FLAGS_max_gflops));
  request.set_priority(absl::GetFlag(FLAGS_priority));

  absl::StatusOr<std::unique_ptr<client::ClassifierClient>> connected = Connect();
  if (!connected.ok()) return Fail(connected.status());
  client::ClassifierClient& client = **connected;
  absl::StatusOr<v1::ClassifyResponse> response = client.Classify(request, Timeout());
  if (!response.ok()) return Fail(response.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*response) << "\n";
    return 0;
  }
  std::cout << "sample " << example->id() << " (true class: " << example->label_name() << ")\n";
  for (int i = 0; i < response->top_k_size(); ++i) {
    const v1::ClassScore& score = response->top_k(i);
    std::printf("  %d. %-10s %.4f\n", i + 1, score.label().c_str(), score.probability());
  }
  std::cout << "model " << response->model() << ", branch " << response->branch()
            << " (" << absl::StrJoin(response->modalities_used(), ", ") << "), "
            << response->gflops() << " GFLOPs, batch of " << response->batch_size() << "\n";
  std::cout << "server time: queue " << response->timings().queue_us() << " us, compute "
            << response->timings().compute_us() << " us, total "
            << response->timings().total_us() << " us\n";
  return 0;
}

int Info() {
  absl::StatusOr<std::unique_ptr<client::ClassifierClient>> connected = Connect();
  if (!connected.ok()) return Fail(connected.status());
  client::ClassifierClient& client = **connected;
  absl::StatusOr<v1::ModelInfo> info = client.GetModelInfo(absl::GetFlag(FLAGS_model), Timeout());
  if (!info.ok()) return Fail(info.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(*info) << "\n";
    return 0;
  }
  std::cout << "model " << info->name() << " version " << info->version() << ", fusion "
            << info->fusion_mode() << ", d_model " << info->d_model() << ", "
            << info->num_layers() << " layers, " << info->num_parameters() << " parameters\n";
  std::cout << "modalities:\n";
  for (const v1::ModalityInfo& m : info->modalities()) {
    std::printf("  %-6s dim %4u  max frames %5u\n", m.name().c_str(), m.feature_dim(),
                m.max_frames());
  }
  std::cout << "classes: " << absl::StrJoin(info->labels(), ", ") << "\n";
  std::cout << "branches (GFLOPs at reference lengths):\n";
  for (const v1::BranchInfo& b : info->branches()) {
    std::printf("  %-10s %-22s %.4f\n", b.name().c_str(),
                absl::StrJoin(b.modalities(), "+").c_str(), b.gflops());
  }
  return 0;
}

int Health() {
  absl::StatusOr<std::unique_ptr<client::ClassifierClient>> connected = Connect();
  if (!connected.ok()) return Fail(connected.status());
  client::ClassifierClient& client = **connected;
  absl::StatusOr<std::string> status = client.CheckHealth(absl::GetFlag(FLAGS_service), Timeout());
  if (!status.ok()) return Fail(status.status());
  std::cout << *status << "\n";
  return *status == "SERVING" ? 0 : 1;
}

int Datagen() {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Fail(absl::InvalidArgumentError("datagen needs --out"));
  data::GeneratorOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.missing_rate = absl::GetFlag(FLAGS_missing_rate);
  options.easy_fraction = absl::GetFlag(FLAGS_easy_fraction);
  data::Generator generator(options, absl::GetFlag(FLAGS_split));
  auto writer = data::DatasetWriter::Open(out);
  if (!writer.ok()) return Fail(writer.status());
  const std::string only = absl::GetFlag(FLAGS_only);
  int written = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_examples); ++i) {
    v1::Example example = generator.Next();
    if (!only.empty()) {
      if (example.features().count(only) == 0) continue;  // Nothing left to classify.
      const v1::FeatureSequence kept = example.features().at(only);
      example.mutable_features()->clear();
      (*example.mutable_features())[only] = kept;
    }
    ++written;
    absl::Status status = (*writer)->Write(example);
    if (!status.ok()) return Fail(status);
  }
  absl::Status status = (*writer)->Close();
  if (!status.ok()) return Fail(status);
  std::fprintf(stderr, "wrote %d examples to %s\n", written, out.c_str());
  return 0;
}

// One evaluation as a JSON object (branch_fraction by branch name).
std::string EvalJson(const std::vector<model::Branch>& branches, const model::EvalResult& result) {
  std::vector<std::string> fractions;
  for (size_t b = 0; b < branches.size() && b < result.branch_fraction.size(); ++b) {
    fractions.push_back(absl::StrCat("\"", branches[b].name, "\": ", result.branch_fraction[b]));
  }
  return absl::StrFormat(
      "{\"examples\": %lld, \"accuracy\": %.6f, \"mean_loss\": %.6f, \"mean_gflops\": %.6f, "
      "\"branch_fraction\": {%s}}",
      static_cast<long long>(result.examples), result.accuracy, result.mean_loss,
      result.mean_gflops, absl::StrJoin(fractions, ", "));
}

std::string EvalText(const std::vector<model::Branch>& branches, const model::EvalResult& result) {
  std::vector<std::string> fractions;
  for (size_t b = 0; b < branches.size() && b < result.branch_fraction.size(); ++b) {
    fractions.push_back(absl::StrCat(branches[b].name, " ", result.branch_fraction[b]));
  }
  return absl::StrFormat("examples %lld  accuracy %.4f  loss %.4f  mean GFLOPs %.5f  branches: %s",
                         static_cast<long long>(result.examples), result.accuracy,
                         result.mean_loss, result.mean_gflops, absl::StrJoin(fractions, ", "));
}

void PrintEval(const v1::ModelConfig& config, const model::EvalResult& result) {
  const std::vector<model::Branch> branches = model::ResolveBranches(config);
  std::printf("%s\n", (absl::GetFlag(FLAGS_json) ? EvalJson(branches, result)
                                                  : EvalText(branches, result)).c_str());
}

// Branches and gate shape of a gated package from the --gate_* flags.
absl::Status ConfigureGate(v1::ModelConfig* config) {
  const std::string pooling = absl::GetFlag(FLAGS_gate_pooling);
  if (pooling == "mean") {
    config->mutable_gate()->set_pooling(v1::GATE_POOLING_MEAN);
  } else if (pooling == "mean_max") {
    config->mutable_gate()->set_pooling(v1::GATE_POOLING_MEAN_MAX);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--gate_pooling=", pooling, " is not one of mean, mean_max"));
  }
  if (config->branches_size() >= 2) return absl::OkStatus();  // The config's own branches.
  bool modality = false, fusion = false;
  for (absl::string_view kind : absl::StrSplit(absl::GetFlag(FLAGS_gate_branches), ',')) {
    if (kind == "modality") {
      modality = true;
    } else if (kind == "fusion") {
      fusion = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gate_branches has \"", kind, "\"; use modality, fusion or modality,fusion"));
    }
  }
  config->clear_branches();
  if (modality) model::AddDefaultBranches(config);
  if (fusion) model::AddFusionLevelBranches(config);
  return absl::OkStatus();
}

// The stage-1 recipe from the train flags, validated.
absl::StatusOr<model::TrainOptions> RecipeFromFlags() {
  model::TrainOptions options;
  options.epochs = absl::GetFlag(FLAGS_epochs);
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.learning_rate = absl::GetFlag(FLAGS_learning_rate);
  options.warmup_fraction = absl::GetFlag(FLAGS_warmup_fraction);
  options.weight_decay = absl::GetFlag(FLAGS_weight_decay);
  options.label_smoothing = absl::GetFlag(FLAGS_label_smoothing);
  options.modality_dropout = absl::GetFlag(FLAGS_modality_dropout);
  options.aux_loss_weight = absl::GetFlag(FLAGS_aux_weight);
  options.early_stopping_patience = absl::GetFlag(FLAGS_early_stopping);
  options.augment = absl::GetFlag(FLAGS_augment);
  options.augmentation.time_masks = absl::GetFlag(FLAGS_aug_time_masks);
  options.augmentation.time_mask_fraction = absl::GetFlag(FLAGS_aug_time_mask_fraction);
  options.augmentation.freq_masks = absl::GetFlag(FLAGS_aug_freq_masks);
  options.augmentation.freq_mask_bands = absl::GetFlag(FLAGS_aug_freq_mask_bands);
  options.augmentation.image_shift_px = absl::GetFlag(FLAGS_aug_image_shift);
  options.augmentation.image_erase_probability = absl::GetFlag(FLAGS_aug_image_erase);
  options.augmentation.token_dropout = absl::GetFlag(FLAGS_aug_token_dropout);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.progress = true;
  MMFUSE_RETURN_IF_ERROR(model::ValidateTrainOptions(options));
  return options;
}

// --init_from: comma-separated PATH or PATH:PREFIX[:PREFIX...].
absl::Status InitFrom(const std::string& spec, model::ModelPackage* package) {
  if (spec.empty()) return absl::OkStatus();
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(entry, ':');
    const std::string path = parts.front();
    parts.erase(parts.begin());
    MMFUSE_ASSIGN_OR_RETURN(auto from, model::LoadModelPackage(path));
    MMFUSE_RETURN_IF_ERROR(model::CopyWeights(*from, package, parts));
  }
  return absl::OkStatus();
}

// Moves a seeded random `fraction` of `train` out, returned as evaluation
// data (the rest keeps its order).
std::vector<v1::Example> HoldOut(double fraction, uint64_t seed, std::vector<v1::Example>* train) {
  std::vector<size_t> order(train->size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed ^ 0x5eed0fa1));
  const size_t held = static_cast<size_t>(fraction * train->size());
  std::vector<bool> out(train->size(), false);
  for (size_t i = 0; i < held; ++i) out[order[i]] = true;
  std::vector<v1::Example> kept, eval;
  for (size_t i = 0; i < train->size(); ++i) (out[i] ? eval : kept).push_back(std::move((*train)[i]));
  *train = std::move(kept);
  return eval;
}

int Train() {
  const std::string out = absl::GetFlag(FLAGS_out);
  const std::string data_path = absl::GetFlag(FLAGS_data);
  if (out.empty() || data_path.empty()) {
    return Fail(absl::InvalidArgumentError("train needs --data and --out"));
  }
  auto train = data::ReadDataset(data_path);
  if (!train.ok()) return Fail(train.status());
  std::vector<v1::Example> eval;
  if (!absl::GetFlag(FLAGS_eval_data).empty()) {
    auto read = data::ReadDataset(absl::GetFlag(FLAGS_eval_data));
    if (!read.ok()) return Fail(read.status());
    eval = std::move(*read);
  }
  if (const double f = absl::GetFlag(FLAGS_val_fraction); !(f >= 0 && f <= 0.5)) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--val_fraction=", f, " is outside [0, 0.5]")));
  }
  v1::ModelConfig config = model::DefaultModelConfig();
  if (!absl::GetFlag(FLAGS_config).empty()) {
    auto read = model::ReadModelConfig(absl::GetFlag(FLAGS_config));
    if (!read.ok()) return Fail(read.status());
    config = *read;
  }
  if (!absl::GetFlag(FLAGS_mode).empty()) {
    auto mode = model::ParseFusionMode(absl::GetFlag(FLAGS_mode));
    if (!mode.ok()) return Fail(mode.status());
    config.set_fusion_mode(*mode);
  }
  if (absl::GetFlag(FLAGS_train_prompts_only)) config.mutable_pmf()->set_train_prompts_only(true);
  if (const double dropout = absl::GetFlag(FLAGS_dropout); dropout != -1) {
    if (!(dropout >= 0 && dropout < 1)) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--dropout=", dropout, " is outside [0, 1) (or -1 for the config's)")));
    }
    config.mutable_transformer()->set_dropout(static_cast<float>(dropout));
  }
  const bool gated = absl::GetFlag(FLAGS_gate);
  if (gated) {
    if (absl::Status configured = ConfigureGate(&config); !configured.ok()) return Fail(configured);
  }
  model::SeedRandom(absl::GetFlag(FLAGS_seed));
  std::vector<std::string> labels = data::GeneratedLabels();
  if (labels.size() != config.num_classes()) labels.clear();
  auto package = model::NewModelPackage(config, labels);
  if (!package.ok()) return Fail(package.status());
  if (absl::Status initialised = InitFrom(absl::GetFlag(FLAGS_init_from), package->get());
      !initialised.ok()) {
    return Fail(initialised);
  }
  if (eval.empty() && absl::GetFlag(FLAGS_val_fraction) > 0) {
    eval = HoldOut(absl::GetFlag(FLAGS_val_fraction), absl::GetFlag(FLAGS_seed), &*train);
  }

  absl::StatusOr<model::TrainOptions> options = RecipeFromFlags();
  if (!options.ok()) return Fail(options.status());
  absl::StatusOr<model::EvalResult> result = model::Train(package->get(), *train, eval, *options);
  if (!result.ok()) return Fail(result.status());
  const int best_epoch = result->best_epoch;
  if (gated) {
    model::GateTrainOptions gate;
    gate.epochs = absl::GetFlag(FLAGS_gate_epochs);
    gate.lambda = absl::GetFlag(FLAGS_lambda);
    gate.gumbel = absl::GetFlag(FLAGS_gumbel);
    gate.end_temperature = absl::GetFlag(FLAGS_end_temperature);
    std::vector<v1::Example> gate_data;
    if (!absl::GetFlag(FLAGS_gate_data).empty()) {
      auto read = data::ReadDataset(absl::GetFlag(FLAGS_gate_data));
      if (!read.ok()) return Fail(read.status());
      gate_data = std::move(*read);
    }
    gate.seed = options->seed;
    gate.progress = true;
    result = model::TrainGate(package->get(), gate_data.empty() ? *train : gate_data, eval, gate);
    if (!result.ok()) return Fail(result.status());
    if (absl::GetFlag(FLAGS_joint_epochs) > 0) {
      model::JointTrainOptions joint;
      joint.epochs = absl::GetFlag(FLAGS_joint_epochs);
      joint.learning_rate = absl::GetFlag(FLAGS_joint_learning_rate);
      joint.lambda = gate.lambda;
      joint.temperature = gate.end_temperature;
      joint.seed = options->seed;
      joint.progress = true;
      // On the gate's data, like stage 2: on the experts' own training data
      // they look surer than they are, and the gate learns to send
      // everything to the full branch.
      result = model::FinetuneJointly(package->get(), gate_data.empty() ? *train : gate_data,
                                      eval, joint);
      if (!result.ok()) return Fail(result.status());
    }
  }

  v1::TrainingRecord* record = (*package)->config.mutable_training();
  record->set_seed(options->seed);
  record->set_epochs(options->epochs);
  record->set_best_epoch(best_epoch);
  record->set_train_examples(train->size());
  record->set_eval_examples(eval.size());
  record->set_eval_accuracy(result->accuracy);
  record->set_dataset(data_path);
  absl::Status saved = model::SaveModelPackage(**package, out);
  if (!saved.ok()) return Fail(saved);
  PrintEval((*package)->config, *result);
  std::fprintf(stderr, "saved model package to %s\n", out.c_str());
  return 0;
}

// eval --lambda_sweep: the full branch, then one gate per lambda over the
// package's experts; a table, or one JSON object with every row.
int EvalLambdaSweep(const model::ModelPackage& package, const std::vector<v1::Example>& examples) {
  std::vector<double> lambdas;
  for (absl::string_view item : absl::StrSplit(absl::GetFlag(FLAGS_lambda_sweep), ',')) {
    double lambda;
    if (!absl::SimpleAtod(item, &lambda) || !(lambda >= 0)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--lambda_sweep has \"", item, "\"; give comma-separated numbers >= 0")));
    }
    lambdas.push_back(lambda);
  }
  if (absl::GetFlag(FLAGS_gate_data).empty()) {
    return Fail(absl::InvalidArgumentError(
        "eval --lambda_sweep needs --gate_data: the examples each gate trains on"));
  }
  auto gate_data = data::ReadDataset(absl::GetFlag(FLAGS_gate_data));
  if (!gate_data.ok()) return Fail(gate_data.status());
  auto full = model::Evaluate(package, examples, /*batch_size=*/64, v1::BUDGET_LEVEL_ACCURATE);
  if (!full.ok()) return Fail(full.status());
  model::GateTrainOptions options;
  options.epochs = absl::GetFlag(FLAGS_gate_epochs);
  options.gumbel = absl::GetFlag(FLAGS_gumbel);
  options.end_temperature = absl::GetFlag(FLAGS_end_temperature);
  options.seed = absl::GetFlag(FLAGS_seed);
  auto rows = model::SweepLambda(package, *gate_data, examples, lambdas, options);
  if (!rows.ok()) return Fail(rows.status());
  const std::vector<model::Branch> branches = model::ResolveBranches(package.config);
  if (absl::GetFlag(FLAGS_json)) {
    std::vector<std::string> sweep;
    for (const model::LambdaSweepRow& row : *rows) {
      sweep.push_back(absl::StrFormat("{\"lambda\": %g, \"balanced\": %s}", row.lambda,
                                      EvalJson(branches, row.result)));
    }
    std::printf("{\"full\": %s, \"sweep\": [%s]}\n", EvalJson(branches, *full).c_str(),
                absl::StrJoin(sweep, ", ").c_str());
    return 0;
  }
  std::printf("full branch  %s\n", EvalText(branches, *full).c_str());
  for (const model::LambdaSweepRow& row : *rows) {
    std::printf("lambda %-6g %s  (compute %+.1f%% vs full)\n", row.lambda,
                EvalText(branches, row.result).c_str(),
                100.0 * (row.result.mean_gflops / std::max(1e-12, full->mean_gflops) - 1.0));
  }
  return 0;
}

// --model_dir loaded onto --device in --precision.
absl::StatusOr<std::shared_ptr<model::ModelPackage>> LoadOnDevice() {
  MMFUSE_ASSIGN_OR_RETURN(std::string device, model::ResolveDevice(absl::GetFlag(FLAGS_device)));
  return model::LoadModelPackage(absl::GetFlag(FLAGS_model_dir), device,
                                 absl::GetFlag(FLAGS_precision));
}

int Eval() {
  auto package = LoadOnDevice();
  if (!package.ok()) return Fail(package.status());
  auto examples = data::ReadDataset(absl::GetFlag(FLAGS_data));
  if (!examples.ok()) return Fail(examples.status());
  if (!absl::GetFlag(FLAGS_lambda_sweep).empty()) return EvalLambdaSweep(**package, *examples);
  absl::StatusOr<v1::BudgetLevel> budget = ParseBudget(absl::GetFlag(FLAGS_budget));
  if (!budget.ok()) return Fail(budget.status());
  absl::StatusOr<model::EvalResult> result =
      model::Evaluate(**package, *examples, /*batch_size=*/64, *budget);
  if (!result.ok()) return Fail(result.status());
  PrintEval((*package)->config, *result);
  return 0;
}

// Frames per modality (model order) from --lengths, else reference lengths.
absl::StatusOr<std::vector<int64_t>> Lengths(const v1::ModelConfig& config) {
  std::vector<int64_t> frames = model::ReferenceFrames(config);
  const std::string spec = absl::GetFlag(FLAGS_lengths);
  if (spec.empty()) return frames;
  frames.assign(config.modalities_size(), 0);
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const int m = model::ModalityIndex(config, kv.first);
    int64_t n = 0;
    if (m < 0 || !absl::SimpleAtoi(kv.second, &n) || n < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--lengths: \"", item, "\" is not <modality>=<frames> with a modality of the model"));
    }
    frames[m] = n;
  }
  return frames;
}

int Flops() {
  std::vector<v1::ModelConfig> configs;
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode.empty()) {
    auto config = model::ReadModelConfig(absl::GetFlag(FLAGS_model_dir) + "/config.pbtxt");
    if (!config.ok()) return Fail(config.status());
    configs.push_back(*config);
  } else {
    std::vector<std::string> modes = {mode};
    if (mode == "all") modes = {"concat", "late", "mbt", "sft", "locomt", "pmf"};
    for (const std::string& name : modes) {
      auto parsed = model::ParseFusionMode(name);
      if (!parsed.ok()) return Fail(parsed.status());
      v1::ModelConfig config = model::DefaultModelConfig();
      config.set_fusion_mode(*parsed);
      configs.push_back(config);
    }
  }
  std::vector<std::string> rows;
  for (const v1::ModelConfig& config : configs) {
    absl::Status valid = model::ValidateModelConfig(config);
    if (!valid.ok()) return Fail(valid);
    auto frames = Lengths(config);
    if (!frames.ok()) return Fail(frames.status());
    const double gflops = model::MacsToGflops(model::ForwardMacs(config, *frames));
    const std::string name = model::FusionModeName(config.fusion_mode());
    if (absl::GetFlag(FLAGS_json)) {
      rows.push_back(absl::StrCat("{\"mode\": \"", name, "\", \"gflops\": ", gflops, "}"));
    } else {
      rows.push_back(absl::StrCat(name, "\t", gflops, " GFLOPs"));
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << (rows.size() == 1 ? rows[0] : "[" + absl::StrJoin(rows, ", ") + "]") << "\n";
  } else {
    std::cout << absl::StrJoin(rows, "\n") << "\n";
  }
  return 0;
}

int Check() {
  auto package = LoadOnDevice();
  if (!package.ok()) return Fail(package.status());
  std::cout << absl::GetFlag(FLAGS_model_dir) << ": model " << (*package)->config.name()
            << ", fusion " << model::FusionModeName((*package)->config.fusion_mode()) << ", "
            << model::ParameterCount(**package) << " trainable parameters, on "
            << model::DeviceName(**package) << " in " << model::PrecisionName(**package) << "\n";
  return 0;
}

// Comma-separated numbers of --`flag`.
template <typename T>
absl::StatusOr<std::vector<T>> ParseNumberList(const char* flag, const std::string& text) {
  std::vector<T> values;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    T value;
    bool parsed;
    if constexpr (std::is_floating_point_v<T>) {
      parsed = absl::SimpleAtod(item, &value);
    } else {
      parsed = absl::SimpleAtoi(item, &value);
    }
    if (!parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " has \"", item, "\"; give comma-separated numbers"));
    }
    values.push_back(value);
  }
  return values;
}

int Tune() {
  tuning::TuneCommandOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model_dir);
  options.data = absl::GetFlag(FLAGS_data);
  options.max_samples = absl::GetFlag(FLAGS_max_samples);
  options.device = absl::GetFlag(FLAGS_device);
  options.precision = absl::GetFlag(FLAGS_precision);
  options.table_out = absl::GetFlag(FLAGS_table_out);
  options.dry_run = absl::GetFlag(FLAGS_dry_run);
  auto batch_sizes = ParseNumberList<int>("batch_sizes", absl::GetFlag(FLAGS_batch_sizes));
  auto ratios = ParseNumberList<double>("bucket_ratios", absl::GetFlag(FLAGS_bucket_ratios));
  auto delays = ParseNumberList<int64_t>("delays_us", absl::GetFlag(FLAGS_delays_us));
  auto multiples =
      ParseNumberList<double>("token_multiples", absl::GetFlag(FLAGS_token_multiples));
  for (const absl::Status& status :
       {batch_sizes.status(), ratios.status(), delays.status(), multiples.status()}) {
    if (!status.ok()) return Fail(status);
  }
  options.search.batch_sizes = *batch_sizes;
  options.search.bucket_ratios = *ratios;
  options.search.delays_us = *delays;
  options.search.token_multiples = *multiples;
  options.search.min_gain = absl::GetFlag(FLAGS_min_gain);
  options.search.max_latency_increase = absl::GetFlag(FLAGS_max_latency_increase);
  options.search.confirm_repeats = absl::GetFlag(FLAGS_confirm_repeats);
  options.trials.workers = absl::GetFlag(FLAGS_workers);
  options.trials.concurrency = absl::GetFlag(FLAGS_concurrency);
  const double seconds = absl::GetFlag(FLAGS_trial_seconds);
  if (!(seconds > 0 && seconds <= 3600)) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--trial_seconds=", seconds, " is outside (0, 3600]")));
  }
  options.trials.trial = absl::Seconds(seconds);
  options.trials.warmup = absl::Milliseconds(absl::GetFlag(FLAGS_warmup_ms));
  absl::Status status = tuning::RunTuneCommand(options);
  if (!status.ok()) return Fail(status);
  return 0;
}

}  // namespace
}  // namespace mmfuse

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "mmfuse <command> [flags]\n"
      "commands: classify, info, health, datagen, train, eval, flops, check, tune, extract\n"
      "  mmfuse classify --audio clip.wav --image digit.png --text \"sept\"\n"
      "  mmfuse extract --manifest m.jsonl --featurizers models/x/config.pbtxt --out d.mmds\n"
      "  mmfuse classify --server 127.0.0.1:50051 [--data file --index N]\n"
      "  mmfuse info --server 127.0.0.1:50051\n"
      "  mmfuse datagen --out datasets/train.mmds --examples 2000 --split 0\n"
      "  mmfuse train --data datasets/train.mmds --eval_data datasets/test.mmds --out models/default\n"
      "  mmfuse eval --model_dir models/default --data datasets/test.mmds --json\n"
      "  mmfuse flops --mode all --lengths audio=400,video=256,text=192 --json\n"
      "  mmfuse check --model_dir models/default\n"
      "  mmfuse tune --model_dir models/default --data datasets/test.mmds");
  // --help lists every flag (by default absl lists only flags defined in a
  // file named after the program).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view) { return true; };
  usage.contains_helpshort_flags = [](absl::string_view) { return true; };
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage());
    return 2;
  }
  mmfuse::model::LimitMathThreads(1);
  const std::string command = args[1];
  if (command == "classify") return mmfuse::Classify();
  if (command == "info") return mmfuse::Info();
  if (command == "health") return mmfuse::Health();
  if (command == "datagen") return mmfuse::Datagen();
  if (command == "train") return mmfuse::Train();
  if (command == "eval") return mmfuse::Eval();
  if (command == "flops") return mmfuse::Flops();
  if (command == "check") return mmfuse::Check();
  if (command == "tune") return mmfuse::Tune();
  if (command == "extract") return mmfuse::Extract();
  std::fprintf(stderr, "mmfuse: unknown command \"%s\"\n%s\n", command.c_str(),
               absl::ProgramUsageMessage());
  return 2;
}
