#include "server/kserve_convert.h"

#include <cstdint>
#include <cstring>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/model_config.h"

namespace mmfuse::server::kserve {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr const char* kAllOutputs[] = {kOutputProbabilities, kOutputLabel, kOutputBranch,
                                       kOutputGflops, kOutputLabels};
constexpr const char* kDefaultOutputs[] = {kOutputProbabilities, kOutputLabel, kOutputBranch,
                                           kOutputGflops};

std::string InputNames(const v1::ModelConfig& config) {
  std::vector<std::string> names;
  for (const v1::ModalityConfig& m : config.modalities()) names.push_back(m.name());
  return absl::StrJoin(names, ", ");
}

std::string ShapeString(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// "inputs[1] (\"video\")": how errors name an input.
std::string InputRef(int index, const std::string& name) {
  return absl::StrCat("inputs[", index, "] (\"", name, "\")");
}

// Integer parameter value (int64 or uint64); `name` names it in errors.
absl::StatusOr<int64_t> IntParam(const std::string& name, const InferParameter& param) {
  switch (param.parameter_choice_case()) {
    case InferParameter::kInt64Param:
      return param.int64_param();
    case InferParameter::kUint64Param:
      if (param.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameters[\"", name, "\"]=", param.uint64_param(), " is too large"));
      }
      return static_cast<int64_t>(param.uint64_param());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("parameters[\"", name, "\"] must be an integer (int64_param)"));
  }
}

absl::Status ApplyParameters(const ModelInferRequest& request, const v1::ModelConfig& config,
                             InferCall* call) {
  v1::ClassifyRequest& out = call->request;
  for (const auto& [name, param] : request.parameters()) {
    if (name == kParamBudget) {
      if (param.parameter_choice_case() != InferParameter::kStringParam) {
        return absl::InvalidArgumentError(
            "parameters[\"budget\"] must be a string (string_param): accurate, balanced or fast");
      }
      const std::string level = absl::AsciiStrToLower(param.string_param());
      if (level == "accurate") {
        out.mutable_budget()->set_level(v1::BUDGET_LEVEL_ACCURATE);
      } else if (level == "balanced") {
        out.mutable_budget()->set_level(v1::BUDGET_LEVEL_BALANCED);
      } else if (level == "fast") {
        out.mutable_budget()->set_level(v1::BUDGET_LEVEL_FAST);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("parameters[\"budget\"]=\"", param.string_param(),
                         "\" is not a budget; use accurate, balanced or fast"));
      }
    } else if (name == kParamMaxGflops) {
      // Range (finite, >= 0) is the shared validator's.
      if (param.parameter_choice_case() == InferParameter::kDoubleParam) {
        out.mutable_budget()->set_max_gflops(param.double_param());
      } else if (param.parameter_choice_case() == InferParameter::kInt64Param) {
        out.mutable_budget()->set_max_gflops(static_cast<double>(param.int64_param()));
      } else {
        return absl::InvalidArgumentError(
            "parameters[\"max_gflops\"] must be a number (double_param or int64_param)");
      }
    } else if (name == kParamTopK) {
      absl::StatusOr<int64_t> k = IntParam(name, param);
      if (!k.ok()) return k.status();
      if (*k < 1 || *k > config.num_classes()) {
        return absl::InvalidArgumentError(absl::StrCat("parameters[\"top_k\"]=", *k,
                                                       " must be in [1, ", config.num_classes(),
                                                       "] (the model's classes)"));
      }
      call->top_k = static_cast<int>(*k);
    } else if (name == kParamPriority) {
      absl::StatusOr<int64_t> priority = IntParam(name, param);
      if (!priority.ok()) return priority.status();
      // Upper bound (the model's priority levels) is the shared validator's.
      if (*priority < 0 || *priority > std::numeric_limits<uint32_t>::max()) {
        return absl::InvalidArgumentError(absl::StrCat("parameters[\"priority\"]=", *priority,
                                                       " must be >= 0 (0 = the model's default)"));
      }
      out.set_priority(static_cast<uint32_t>(*priority));
    }
    // Other parameters are ignored, as the protocol allows: clients (Triton's
    // among them) send their own, e.g. timeouts or sequence ids.
  }
  return absl::OkStatus();
}

absl::Status ApplyOutputs(const ModelInferRequest& request, InferCall* call) {
  if (request.outputs().empty()) {
    call->outputs.assign(std::begin(kDefaultOutputs), std::end(kDefaultOutputs));
    return absl::OkStatus();
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < request.outputs_size(); ++i) {
    const std::string& name = request.outputs(i).name();
    bool known = false;
    for (const char* output : kAllOutputs) known = known || name == output;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("outputs[", i, "]: \"", name,
                                                     "\" is not an output of the model; it has ",
                                                     absl::StrJoin(kAllOutputs, ", ")));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("outputs[", i, "]: \"", name, "\" is requested twice"));
    }
    call->outputs.push_back(name);
  }
  return absl::OkStatus();
}

// Reads little-endian fp32 values.
void DecodeFp32(const std::string& bytes, google::protobuf::RepeatedField<float>* out) {
  const size_t n = bytes.size() / 4;
  out->Resize(static_cast<int>(n), 0.0f);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(out->mutable_data(), bytes.data(), n * 4);
#else
  for (size_t i = 0; i < n; ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + 4 * i;
    const uint32_t bits =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    std::memcpy(out->mutable_data() + i, &bits, 4);
  }
#endif
}

void AppendFp32(float value, std::string* out) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  for (int b = 0; b < 4; ++b) out->push_back(static_cast<char>((bits >> (8 * b)) & 0xFF));
}

// One BYTES element: 4-byte little-endian length, then the bytes.
void AppendBytesElement(const std::string& value, std::string* out) {
  const uint32_t size = static_cast<uint32_t>(value.size());
  for (int b = 0; b < 4; ++b) out->push_back(static_cast<char>((size >> (8 * b)) & 0xFF));
  out->append(value);
}

// Converts input `index` into the feature sequence of its modality.
absl::Status ConvertInput(const ModelInferRequest& request, int index, bool raw,
                          v1::FeatureSequence* seq) {
  const ModelInferRequest::InferInputTensor& input = request.inputs(index);
  const std::string ref = InputRef(index, input.name());
  int bytes_per_value;
  if (input.datatype() == "FP32") {
    bytes_per_value = 4;
  } else if (input.datatype() == "FP16") {
    bytes_per_value = 2;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(ref, ": datatype \"", input.datatype(),
                                                   "\" is not supported; use FP32 or FP16"));
  }
  const auto& shape = input.shape();
  const bool rank2 = shape.size() == 2;
  const bool rank3 = shape.size() == 3 && shape[0] == 1;
  if (!rank2 && !rank3) {
    return absl::InvalidArgumentError(absl::StrCat(ref, ": shape ", ShapeString(shape),
                                                   " must be [frames, dim] or [1, frames, dim]"));
  }
  const int64_t frames = shape[shape.size() - 2];
  const int64_t dim = shape[shape.size() - 1];
  constexpr int64_t kMaxDim = std::numeric_limits<uint32_t>::max();
  if (frames < 0 || dim < 0 || frames > kMaxDim || dim > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(ref, ": shape ", ShapeString(shape),
                                                   " has a dimension outside [0, ", kMaxDim, "]"));
  }
  // frames, dim < 2^32: the product fits in uint64 (not int64), checked below.
  const uint64_t values = static_cast<uint64_t>(frames) * static_cast<uint64_t>(dim);
  seq->set_frames(static_cast<uint32_t>(frames));
  seq->set_dim(static_cast<uint32_t>(dim));

  if (raw) {
    if (input.has_contents()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ref,
                       ": has contents while raw_input_contents is given; send every "
                       "input's data one way (raw_input_contents, or contents)"));
    }
    const std::string& bytes = request.raw_input_contents(index);
    if (values > std::numeric_limits<uint64_t>::max() / bytes_per_value ||
        bytes.size() != values * bytes_per_value) {
      return absl::InvalidArgumentError(
          absl::StrCat(ref, ": raw_input_contents[", index, "] has ", bytes.size(),
                       " bytes, but shape ", ShapeString(shape), " of ", input.datatype(),
                       " needs ", frames, " x ", dim, " x ", bytes_per_value, " bytes"));
    }
    if (bytes_per_value == 2) {
      seq->set_data_fp16(bytes);
    } else {
      DecodeFp32(bytes, seq->mutable_data());
    }
    return absl::OkStatus();
  }

  if (bytes_per_value == 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(ref,
                     ": FP16 data must come in raw_input_contents (the protocol has no typed FP16 "
                     "contents)"));
  }
  const inference::InferTensorContents& contents = input.contents();
  if (contents.bool_contents_size() + contents.int_contents_size() +
          contents.int64_contents_size() + contents.uint_contents_size() +
          contents.uint64_contents_size() + contents.fp64_contents_size() +
          contents.bytes_contents_size() >
      0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ref,
                     ": FP32 data must be in contents.fp32_contents; other typed "
                     "contents are set"));
  }
  if (static_cast<uint64_t>(contents.fp32_contents_size()) != values) {
    return absl::InvalidArgumentError(
        absl::StrCat(ref, ": contents.fp32_contents has ", contents.fp32_contents_size(),
                     " values, but shape ", ShapeString(shape), " needs ", frames, " x ", dim));
  }
  *seq->mutable_data() = contents.fp32_contents();
  return absl::OkStatus();
}

}  // namespace

std::string ModelVersion(const v1::ModelConfig& config) {
  return config.version().empty() ? "1" : config.version();
}

absl::Status CheckVersion(const v1::ModelConfig& config, const std::string& requested) {
  if (requested.empty() || requested == ModelVersion(config)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("model \"", config.name(), "\" has no version \"",
                                          requested, "\" loaded; it serves version \"",
                                          ModelVersion(config), "\""));
}

absl::StatusOr<InferCall> ToInferCall(const ModelInferRequest& request,
                                      const v1::ModelConfig& config) {
  InferCall call;
  call.request.set_request_id(request.id());
  call.request.set_top_k(config.num_classes());
  // Named in this protocol's words (the native validator would say "features").
  if (request.inputs_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs is empty: send at least one input (the model takes ", InputNames(config), ")"));
  }
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw_input_contents has ", request.raw_input_contents_size(), " entries for ",
                     request.inputs_size(), " inputs; give one per input, in the order of inputs"));
  }
  for (int i = 0; i < request.inputs_size(); ++i) {
    const std::string& name = request.inputs(i).name();
    if (model::ModalityIndex(config, name) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(InputRef(i, name), ": unknown input; the model takes ", InputNames(config)));
    }
    auto [it, inserted] = call.request.mutable_features()->try_emplace(name);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(InputRef(i, name), ": input \"", name, "\" is given twice"));
    }
    absl::Status converted = ConvertInput(request, i, raw, &it->second);
    if (!converted.ok()) return converted;
  }
  absl::Status status = ApplyParameters(request, config, &call);
  if (!status.ok()) return status;
  status = ApplyOutputs(request, &call);
  if (!status.ok()) return status;
  return call;
}

void ToModelInferResponse(const v1::ClassifyResponse& response, const InferCall& call,
                          const v1::ModelConfig& config,
                          const google::protobuf::RepeatedPtrField<std::string>& labels,
                          ModelInferResponse* out) {
  out->set_model_name(config.name());
  out->set_model_version(ModelVersion(config));
  out->set_id(call.request.request_id());
  const int classes = config.num_classes();
  for (const std::string& name : call.outputs) {
    ModelInferResponse::InferOutputTensor* tensor = out->add_outputs();
    tensor->set_name(name);
    std::string* raw = out->add_raw_output_contents();
    if (name == kOutputProbabilities) {
      // top_k holds every class (InferCall asked for all): scatter by index.
      std::vector<float> probabilities(classes, 0.0f);
      for (const v1::ClassScore& score : response.top_k()) {
        if (score.index() < static_cast<uint32_t>(classes)) {
          probabilities[score.index()] = score.probability();
        }
      }
      tensor->set_datatype("FP32");
      tensor->add_shape(classes);
      raw->reserve(4 * classes);
      for (float p : probabilities) AppendFp32(p, raw);
    } else if (name == kOutputLabel) {
      // top_k is sorted, most probable first.
      const int k = std::min(call.top_k, response.top_k_size());
      tensor->set_datatype("BYTES");
      tensor->add_shape(k);
      for (int i = 0; i < k; ++i) AppendBytesElement(response.top_k(i).label(), raw);
    } else if (name == kOutputBranch) {
      tensor->set_datatype("BYTES");
      tensor->add_shape(1);
      AppendBytesElement(response.branch(), raw);
    } else if (name == kOutputGflops) {
      tensor->set_datatype("FP32");
      tensor->add_shape(1);
      AppendFp32(static_cast<float>(response.gflops()), raw);
    } else if (name == kOutputLabels) {
      tensor->set_datatype("BYTES");
      tensor->add_shape(labels.size());
      for (const std::string& label : labels) AppendBytesElement(label, raw);
    }
  }
  auto& params = *out->mutable_parameters();
  params["modalities"].set_string_param(absl::StrJoin(response.modalities_used(), ","));
  params["queue_us"].set_int64_param(static_cast<int64_t>(response.timings().queue_us()));
  params["compute_us"].set_int64_param(static_cast<int64_t>(response.timings().compute_us()));
  params["total_us"].set_int64_param(static_cast<int64_t>(response.timings().total_us()));
  params["batch_size"].set_int64_param(response.batch_size());
}

void ToModelMetadata(const v1::ModelConfig& config, inference::ModelMetadataResponse* out) {
  out->set_name(config.name());
  out->add_versions(ModelVersion(config));
  out->set_platform("mmfuse");
  for (const v1::ModalityConfig& m : config.modalities()) {
    auto* input = out->add_inputs();
    input->set_name(m.name());
    input->set_datatype("FP32");
    input->add_shape(-1);
    input->add_shape(m.feature_dim());
  }
  auto add_output = [out](const char* name, const char* datatype, int64_t dim) {
    auto* output = out->add_outputs();
    output->set_name(name);
    output->set_datatype(datatype);
    output->add_shape(dim);
  };
  add_output(kOutputProbabilities, "FP32", config.num_classes());
  add_output(kOutputLabel, "BYTES", -1);
  add_output(kOutputBranch, "BYTES", 1);
  add_output(kOutputGflops, "FP32", 1);
  add_output(kOutputLabels, "BYTES", config.num_classes());
}

}  // namespace mmfuse::server::kserve
