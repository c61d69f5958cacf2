#include "model/model_package.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <torch/utils.h>
#include <torch/serialize/output-archive.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/device.h"
#include "model/model_config.h"

namespace mmfuse::model {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path) {
  std::ifstream file(path);
  if (!file.is_open()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) labels.push_back(line);
  }
  return labels;
}

absl::Status WriteFileAtomically(const fs::path& path, const std::string& contents) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file << contents;
    if (!file.good()) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot rename ", tmp.string(), ": ",
                                                     error.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ModelPackage>> NewModelPackage(const v1::ModelConfig& config,
                                                              std::vector<std::string> labels) {
  MMFUSE_RETURN_IF_ERROR(ValidateModelConfig(config));
  if (labels.empty()) {
    for (uint32_t i = 0; i < config.num_classes(); ++i) labels.push_back(absl::StrCat("class_", i));
  }
  if (labels.size() != config.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat("labels: ", labels.size(),
                                                   " names for num_classes=", config.num_classes()));
  }
  auto package = std::make_shared<ModelPackage>();
  package->config = config;
  package->labels = std::move(labels);
  try {
    package->model = MultimodalModel(config);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot build the model: ", e.what_without_backtrace()));
  }
  return package;
}

absl::Status CopyWeights(const ModelPackage& from, ModelPackage* to,
                         const std::vector<std::string>& prefixes) {
  // Each prefix as (source prefix, destination prefix).
  std::vector<std::pair<std::string, std::string>> maps;
  for (const std::string& prefix : prefixes) {
    const size_t equals = prefix.find('=');
    if (equals == std::string::npos) {
      maps.emplace_back(prefix, prefix);
    } else {
      maps.emplace_back(prefix.substr(0, equals), prefix.substr(equals + 1));
    }
  }
  const auto source = from.model->named_parameters();
  std::vector<bool> used(maps.size(), false);
  torch::NoGradGuard no_grad;
  for (auto& p : to->model->named_parameters()) {
    std::string source_name = prefixes.empty() ? p.key() : "";
    for (size_t i = 0; i < maps.size(); ++i) {
      if (absl::StartsWith(p.key(), maps[i].second)) {
        source_name = maps[i].first + p.key().substr(maps[i].second.size());
        used[i] = true;
      }
    }
    if (source_name.empty()) continue;
    const torch::Tensor* s = source.find(source_name);
    if (s == nullptr || !s->sizes().equals(p.value().sizes())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot initialise from ", from.config.name(), ": parameter ", source_name,
          s == nullptr ? " is missing" : " has another shape"));
    }
    p.value().copy_(*s);
  }
  for (size_t i = 0; i < maps.size(); ++i) {
    if (!used[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot initialise from ", from.config.name(), ": no parameter starts with \"",
          maps[i].second, "\" (names look like expert_<branch>.<modality>_layers...)"));
    }
  }
  return absl::OkStatus();
}

absl::Status MoveToDevice(ModelPackage* package, const std::string& device,
                          const std::string& precision) {
  MMFUSE_RETURN_IF_ERROR(CheckPrecision(precision, device));
  const torch::Dtype dtype = precision == "bf16"   ? torch::kBFloat16
                             : precision == "fp16" ? torch::kHalf
                                                   : torch::kFloat;
  try {
    const torch::Device target(device);
    package->model->to(target, dtype);
    package->device = target;
    package->dtype = dtype;
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(absl::StrCat("cannot move the model to ", device, " (",
                                                      precision, "): ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status EnableCudaGraphs(ModelPackage* package) {
  if (!CudaGraphsBuilt()) {
    return absl::FailedPreconditionError(
        "CUDA graphs need a build against a CUDA LibTorch; this one is CPU-only");
  }
  if (package->device.is_cpu()) {
    return absl::FailedPreconditionError("CUDA graphs need a CUDA device; the model is on the CPU");
  }
  package->cuda_graphs = NewCudaGraphCache();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ModelPackage>> LoadModelPackage(const std::string& dir,
                                                               const std::string& device,
                                                               const std::string& precision) {
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("model package ", dir, " is not a directory"));
  }
  const fs::path root(dir);
  MMFUSE_ASSIGN_OR_RETURN(v1::ModelConfig config, ReadModelConfig((root / "config.pbtxt").string()));
  MMFUSE_ASSIGN_OR_RETURN(std::vector<std::string> labels,
                          ReadLabels((root / "labels.txt").string()));
  if (labels.size() != config.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat((root / "labels.txt").string(), " has ",
                                                   labels.size(), " labels, config.pbtxt has num_classes=",
                                                   config.num_classes()));
  }
  MMFUSE_ASSIGN_OR_RETURN(std::shared_ptr<ModelPackage> package,
                          NewModelPackage(config, std::move(labels)));
  const fs::path weights = root / "weights.pt";
  if (!fs::exists(weights)) {
    return absl::NotFoundError(absl::StrCat("model package ", dir, " has no weights.pt"));
  }
  try {
    // Module::load replaces each tensor with whatever the archive holds,
    // whatever its shape, so check shapes ourselves.
    std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
    for (const auto& p : package->model->named_parameters()) {
      expected.emplace_back(p.key(), p.value().sizes().vec());
    }
    torch::serialize::InputArchive archive;
    archive.load_from(weights.string(), torch::Device(torch::kCPU));
    package->model->load(archive);
    const auto loaded = package->model->named_parameters();
    for (const auto& [name, shape] : expected) {
      const std::vector<int64_t> got = loaded[name].sizes().vec();
      if (got != shape) {
        return absl::DataLossError(absl::StrCat(
            weights.string(), " does not match config.pbtxt: ", name, " has shape [",
            absl::StrJoin(got, ","), "], the config implies [", absl::StrJoin(shape, ","), "]"));
      }
    }
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(weights.string(),
                                            " is unreadable or does not match config.pbtxt: ",
                                            e.what_without_backtrace()));
  }
  package->model->eval();
  MMFUSE_RETURN_IF_ERROR(MoveToDevice(package.get(), device, precision));
  return package;
}

absl::Status SaveModelPackage(const ModelPackage& package, const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", error.message()));
  const fs::path root(dir);
  try {
    torch::serialize::OutputArchive archive;
    package.model->save(archive);
    const std::string tmp = (root / "weights.pt.tmp").string();
    archive.save_to(tmp);
    fs::rename(tmp, root / "weights.pt");
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot write weights: ", e.what_without_backtrace()));
  } catch (const fs::filesystem_error& e) {
    return absl::InternalError(absl::StrCat("cannot write weights: ", e.what()));
  }
  std::string labels;
  for (const std::string& label : package.labels) absl::StrAppend(&labels, label, "\n");
  MMFUSE_RETURN_IF_ERROR(WriteFileAtomically(root / "labels.txt", labels));
  // The config goes last: its presence marks a complete package.
  return WriteFileAtomically(root / "config.pbtxt", FormatModelConfig(package.config));
}

absl::Status RewriteModelConfig(const std::string& dir, const v1::ModelConfig& config) {
  MMFUSE_RETURN_IF_ERROR(ValidateModelConfig(config));
  return WriteFileAtomically(fs::path(dir) / "config.pbtxt", FormatModelConfig(config));
}

}  // namespace mmfuse::model
