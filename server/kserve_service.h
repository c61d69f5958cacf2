// KServeService: the Open Inference Protocol (KServe v2 gRPC, service
// inference.GRPCInferenceService, proto/inference/grpc_predict_v2.proto) on
// gRPC's callback API, served on the same port as mmfuse.v1.
//
// It is a front end only: models, routing, draining, request accounting and
// metrics are the ClassifierService's, and every inference goes through
// ServedModel::Classify like a native request (same validation, gate,
// batcher, deadlines and cancellation). server/kserve_convert does the
// message conversion; docs/API.md documents the mapping.
//
// Readiness: ServerReady and ModelReady answer false from the moment the
// server starts draining (Server::Shutdown, the same step that turns
// grpc.health.v1 NOT_SERVING); inference then fails UNAVAILABLE.
//
// Thread-safety: thread-safe. `classifier` must outlive the service.
#ifndef MMFUSE_SERVER_KSERVE_SERVICE_H_
#define MMFUSE_SERVER_KSERVE_SERVICE_H_

#include <string>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "server/classifier_service.h"

namespace mmfuse::server {

// Most requests of one ModelStreamInfer call in flight at once (as
// ClassifyStream); reading pauses beyond.
inline constexpr int kMaxKServeStreamInflight = kMaxStreamInflight;

class KServeService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `server_version` is what ServerMetadata reports.
  KServeService(ClassifierService* classifier, std::string server_version);

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext* context) override;

  // Routes, converts and submits `request`; `done` runs exactly once with
  // the final status after `response` is filled (on success), on this
  // thread if refused, else on a batcher worker. Records the request in
  // the counts and metrics (protocol "kserve"). `request` and `response`
  // must stay valid until `done`. For ModelInfer and ModelStreamInfer.
  void Infer(const inference::ModelInferRequest* request, inference::ModelInferResponse* response,
             const CallContext& call, std::function<void(absl::Status)> done);

 private:
  // The model `name`/`version` names, whether or not the server is draining:
  // NOT_FOUND for an unknown model or version.
  absl::StatusOr<ServedModel*> FindModel(const std::string& name, const std::string& version) const;

  ClassifierService* const classifier_;
  const std::string server_version_;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_KSERVE_SERVICE_H_
