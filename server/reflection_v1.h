// ReflectionV1Service: grpc.reflection.v1.ServerReflection, beside the
// v1alpha service gRPC 1.51's reflection plugin serves. Newer tools (grpcurl
// 1.8.8+, Postman, grpcui) ask v1 first; the two protocols carry the same
// messages, and both answer from the same descriptors (protobuf's generated
// pool: every service and message compiled into the server).
//
// Answers: list_services (the services named at construction),
// file_by_filename and file_containing_symbol (the file and, as gRPC's v1alpha
// service does, every file it depends on), file_containing_extension,
// all_extension_numbers_of_type; an unknown name is an error_response with
// NOT_FOUND naming it, an empty request one with INVALID_ARGUMENT.
//
// Thread-safety: thread-safe (each stream has its own reactor; the pool is
// immutable).
#ifndef MMFUSE_SERVER_REFLECTION_V1_H_
#define MMFUSE_SERVER_REFLECTION_V1_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace mmfuse::server {

class ReflectionV1Service final : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  // `services`: the full names list_services reports.
  explicit ReflectionV1Service(std::vector<std::string> services);

  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // The response to one request. Pure; for the reactor and tests.
  grpc::reflection::v1::ServerReflectionResponse Answer(
      const grpc::reflection::v1::ServerReflectionRequest& request) const;

 private:
  const std::vector<std::string> services_;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_REFLECTION_V1_H_
