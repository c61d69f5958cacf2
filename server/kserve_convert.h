// The Open Inference Protocol (KServe v2, proto/inference/) mapped onto
// mmfuse.v1: a ModelInferRequest becomes the ClassifyRequest that the native
// API would carry (then ServedModel validates and runs it exactly as it does
// a native one), and the ClassifyResponse becomes a ModelInferResponse.
// docs/API.md documents the mapping field by field.
//
// Only what the v2 protocol adds is checked here (tensor names, datatypes,
// shapes against byte counts, raw against typed contents, outputs,
// parameters); frames, dims, values, top_k, budget and priority limits are
// server/request_validator's, shared with the native API. Errors are
// INVALID_ARGUMENT naming the input (or output, or parameter) and the
// limit.
//
// No gRPC service and no LibTorch: pure functions, thread-safe.
#ifndef MMFUSE_SERVER_KSERVE_CONVERT_H_
#define MMFUSE_SERVER_KSERVE_CONVERT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "inference/grpc_predict_v2.pb.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::server::kserve {

// Output tensors of every mmfuse model.
inline constexpr char kOutputProbabilities[] = "probabilities";  // FP32 [classes]
inline constexpr char kOutputLabel[] = "label";                  // BYTES [top_k]
inline constexpr char kOutputBranch[] = "branch";                // BYTES [1]
inline constexpr char kOutputGflops[] = "gflops";                // FP32 [1]
// BYTES [classes]: every class label, by index. Listed in ModelMetadata and
// returned only when requested by name (it is the same for every request).
inline constexpr char kOutputLabels[] = "labels";

// Request parameters (ModelInferRequest.parameters).
inline constexpr char kParamBudget[] = "budget";         // string: accurate|balanced|fast
inline constexpr char kParamMaxGflops[] = "max_gflops";  // double or int64, >= 0
inline constexpr char kParamTopK[] = "top_k";            // int64 or uint64, labels in `label`
inline constexpr char kParamPriority[] = "priority";     // int64 or uint64, 0 = default

// The request as mmfuse runs it, plus what shaping the answer needs.
struct InferCall {
  // features, budget, priority and request_id (the v2 id) from the v2
  // request; model left empty (the caller routed already); top_k set to
  // every class, so the answer carries the whole distribution.
  v1::ClassifyRequest request;
  // Outputs to return, in order: the request's list, or (when it names
  // none) probabilities, label, branch, gflops.
  std::vector<std::string> outputs;
  // Labels in the `label` output: the `top_k` parameter, default 1.
  int top_k = 1;
};

// The version mmfuse reports for a model: its package's version, or "1"
// when the package has none.
std::string ModelVersion(const v1::ModelConfig& config);

// OK if `requested` is empty or `config`'s version; else NOT_FOUND naming
// both.
absl::Status CheckVersion(const v1::ModelConfig& config, const std::string& requested);

// Converts `request` for the model of `config`. The raw bytes are copied:
// the result does not borrow from `request`.
absl::StatusOr<InferCall> ToInferCall(const inference::ModelInferRequest& request,
                                      const v1::ModelConfig& config);

// Fills `out` from the model's answer to `call`. `labels` are the model's
// class labels by index (v1::ModelInfo.labels). Outputs go in
// raw_output_contents (little-endian; BYTES elements as a 4-byte length then
// the bytes), as Triton's clients read them. Response parameters:
// modalities (string, comma-separated, the modalities the branch ran),
// queue_us, compute_us, total_us, batch_size (int64).
void ToModelInferResponse(const v1::ClassifyResponse& response, const InferCall& call,
                          const v1::ModelConfig& config,
                          const google::protobuf::RepeatedPtrField<std::string>& labels,
                          inference::ModelInferResponse* out);

// The model's metadata: one FP32 input per modality, shape [-1, feature_dim]
// (FP16 accepted too, see docs/API.md), and the outputs above, `labels`
// with shape [classes].
void ToModelMetadata(const v1::ModelConfig& config, inference::ModelMetadataResponse* out);

}  // namespace mmfuse::server::kserve

#endif  // MMFUSE_SERVER_KSERVE_CONVERT_H_
