#include "server/served_model.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/flops.h"
#include "model/inference.h"
#include "model/model_package.h"
#include "server/metrics.h"
#include "server/request_validator.h"

namespace mmfuse::server {
namespace {

// A request inside the batcher: borrowed request/response, the answer's
// pieces, and the caller's completion.
struct ClassifyPayload : batching::Payload {
  const v1::ClassifyRequest* request = nullptr;
  v1::ClassifyResponse* response = nullptr;
  CallContext call;
  std::function<void(absl::Status)> done;
  bool awaiting_gate = false;         // Queued for the gate stage.
  int branch = 0;                     // Chosen on admission, or by the gate.
  std::vector<int64_t> frames;        // Per modality, model order; 0 = absent.
  bool gate_ran = false;              // The gate's cost was spent on it.
  std::vector<float> probabilities;   // Filled by the processor.
};

int64_t Micros(absl::Duration d) { return std::max<int64_t>(0, absl::ToInt64Microseconds(d)); }

// A serving option's value: the override when set, else the package's
// (proto3: 0 = not given), else `fallback`.
template <typename T>
T Setting(const std::optional<T>& override, T from_package, T fallback) {
  if (override.has_value()) return *override;
  return from_package > 0 ? from_package : fallback;
}

}  // namespace

namespace {

ClassifyPayload* PayloadOf(batching::Task* task) {
  return static_cast<ClassifyPayload*>(task->payload.get());
}

// Fraction of the group's frames that are padding: per modality of the
// branch, the group pads every sample to its longest sequence.
double PaddingRatio(const std::vector<batching::Task*>& group, const model::Branch& branch) {
  int64_t real = 0, padded = 0;
  for (int m : branch.modalities) {
    int64_t longest = 0, sum = 0;
    for (batching::Task* task : group) {
      const int64_t frames = PayloadOf(task)->frames[m];
      longest = std::max(longest, frames);
      sum += frames;
    }
    real += sum;
    padded += longest * static_cast<int64_t>(group.size());
  }
  return padded > 0 ? 1.0 - static_cast<double>(real) / padded : 0.0;
}

}  // namespace

// Runs batches on the model: every task of a batch shares a branch, so only
// that branch's encoders run.
class ServedModel::Processor : public batching::BatchProcessor {
 public:
  Processor(const ServedModel& owner, std::shared_ptr<const model::ModelPackage> package,
            ServerMetrics* metrics)
      : owner_(owner),
        package_(std::move(package)),
        branches_(model::ResolveBranches(package_->config)),
        metrics_(metrics) {}

  // A batch of the gate stage, or of the experts: one branch (a queue per
  // branch) or several (mixed queues), each branch group running its own
  // expert.
  std::vector<absl::Status> ProcessBatch(absl::Span<batching::Task* const> batch) override {
    if (PayloadOf(batch.front())->awaiting_gate) return owner_.RunGate(batch);
    if (metrics_ != nullptr) {
      metrics_->RecordBatch(package_->config.name(), static_cast<int>(batch.size()));
    }
    std::map<int, std::vector<size_t>> groups;
    for (size_t i = 0; i < batch.size(); ++i) groups[PayloadOf(batch[i])->branch].push_back(i);
    std::vector<absl::Status> statuses(batch.size(), absl::OkStatus());
    for (const auto& [branch, members] : groups) {
      std::vector<batching::Task*> group;
      std::vector<const model::FeatureMap*> samples;
      for (size_t i : members) {
        group.push_back(batch[i]);
        samples.push_back(&PayloadOf(batch[i])->request->features());
      }
      if (metrics_ != nullptr) {
        metrics_->RecordPadding(package_->config.name(), PaddingRatio(group, branches_[branch]));
      }
      absl::StatusOr<std::vector<float>> probabilities =
          model::PredictProbabilities(*package_, samples, branch);
      if (!probabilities.ok()) {
        for (size_t i : members) statuses[i] = probabilities.status();
        continue;
      }
      const size_t classes = probabilities->size() / group.size();
      for (size_t k = 0; k < group.size(); ++k) {
        PayloadOf(group[k])->probabilities.assign(probabilities->begin() + k * classes,
                                                  probabilities->begin() + (k + 1) * classes);
      }
    }
    return statuses;
  }

 private:
  const ServedModel& owner_;
  std::shared_ptr<const model::ModelPackage> package_;
  std::vector<model::Branch> branches_;
  ServerMetrics* metrics_;  // Not owned; may be null.
};

absl::StatusOr<std::unique_ptr<ServedModel>> ServedModel::Load(const std::string& dir,
                                                               const ServingOptions& options) {
  MMFUSE_ASSIGN_OR_RETURN(std::shared_ptr<model::ModelPackage> package,
                          model::LoadModelPackage(dir, options.device, options.precision));
  return Create(std::move(package), options);
}

absl::StatusOr<std::unique_ptr<ServedModel>> ServedModel::Create(
    std::shared_ptr<const model::ModelPackage> package, const ServingOptions& options) {
  if (options.cuda_graphs && !package->cuda_graphs) {
    // A copy sharing the model's weights, with graphs of its own.
    auto graphed = std::make_shared<model::ModelPackage>(*package);
    MMFUSE_RETURN_IF_ERROR(model::EnableCudaGraphs(graphed.get()));
    package = std::move(graphed);
  }
  std::unique_ptr<ServedModel> served(new ServedModel(std::move(package), options));
  const v1::BatchingConfig& b = served->config_.batching();
  batching::BatcherOptions batcher;
  batcher.num_workers = options.workers;
  batcher.max_batch_size = Setting<int>(options.max_batch_size, b.max_batch_size(),
                                        batcher.max_batch_size);
  batcher.max_queue_delay = absl::Microseconds(
      Setting<int64_t>(options.max_queue_delay_us, b.max_queue_delay_us(),
                       absl::ToInt64Microseconds(batcher.max_queue_delay)));
  batcher.max_queue_size = Setting<int>(options.max_queue_size, b.max_queue_size(),
                                        batcher.max_queue_size);
  batcher.max_batch_tokens = Setting<int64_t>(options.max_batch_tokens, b.max_batch_tokens(),
                                              batcher.max_batch_tokens);
  batcher.priority_levels = served->priority_levels_;
  batcher.default_priority = static_cast<int>(
      std::min<uint32_t>(b.default_priority() > 0 ? b.default_priority() - 1 : 0,
                         served->priority_levels_ - 1));
  const int64_t timeout_ms = Setting<int64_t>(options.default_timeout_ms, b.default_timeout_ms(), 0);
  if (timeout_ms > 0) batcher.default_timeout = absl::Milliseconds(timeout_ms);
  const int64_t queue_time_ms =
      Setting<int64_t>(options.max_queue_time_ms, b.max_queue_time_ms(), 0);
  if (queue_time_ms > 0) batcher.max_queue_time = absl::Milliseconds(queue_time_ms);
  batcher.allow_timeout_override = options.allow_timeout_override;
  for (uint32_t size : b.preferred_batch_sizes()) batcher.preferred_batch_sizes.push_back(size);
  for (uint64_t edge : b.length_bucket_edges()) batcher.length_bucket_edges.push_back(edge);
  batcher.clock = options.clock;
  // The gate is a small share of a request's cost: its queue runs whatever
  // waits as soon as a worker is free, and the branch queues count
  // max_queue_delay from the request's arrival.
  if (served->gate_stage_ >= 0) batcher.no_delay_branches.push_back(served->gate_stage_);
  if (options.adaptive_load_bias) {
    MMFUSE_ASSIGN_OR_RETURN(served->load_bias_controller_,
                            batching::LoadBiasController::Create(options.load_bias));
  }
  MMFUSE_ASSIGN_OR_RETURN(served->batcher_,
                          batching::Batcher::Create(batcher, served->processor_.get()));
  if (served->metrics_ != nullptr) {
    served->metrics_->SetModelLoaded(served->name(), true);
    served->metrics_->SetGateLoadBias(served->name(), 0);
  }
  return served;
}

ServedModel::ServedModel(std::shared_ptr<const model::ModelPackage> package,
                         const ServingOptions& options)
    : package_(std::move(package)),
      config_(package_->config),
      labels_(package_->labels),
      metrics_(options.metrics),
      mixed_branch_queues_(options.mixed_branch_queues),
      bucket_ratio_(options.length_bucket_ratio.value_or(config_.batching().length_bucket_ratio())),
      policy_(config_),
      processor_(std::make_unique<Processor>(*this, package_, options.metrics)) {
  if (policy_.branches().size() > 1) {
    gate_stage_ = static_cast<int>(policy_.branches().size());
    gate_inputs_.name = "gate";
    for (int m = 0; m < config_.modalities_size(); ++m) gate_inputs_.modalities.push_back(m);
  }
  priority_levels_ = Setting<int>(options.priority_levels, config_.batching().priority_levels(), 1);
  info_.set_name(config_.name());
  info_.set_version(config_.version());
  for (const v1::ModalityConfig& m : config_.modalities()) {
    v1::ModalityInfo* info = info_.add_modalities();
    info->set_name(m.name());
    info->set_feature_dim(m.feature_dim());
    info->set_max_frames(m.max_frames());
    if (m.has_featurizer()) *info->mutable_featurizer() = m.featurizer();
  }
  for (const std::string& label : labels_) info_.add_labels(label);
  info_.set_fusion_mode(model::FusionModeName(config_.fusion_mode()));
  const std::vector<int64_t> reference = model::ReferenceFrames(config_);
  for (int m = 0; m < config_.modalities_size(); ++m) {
    (*info_.mutable_reference_frames())[config_.modalities(m).name()] = reference[m];
  }
  for (int b = 0; b < static_cast<int>(policy_.branches().size()); ++b) {
    const model::Branch& branch = policy_.branches()[b];
    v1::BranchInfo* info = info_.add_branches();
    info->set_name(branch.name);
    for (int m : branch.modalities) info->add_modalities(config_.modalities(m).name());
    info->set_gflops(policy_.Gflops(b, /*gate_ran=*/false, reference));
  }
  info_.set_d_model(config_.transformer().d_model());
  info_.set_num_layers(config_.transformer().unimodal_layers() +
                       config_.transformer().fusion_layers());
  info_.set_num_parameters(model::ParameterCount(*package_));
  info_.set_priority_levels(priority_levels_);
  info_.set_device(model::DeviceName(*package_));
  info_.set_precision(model::PrecisionName(*package_));
}

ServedModel::~ServedModel() { Shutdown(); }

void ServedModel::Shutdown() {
  if (batcher_ != nullptr) batcher_->Shutdown();
  if (metrics_ != nullptr) metrics_->SetModelLoaded(name(), false);
}

std::vector<std::pair<std::string, int64_t>> ServedModel::QueueDepths() const {
  const batching::BatcherStats stats = batcher_->Stats();
  auto depth = [&](int branch) {
    auto it = stats.queued_by_branch.find(branch);
    return it == stats.queued_by_branch.end() ? int64_t{0} : it->second;
  };
  std::vector<std::pair<std::string, int64_t>> depths;
  for (int b = 0; b < static_cast<int>(policy_.branches().size()); ++b) {
    depths.emplace_back(policy_.branches()[b].name, depth(b));
  }
  if (gate_stage_ >= 0) depths.emplace_back(kGateStage, depth(gate_stage_));
  return depths;
}

void ServedModel::JoinBranchQueue(batching::Task* task) const {
  const ClassifyPayload& payload = *PayloadOf(task);
  const model::Branch& branch =
      payload.awaiting_gate ? gate_inputs_ : policy_.branches()[payload.branch];
  const model::BatchingKey key = model::BatchingKeyOf(branch, payload.frames, bucket_ratio_);
  // The queue it joins: its stage (the gate, or its branch) and the
  // modalities it carries, so that no encoder runs for a batch's absent
  // inputs. Mixed queues know neither the branches nor the inputs.
  const int stage = payload.awaiting_gate ? gate_stage_ : payload.branch;
  task->branch = mixed_branch_queues_ && !payload.awaiting_gate ? 0 : stage;
  task->input_group = mixed_branch_queues_ ? 0 : key.input_group;
  task->tokens = std::max<int64_t>(1, key.tokens);
}

std::vector<absl::Status> ServedModel::RunGate(absl::Span<batching::Task* const> batch) const {
  std::vector<const model::FeatureMap*> samples;
  samples.reserve(batch.size());
  for (batching::Task* task : batch) samples.push_back(&PayloadOf(task)->request->features());
  absl::StatusOr<std::vector<float>> logits = model::GateLogits(*package_, samples);
  if (!logits.ok()) return std::vector<absl::Status>(batch.size(), logits.status());
  const size_t branches = policy_.branches().size();
  const double load_bias = load_bias_.load();
  std::vector<absl::Status> statuses(batch.size(), absl::OkStatus());
  for (size_t k = 0; k < batch.size(); ++k) {
    ClassifyPayload& payload = *PayloadOf(batch[k]);
    absl::StatusOr<model::BranchChoice> choice =
        policy_.Choose(payload.frames, payload.request->budget(),
                       absl::MakeConstSpan(logits->data() + k * branches, branches), load_bias);
    if (!choice.ok()) {
      statuses[k] = choice.status();
      continue;
    }
    payload.awaiting_gate = false;
    payload.branch = choice->branch;
    payload.gate_ran = choice->gate_ran;
    JoinBranchQueue(batch[k]);
    batch[k]->requeue = true;
  }
  return statuses;
}

void ServedModel::Classify(const v1::ClassifyRequest* request, v1::ClassifyResponse* response,
                           const CallContext& call, std::function<void(absl::Status)> done) {
  absl::Status valid = ValidateRequest(config_, priority_levels_, *request);
  if (!valid.ok()) {
    if (metrics_ != nullptr) metrics_->RecordRejected(name(), "invalid");
    done(valid);
    return;
  }
  // Refused before any work of ours (the gate, collation) when the queue
  // already holds more than the request could wait.
  if (absl::Status shed = batcher_->CheckShed(call.deadline); !shed.ok()) {
    if (metrics_ != nullptr) metrics_->RecordRejected(name(), "shed");
    done(shed);
    return;
  }
  auto payload = std::make_unique<ClassifyPayload>();
  payload->request = request;
  payload->response = response;
  payload->call = call;
  payload->done = std::move(done);
  payload->frames = model::FramesOf(config_, request->features());

  // Without the gate the branch is chosen now; with it, later on a worker
  // on a batch (RunGate), and a budget no branch fits is refused now rather
  // than after waiting for the gate.
  const bool needs_gate = policy_.NeedsGate(request->budget());
  model::BranchChoice choice;
  absl::Status refused;
  if (needs_gate) {
    refused = policy_.CheckBudget(payload->frames, request->budget());
  } else if (absl::StatusOr<model::BranchChoice> chosen =
                 policy_.Choose(payload->frames, request->budget(), {}, load_bias_.load());
             chosen.ok()) {
    choice = *chosen;
  } else {
    refused = chosen.status();
  }
  if (!refused.ok()) {
    if (metrics_ != nullptr) metrics_->RecordRejected(name(), "invalid");
    std::function<void(absl::Status)> refuse = std::move(payload->done);
    refuse(refused);
    return;
  }
  payload->awaiting_gate = needs_gate;
  payload->branch = choice.branch;
  payload->gate_ran = choice.gate_ran;

  auto task = std::make_unique<batching::Task>();
  task->priority = request->priority() == 0 ? -1 : static_cast<int>(request->priority()) - 1;
  task->deadline = call.deadline;
  task->is_cancelled = call.is_cancelled;
  task->payload = std::move(payload);
  JoinBranchQueue(task.get());
  task->done = [this](absl::Status status, std::unique_ptr<batching::Task> task) {
    auto* payload = static_cast<ClassifyPayload*>(task->payload.get());
    if (status.ok()) {
      const batching::TaskTimings& t = task->timings;
      const v1::ClassifyRequest& request = *payload->request;
      v1::ClassifyResponse& response = *payload->response;
      const model::Branch& branch = policy_.branches()[payload->branch];
      response.set_request_id(request.request_id());
      response.set_model(name());
      const int top_k = std::max<int>(1, request.top_k());
      std::vector<int> order(payload->probabilities.size());
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int a, int b) {
        return payload->probabilities[a] > payload->probabilities[b];
      });
      for (int i = 0; i < top_k; ++i) {
        v1::ClassScore* score = response.add_top_k();
        score->set_index(order[i]);
        score->set_label(labels_[order[i]]);
        score->set_probability(payload->probabilities[order[i]]);
      }
      response.set_branch(branch.name);
      for (int m : branch.modalities) {
        if (payload->frames[m] > 0) response.add_modalities_used(config_.modalities(m).name());
      }
      const double gflops = policy_.Gflops(payload->branch, payload->gate_ran, payload->frames);
      response.set_gflops(gflops);
      response.set_batch_size(t.batch_size);
      *response.mutable_budget() = request.budget();
      v1::Timings* timings = response.mutable_timings();
      // The gate's batch counts as compute, not as time in the queue.
      const absl::Duration queued = t.started - t.enqueued - t.earlier_stages_compute;
      const absl::Duration computed = t.finished - t.started + t.earlier_stages_compute;
      timings->set_queue_us(Micros(queued));
      timings->set_compute_us(Micros(computed));
      timings->set_total_us(Micros(absl::Now() - payload->call.received));
      if (metrics_ != nullptr) {
        metrics_->RecordComputed(name(), branch.name, queued, computed, gflops);
        metrics_->RecordGflopsSaved(
            name(), std::max(0.0, policy_.Gflops(policy_.full_branch(), false, payload->frames) -
                                      gflops));
        for (int m = 0; m < config_.modalities_size(); ++m) {
          const bool used = std::find(branch.modalities.begin(), branch.modalities.end(), m) !=
                            branch.modalities.end();
          if (payload->frames[m] > 0 && !used) {
            metrics_->RecordModalitySkipped(name(), config_.modalities(m).name());
          }
        }
      }
      if (load_bias_controller_ != nullptr) {
        SetLoadBias(load_bias_controller_->Observe(queued, t.finished));
        if (metrics_ != nullptr) metrics_->SetGateLoadBias(name(), load_bias());
      }
    } else if (metrics_ != nullptr) {
      const char* reason = batching::IsShed(status) ? "shed"
                           : status.code() == absl::StatusCode::kInvalidArgument  ? "invalid"
                           : status.code() == absl::StatusCode::kResourceExhausted ? "queue_full"
                           : status.code() == absl::StatusCode::kDeadlineExceeded ? "deadline"
                           : status.code() == absl::StatusCode::kCancelled        ? "cancelled"
                           : status.code() == absl::StatusCode::kUnavailable      ? "unavailable"
                                                                                  : "error";
      metrics_->RecordRejected(name(), reason);
    }
    // Move the completion out first: it may free the request and response.
    std::function<void(absl::Status)> done = std::move(payload->done);
    done(status);
  };
  batcher_->Submit(std::move(task));
}

}  // namespace mmfuse::server
