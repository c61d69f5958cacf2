// A test's mmfuse server on loopback: ephemeral gRPC and metrics ports, the
// small test package, two workers and a short batching delay; tests adjust
// the options before starting it.
#ifndef MMFUSE_TESTS_SERVER_LOOPBACK_SERVER_H_
#define MMFUSE_TESTS_SERVER_LOOPBACK_SERVER_H_

#include <memory>
#include <string>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "server/server.h"
#include "tests/testing/test_package.h"

namespace mmfuse::testing {

inline server::ServerOptions LoopbackServerOptions() {
  server::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.metrics_port = 0;
  options.packages.push_back(SmallPackage());
  options.serving.workers = 2;
  options.serving.max_queue_delay_us = 200;
  return options;
}

// "127.0.0.1:<port>" of a started server.
inline std::string LoopbackTarget(const server::Server& server) {
  return absl::StrCat("127.0.0.1:", server.port());
}

inline std::shared_ptr<grpc::Channel> InsecureLoopbackChannel(const server::Server& server) {
  return grpc::CreateChannel(LoopbackTarget(server), grpc::InsecureChannelCredentials());
}

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_SERVER_LOOPBACK_SERVER_H_
