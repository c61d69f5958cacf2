// Server: the whole mmfuse-server process minus main(): loads the model
// packages, serves mmfuse.v1.MultimodalClassifier, the Open Inference Protocol
// (inference.GRPCInferenceService), grpc.health.v1 and server reflection (v1
// and v1alpha) on
// one port and Prometheus metrics on another, and shuts down
// gracefully.
//
// Shutdown order: health NOT_SERVING; new requests UNAVAILABLE and open
// streams ended UNAVAILABLE once what they had read is answered; every
// accepted request finished (batchers drained); a quiet moment with no new
// call refused (at most 2 s); every stream ended and the answers sent
// acknowledged by the clients (at most 5 s of it), so no connection is reset
// with answers unsent; then the gRPC server stops (calls still open
// after drain_timeout are cancelled, their answers counted undelivered) and
// Shutdown returns once gRPC has closed its connections (at most 2 s more).
//
// Thread-safety: Start, then Shutdown from one thread; Shutdown is idempotent.
#ifndef MMFUSE_SERVER_SERVER_H_
#define MMFUSE_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/gpu_metrics.h"
#include "server/served_model.h"
#include "server/tls_options.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace mmfuse::server {

class ClassifierService;
class KServeService;
class CollectingRegistry;
class MetricsHttpServer;
class ReflectionV1Service;
class ServerMetrics;

struct ServerOptions {
  // Listen address of the gRPC port. Default all interfaces.
  std::string host = "0.0.0.0";
  // gRPC port, in [0, 65535]; 0 = any free port (see Server::port()).
  // Default 50051.
  int port = 50051;
  // Whether to serve /metrics at all. Default true.
  bool metrics = true;
  // Metrics port, in [0, 65535]; 0 = any free port. Default 9464.
  int metrics_port = 9464;
  // Listen address of the metrics port (e.g. 127.0.0.1 or an internal
  // interface, to keep /metrics off a public address). Default "" = host.
  std::string metrics_host;
  // TLS / mutual TLS of the gRPC port (server/tls_options.h). Default
  // plaintext. The metrics port stays plain HTTP.
  TlsOptions tls;
  // Model package directories; the first is the default model. At least one
  // of model_dirs and packages.
  std::vector<std::string> model_dirs;
  // Already loaded packages (tests); served after model_dirs.
  std::vector<std::shared_ptr<const model::ModelPackage>> packages;
  ServingOptions serving;
  // Largest request message accepted, in [1 KiB, 2 GiB); larger ones get
  // RESOURCE_EXHAUSTED from gRPC. Default 64 MiB.
  int max_receive_message_bytes = 64 << 20;
  // Longest Shutdown waits for open calls after draining, whole seconds in
  // [0, 3600]. Default 30 s.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Feature streams (StreamFeatures*; docs/STREAMS.md), checked per chunk:
  // most data bytes one stream carries (4 per float, 2 per half). >= 1.
  // Default 64 MiB.
  int64_t max_stream_bytes = int64_t{64} << 20;
  // Most chunks one feature stream carries. >= 1. Default 100000.
  int64_t max_stream_chunks = 100000;
  // Longest a feature stream stays open before its half-close; then
  // DEADLINE_EXCEEDED. > 0. Default 60 s.
  absl::Duration stream_timeout = absl::Seconds(60);
  // Longest a feature stream goes without a chunk before its half-close;
  // then DEADLINE_EXCEEDED. > 0. Default 10 s.
  absl::Duration stream_idle_timeout = absl::Seconds(10);
  // Version reported in mmfuse_build_info.
  std::string version = "dev";
  // NVML, loaded at start for the GPU series (server/gpu_metrics.h); absent
  // on machines without NVIDIA's driver, and then there are none.
  std::string nvml_library = kNvmlLibrary;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();  // Shuts down.

  int port() const { return port_; }
  int metrics_port() const;

  // Graceful shutdown (see the file comment). Blocks until done.
  void Shutdown();

  // Requests accepted by a model and answered so far (equal after Shutdown:
  // nothing accepted is lost), and answers that never reached their client,
  // as "accepted=A answered=B ok=C undelivered=U".
  std::string RequestCounts() const;

  // Feature streams whose state is held now (see ClassifierService).
  int64_t OpenFeatureStreams() const;
  // Waits until at most `n` feature streams are held or `timeout` passed;
  // returns whether that happened. For tests.
  bool AwaitOpenFeatureStreamsAtMost(int64_t n, absl::Duration timeout) const;
  // Waits until at least `n` streaming calls (of any kind) are open or
  // `timeout` passed; returns whether that happened. For tests.
  bool AwaitOpenStreamingCallsAtLeast(int64_t n, absl::Duration timeout) const;

 private:
  Server();
  // Waits (see server.cc) until no new call has been refused for a moment.
  void AwaitNoRefusals(absl::Time deadline) const;
  // Waits (see server.cc) until every stream has ended and its answers are
  // acknowledged by the clients, or `deadline`.
  void AwaitAnswersSent(absl::Time deadline) const;

  ServerOptions options_;
  std::unique_ptr<CollectingRegistry> registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<ClassifierService> service_;
  std::unique_ptr<KServeService> kserve_;  // Open Inference Protocol front end.
  std::unique_ptr<ReflectionV1Service> reflection_v1_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  int port_ = 0;
  bool shut_down_ = false;
  absl::Time drain_started_ = absl::InfinitePast();
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_SERVER_H_
