#include "client/bench/kserve_codec.h"

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mmfuse::bench {
namespace {

constexpr const char* kBudgetNames[] = {"", "accurate", "balanced", "fast"};

std::string Fp32Bytes(const google::protobuf::RepeatedField<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  for (int i = 0; i < values.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
  }
  return bytes;
}

// The first element of a BYTES output (4-byte little-endian length, then
// the bytes); empty if there is none.
std::string FirstBytesElement(const std::string& raw) {
  if (raw.size() < 4) return "";
  uint32_t size = 0;
  for (int b = 0; b < 4; ++b) size |= uint32_t{static_cast<unsigned char>(raw[b])} << (8 * b);
  return raw.substr(4, size);
}

int64_t IntParameter(const inference::ModelInferResponse& response, const char* name) {
  auto it = response.parameters().find(name);
  return it == response.parameters().end() ? 0 : it->second.int64_param();
}

// The status code named before the first ':' of `message`.
int CodeOf(absl::string_view message) {
  const absl::string_view name = message.substr(0, message.find(':'));
  for (int code = 0; code <= 16; ++code) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(code)) == name) return code;
  }
  return static_cast<int>(absl::StatusCode::kUnknown);
}

}  // namespace

std::string SerializeAsModelInfer(const v1::ClassifyRequest& request) {
  inference::ModelInferRequest infer;
  infer.set_model_name(request.model());
  infer.set_id(request.request_id());
  for (const auto& [name, seq] : request.features()) {
    auto* input = infer.add_inputs();
    input->set_name(name);
    input->add_shape(seq.frames());
    input->add_shape(seq.dim());
    if (!seq.data_fp16().empty()) {
      input->set_datatype("FP16");
      infer.add_raw_input_contents(seq.data_fp16());
    } else {
      input->set_datatype("FP32");
      infer.add_raw_input_contents(Fp32Bytes(seq.data()));
    }
  }
  auto& params = *infer.mutable_parameters();
  const int level = static_cast<int>(request.budget().level());
  if (level > 0 && level < 4) params["budget"].set_string_param(kBudgetNames[level]);
  if (request.budget().max_gflops() > 0) {
    params["max_gflops"].set_double_param(request.budget().max_gflops());
  }
  if (request.top_k() > 0) params["top_k"].set_int64_param(request.top_k());
  if (request.priority() > 0) params["priority"].set_int64_param(request.priority());
  return infer.SerializeAsString();
}

std::string SerializeModelInferId(const std::string& id) {
  inference::ModelInferRequest id_only;
  id_only.set_id(id);
  return id_only.SerializeAsString();
}

v1::ClassifyResponse FromModelInfer(const inference::ModelInferResponse& response) {
  v1::ClassifyResponse out;
  out.set_request_id(response.id());
  out.set_model(response.model_name());
  for (int i = 0; i < response.outputs_size() && i < response.raw_output_contents_size(); ++i) {
    const std::string& name = response.outputs(i).name();
    if (name == "label") {
      out.add_top_k()->set_label(FirstBytesElement(response.raw_output_contents(i)));
    } else if (name == "branch") {
      out.set_branch(FirstBytesElement(response.raw_output_contents(i)));
    }
  }
  out.set_batch_size(static_cast<uint32_t>(IntParameter(response, "batch_size")));
  out.mutable_timings()->set_queue_us(IntParameter(response, "queue_us"));
  out.mutable_timings()->set_compute_us(IntParameter(response, "compute_us"));
  out.mutable_timings()->set_total_us(IntParameter(response, "total_us"));
  return out;
}

v1::ClassifyResponse FromModelStreamInfer(const inference::ModelStreamInferResponse& response) {
  v1::ClassifyResponse out = FromModelInfer(response.infer_response());
  if (!response.error_message().empty()) {
    out.mutable_error()->set_code(CodeOf(response.error_message()));
    out.mutable_error()->set_message(response.error_message());
  }
  return out;
}

}  // namespace mmfuse::bench
