// ClassifierClient: a blocking C++ client for mmfuse.v1.MultimodalClassifier
// and the standard health service. Depends only on the generated API.
//
// Thread-safety: thread-safe (gRPC stubs are).
#ifndef MMFUSE_CLIENT_CLASSIFIER_CLIENT_H_
#define MMFUSE_CLIENT_CLASSIFIER_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/channel_credentials.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "mmfuse/v1/dataset.pb.h"

namespace mmfuse::client {

class ClassifierClient {
 public:
  // `target` is a gRPC target such as "127.0.0.1:50051". Insecure channel.
  explicit ClassifierClient(const std::string& target);
  // Over `channel` (e.g. from CreateSecureChannel), shared.
  explicit ClassifierClient(std::shared_ptr<grpc::Channel> channel);
  // To `target` with `security` (TLS, mutual TLS); errors as
  // MakeChannelCredentials (an unreadable or incomplete set of files).
  static absl::StatusOr<std::unique_ptr<ClassifierClient>> Create(
      const std::string& target, const ChannelSecurityOptions& security);

  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& request,
                                                absl::Duration timeout);
  absl::StatusOr<v1::ModelInfo> GetModelInfo(const std::string& model, absl::Duration timeout);
  // grpc.health.v1 Check of `service` ("" = the whole server). Returns the
  // serving status name, e.g. "SERVING" or "NOT_SERVING".
  absl::StatusOr<std::string> CheckHealth(const std::string& service, absl::Duration timeout);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> stub_;
};

// A request carrying an example's features.
v1::ClassifyRequest RequestFromExample(const v1::Example& example);

}  // namespace mmfuse::client

#endif  // MMFUSE_CLIENT_CLASSIFIER_CLIENT_H_
