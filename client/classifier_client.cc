#include "client/classifier_client.h"

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"

namespace mmfuse::client {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

void SetTimeout(grpc::ClientContext* context, absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

}  // namespace

ClassifierClient::ClassifierClient(const std::string& target)
    : channel_(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())),
      stub_(v1::MultimodalClassifier::NewStub(channel_)) {}

ClassifierClient::ClassifierClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(v1::MultimodalClassifier::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<ClassifierClient>> ClassifierClient::Create(
    const std::string& target, const ChannelSecurityOptions& security) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = CreateSecureChannel(target, security);
  if (!channel.ok()) return channel.status();
  return std::make_unique<ClassifierClient>(*std::move(channel));
}

absl::StatusOr<v1::ClassifyResponse> ClassifierClient::Classify(
    const v1::ClassifyRequest& request, absl::Duration timeout) {
  grpc::ClientContext context;
  SetTimeout(&context, timeout);
  v1::ClassifyResponse response;
  grpc::Status status = stub_->Classify(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> ClassifierClient::GetModelInfo(const std::string& model,
                                                            absl::Duration timeout) {
  grpc::ClientContext context;
  SetTimeout(&context, timeout);
  v1::GetModelInfoRequest request;
  request.set_model(model);
  v1::ModelInfo info;
  grpc::Status status = stub_->GetModelInfo(&context, request, &info);
  if (!status.ok()) return FromGrpc(status);
  return info;
}

absl::StatusOr<std::string> ClassifierClient::CheckHealth(const std::string& service,
                                                          absl::Duration timeout) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  SetTimeout(&context, timeout);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

v1::ClassifyRequest RequestFromExample(const v1::Example& example) {
  v1::ClassifyRequest request;
  request.set_request_id(example.id());
  *request.mutable_features() = example.features();
  return request;
}

}  // namespace mmfuse::client
