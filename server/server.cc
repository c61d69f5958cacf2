#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "server/closing_connections.h"
#include "prometheus/registry.h"
#include "server/classifier_service.h"
#include "server/kserve_service.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/reflection_v1.h"
#include "server/settings.h"

namespace mmfuse::server {

Server::Server() = default;

Server::~Server() { Shutdown(); }

int Server::metrics_port() const { return metrics_http_ ? metrics_http_->port() : -1; }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  MMFUSE_RETURN_IF_ERROR(ValidateServerOptions(options));
  FeatureStreamOptions streams;
  streams.limits.max_stream_bytes = options.max_stream_bytes;
  streams.limits.max_chunks = options.max_stream_chunks;
  streams.stream_timeout = options.stream_timeout;
  streams.idle_timeout = options.stream_idle_timeout;
  streams.clock = options.serving.clock;
  MMFUSE_RETURN_IF_ERROR(ClassifierService::ValidateOptions(streams));
  // Before the models load: a bad certificate path fails in milliseconds.
  MMFUSE_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                          MakeServerCredentials(options.tls));
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->registry_ = std::make_unique<CollectingRegistry>();
  server->metrics_ = std::make_unique<ServerMetrics>(server->registry_.get(), options.version);
  server->service_ = std::make_unique<ClassifierService>(server->metrics_.get(), streams);
  ServerMetrics* metrics = server->metrics_.get();
  server->service_->open_calls()->set_on_undelivered(
      [metrics](int64_t n) { metrics->RecordUndelivered(n); });

  ServingOptions serving = options.serving;
  serving.metrics = server->metrics_.get();
  // Every model loads before the port opens: a server that answers is whole.
  for (const std::string& dir : options.model_dirs) {
    absl::StatusOr<std::unique_ptr<ServedModel>> model = ServedModel::Load(dir, serving);
    if (!model.ok()) {
      return absl::Status(model.status().code(),
                          absl::StrCat("loading model ", dir, ": ", model.status().message()));
    }
    if (server->service_->models().count((*model)->name()) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model name \"", (*model)->name(), "\" of ", dir, " is already loaded"));
    }
    server->service_->AddModel(std::move(*model));
  }
  for (const auto& package : options.packages) {
    MMFUSE_ASSIGN_OR_RETURN(std::unique_ptr<ServedModel> model,
                            ServedModel::Create(package, serving));
    server->service_->AddModel(std::move(model));
  }

  // Scrape-time series: queue depths read from the batchers (the models
  // outlive the registry's scrapes: the metrics endpoint stops first) and
  // process metrics from /proc.
  const ClassifierService* service = server->service_.get();
  server->registry_->AddCollectable(MakeQueueCollector([service] {
    std::vector<QueueSnapshot> snapshots;
    for (const auto& [name, model] : service->models()) {
      const batching::BatcherStats stats = model->Stats();
      QueueSnapshot snapshot;
      snapshot.model = name;
      snapshot.capacity = stats.max_queue_size;
      snapshot.depth_by_branch = model->QueueDepths();
      snapshots.push_back(std::move(snapshot));
    }
    return snapshots;
  }));
  server->registry_->AddCollectable(MakeProcessCollector());
  if (absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(options.nvml_library); nvml.ok()) {
    server->registry_->AddCollectable(MakeGpuCollector(std::move(*nvml)));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.port),
                           credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // gRPC binds with SO_REUSEPORT by default: a second server on a port in
  // use would start and silently take a share of the first one's
  // connections. A port in use is an error at start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(server->service_.get());
  server->kserve_ = std::make_unique<KServeService>(server->service_.get(), options.version);
  builder.RegisterService(server->kserve_.get());
  // Everything registered, gRPC's v1alpha reflection included (the plugin
  // adds it at build).
  server->reflection_v1_ = std::make_unique<ReflectionV1Service>(std::vector<std::string>{
      v1::MultimodalClassifier::service_full_name(),
      inference::GRPCInferenceService::service_full_name(), "grpc.health.v1.Health",
      "grpc.reflection.v1alpha.ServerReflection",
      grpc::reflection::v1::ServerReflection::service_full_name()});
  builder.RegisterService(server->reflection_v1_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.host, ":",
                                               options.port, " (in use?)"));
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(v1::MultimodalClassifier::service_full_name(), true);
  health->SetServingStatus(inference::GRPCInferenceService::service_full_name(), true);

  if (options.metrics) {
    MMFUSE_ASSIGN_OR_RETURN(server->metrics_http_,
                            MetricsHttpServer::Start(options.metrics_host.empty()
                                                         ? options.host
                                                         : options.metrics_host,
                                                     options.metrics_port,
                                                     server->registry_.get()));
  }
  return server;
}

std::string Server::RequestCounts() const {
  const ClassifierService::Counts counts = service_->counts();
  return absl::StrCat("accepted=", counts.accepted, " answered=", counts.answered,
                      " ok=", counts.answered_ok, " undelivered=", counts.undelivered);
}

int64_t Server::OpenFeatureStreams() const { return service_->open_feature_streams(); }

bool Server::AwaitOpenFeatureStreamsAtMost(int64_t n, absl::Duration timeout) const {
  Clock* clock = options_.serving.clock != nullptr ? options_.serving.clock : Clock::Real();
  return service_->AwaitOpenFeatureStreamsAtMost(n, clock->Now() + timeout);
}

bool Server::AwaitOpenStreamingCallsAtLeast(int64_t n, absl::Duration timeout) const {
  return service_->open_calls()->AwaitSizeAtLeast(n, timeout);
}

void Server::AwaitNoRefusals(absl::Time deadline) const {
  // gRPC's Shutdown cancels, with a bare CANCELLED that clients do not
  // retry, every call it has received and not yet handed to a handler.
  // Until then the handlers answer "UNAVAILABLE: server is shutting down",
  // so gRPC's shutdown waits until clients have stopped sending: no refusal
  // for kQuiet. A client that keeps calling regardless cannot hold shutdown
  // longer than kMaxWait (nor past the drain deadline).
  constexpr absl::Duration kQuiet = absl::Milliseconds(100);
  constexpr absl::Duration kMaxWait = absl::Seconds(2);
  const absl::Time give_up = std::min(deadline, absl::Now() + kMaxWait);
  while (true) {
    const absl::Time now = absl::Now();
    const absl::Time quiet_at = std::max(service_->last_refusal(), drain_started_) + kQuiet;
    if (now >= quiet_at || now >= give_up) return;
    absl::SleepFor(std::min(quiet_at, give_up) - now);
  }
}

void Server::AwaitAnswersSent(absl::Time deadline) const {
  // gRPC closes a connection once its own writes are in the socket, not
  // once the peer has them; closing a socket with unread input (the client's
  // flow-control updates, pings) resets it and drops what the kernel has
  // not sent yet: a slow reader lost the tail of its stream that way. So,
  // while gRPC still runs: every stream ends (its last answers handed to
  // gRPC; the drain has told each one to), then the kernel's send queues
  // empty (acknowledged by the clients), and only then does gRPC shut down.
  // Clients still calling (each refusal is bytes in flight too) cannot hold
  // the second wait longer than kMaxUnackedWait.
  service_->open_calls()->AwaitSizeAtMost(0, deadline - absl::Now());
  constexpr absl::Duration kSettle = absl::Milliseconds(20);
  constexpr absl::Duration kMaxUnackedWait = absl::Seconds(5);
  if (!AwaitUnackedBytesDrained(port_, kSettle, std::min(deadline, absl::Now() + kMaxUnackedWait))) {
    std::fprintf(stderr, "mmfuse-server: bytes sent on port %d still unacknowledged after %s\n",
                 port_, absl::FormatDuration(kMaxUnackedWait).c_str());
  }
}

void Server::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    drain_started_ = absl::Now();
    const absl::Time deadline = absl::Now() + options_.drain_timeout;
    service_->StartDraining();
    service_->ShutdownModels();  // Every accepted request is answered here.
    AwaitNoRefusals(deadline);
    AwaitAnswersSent(deadline);
    grpc_server_->Shutdown(absl::ToChronoTime(deadline));
    grpc_server_->Wait();
    // The last answers may still sit in gRPC's write buffers
    // (server/closing_connections.h): the process must not exit, nor the
    // server be destroyed, before they reach the sockets. gRPC closes each
    // connection once its writes finish; a client that never answers the
    // GOAWAY cannot hold shutdown longer than kConnectionCloseWait.
    constexpr absl::Duration kConnectionCloseWait = absl::Seconds(2);
    if (!AwaitConnectionsFinished(port_, std::min(deadline, absl::Now() + kConnectionCloseWait))) {
      std::fprintf(stderr, "mmfuse-server: connections on port %d still open after %s\n", port_,
                   absl::FormatDuration(kConnectionCloseWait).c_str());
    }
  }
  if (metrics_http_ != nullptr) metrics_http_->Stop();
}

}  // namespace mmfuse::server
