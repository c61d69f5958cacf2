#include "server/kserve_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc_call_context.h"
#include "server/grpc_status.h"
#include "server/kserve_convert.h"
#include "server/metrics.h"
#include "server/ordered_stream_reactor.h"
#include "server/unary_reactor.h"

namespace mmfuse::server {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

// A request inside ServedModel: the converted request and the native answer.
struct InferState {
  kserve::InferCall call;
  v1::ClassifyResponse answer;
};

}  // namespace

KServeService::KServeService(ClassifierService* classifier, std::string server_version)
    : classifier_(classifier), server_version_(std::move(server_version)) {}

absl::StatusOr<ServedModel*> KServeService::FindModel(const std::string& name,
                                                      const std::string& version) const {
  absl::StatusOr<ServedModel*> model = classifier_->Find(name);
  if (!model.ok()) return model.status();
  absl::Status status = kserve::CheckVersion((*model)->config(), version);
  if (!status.ok()) return status;
  return model;
}

void KServeService::Infer(const ModelInferRequest* request, ModelInferResponse* response,
                          const CallContext& call, std::function<void(absl::Status)> done) {
  const absl::Time received = call.received;
  absl::StatusOr<ServedModel*> routed = classifier_->Route(request->model_name());
  absl::Status status = routed.ok()
                            ? kserve::CheckVersion((*routed)->config(), request->model_version())
                            : routed.status();
  if (!status.ok()) {
    classifier_->RecordFinished(request->model_name(), status, received, kProtocolKserve);
    done(status);
    return;
  }
  ServedModel* model = *routed;
  absl::StatusOr<kserve::InferCall> converted = kserve::ToInferCall(*request, model->config());
  if (!converted.ok()) {
    if (classifier_->metrics() != nullptr) {
      classifier_->metrics()->RecordRejected(model->name(), "invalid");
    }
    classifier_->RecordFinished(model->name(), converted.status(), received, kProtocolKserve);
    done(converted.status());
    return;
  }
  auto state = std::make_shared<InferState>();
  state->call = *std::move(converted);
  classifier_->Admit(
      model, &state->call.request, &state->answer, call,
      [this, model, state, response, received, done = std::move(done)](absl::Status status) {
        classifier_->RecordFinished(model->name(), status, received, kProtocolKserve);
        if (status.ok()) {
          kserve::ToModelInferResponse(state->answer, state->call, model->config(),
                                       model->info().labels(), response);
        }
        done(status);  // Last: it may free the request and response.
      });
}

grpc::ServerUnaryReactor* KServeService::ModelInfer(grpc::CallbackServerContext* context,
                                                    const ModelInferRequest* request,
                                                    ModelInferResponse* response) {
  auto* reactor = new UnaryReactor(context, classifier_->open_calls());
  Infer(request, response, MakeCallContext(context, absl::Now()),
        [reactor](absl::Status status) { reactor->FinishWith(ToGrpcStatus(status)); });
  return reactor;
}

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>*
KServeService::ModelStreamInfer(grpc::CallbackServerContext* context) {
  // Each request read goes through Infer; a failed one is answered with
  // error_message set and the stream goes on.
  auto submit = [this](const ModelInferRequest* request, ModelStreamInferResponse* response,
                       CallContext call, std::function<void(absl::Status)> done) {
    Infer(request, response->mutable_infer_response(), call, std::move(done));
  };
  auto answer = [](const ModelInferRequest& request, const absl::Status& status,
                   ModelStreamInferResponse* response) {
    if (!status.ok()) {
      response->Clear();
      // The id (and what the client asked for) lets it match the error.
      response->set_error_message(
          absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message()));
      ModelInferResponse* echo = response->mutable_infer_response();
      echo->set_model_name(request.model_name());
      echo->set_model_version(request.model_version());
    }
    response->mutable_infer_response()->set_id(request.id());
  };
  return new OrderedStreamReactor<ModelInferRequest, ModelStreamInferResponse>(
      context, kMaxKServeStreamInflight, classifier_->open_calls(), std::move(submit),
      std::move(answer));
}

grpc::ServerUnaryReactor* KServeService::ServerLive(grpc::CallbackServerContext* context,
                                                    const inference::ServerLiveRequest*,
                                                    inference::ServerLiveResponse* response) {
  // Answering at all means live; draining still answers requests.
  response->set_live(true);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ServerReady(grpc::CallbackServerContext* context,
                                                     const inference::ServerReadyRequest*,
                                                     inference::ServerReadyResponse* response) {
  response->set_ready(!classifier_->draining() && !classifier_->models().empty());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ModelReady(grpc::CallbackServerContext* context,
                                                    const inference::ModelReadyRequest* request,
                                                    inference::ModelReadyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ServedModel*> model = FindModel(request->name(), request->version());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  // A model is served from its load until the drain: then it refuses work.
  response->set_ready(!classifier_->draining());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("mmfuse");
  response->set_version(server_version_);
  // Beyond the core protocol: request parameters and the streaming RPC.
  response->add_extensions("parameters");
  response->add_extensions("model_stream_infer");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ServedModel*> model = FindModel(request->name(), request->version());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  kserve::ToModelMetadata((*model)->config(), response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mmfuse::server
