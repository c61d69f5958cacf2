// KServe codec: the bench's requests and responses on the Open Inference
// Protocol (inference.GRPCInferenceService, KServe v2), so one workload can
// be sent through either API and the results compared like for like.
//
// A ClassifyRequest becomes the ModelInferRequest the server maps back to
// it (docs/API.md): one input per modality, shape [frames, dim], data in
// raw_input_contents (FP32, or FP16 for data_fp16); budget, max_gflops,
// top_k and priority as request parameters; no `outputs` (all of them).
// A ModelInferResponse becomes the ClassifyResponse fields the runner
// reads: request_id, top label, branch, batch size and timings.
//
// Thread-safety: pure functions.
#ifndef MMFUSE_CLIENT_BENCH_KSERVE_CODEC_H_
#define MMFUSE_CLIENT_BENCH_KSERVE_CODEC_H_

#include <string>

#include "inference/grpc_predict_v2.pb.h"
#include "mmfuse/v1/classifier.pb.h"

namespace mmfuse::bench {

// The serialized ModelInferRequest carrying `request` (its request_id as id).
std::string SerializeAsModelInfer(const v1::ClassifyRequest& request);

// The serialized ModelInferRequest with only `id` set: appended to a
// serialized request it sets the id (protobuf's last-field-wins merge).
std::string SerializeModelInferId(const std::string& id);

// The ClassifyResponse fields the runner reads, from `response`.
v1::ClassifyResponse FromModelInfer(const inference::ModelInferResponse& response);

// As FromModelInfer; a failed request (error_message set, "CODE: message")
// gets `error` with the code parsed from the message (UNKNOWN if none).
v1::ClassifyResponse FromModelStreamInfer(const inference::ModelStreamInferResponse& response);

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_KSERVE_CODEC_H_
