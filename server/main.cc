// mmfuse-server: serves multimodal classification over gRPC.
#include <csignal>
#include <cstdint>
#include <optional>
#include <cstdio>
#include <string>
#include <vector>

#include <pthread.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_split.h"
#include "model/device.h"
#include "model/inference.h"
#include "server/server.h"
#include "server/settings.h"

ABSL_FLAG(std::string, host, "0.0.0.0",
          "Address to listen on (gRPC, and metrics unless --metrics_host is given).");
ABSL_FLAG(int, port, 50051, "gRPC port, in [0, 65535]; 0 picks a free one.");
ABSL_FLAG(bool, metrics, true, "Serve Prometheus /metrics; --nometrics opens no metrics port.");
ABSL_FLAG(int, metrics_port, 9464, "Prometheus /metrics port, in [0, 65535]; 0 picks a free one.");
ABSL_FLAG(std::string, metrics_host, "",
          "Address the metrics port listens on; empty = --host.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain: serve gRPC over TLS (with --tls_key_file). Empty = plaintext.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle: mutual TLS, every client must present a certificate it signed.");
ABSL_FLAG(std::string, model_dir, "models/default",
          "Model package directory; several separated by commas, the first is the default.");
ABSL_FLAG(std::string, device, "auto",
          "Where the model runs: auto (the first CUDA device if LibTorch sees one, else cpu), "
          "cpu, cuda or cuda:N.");
ABSL_FLAG(std::string, precision, "fp32",
          "Number format the model computes in: fp32, bf16 (slower on CPUs without bf16 units) "
          "or fp16 (GPU only).");
ABSL_FLAG(bool, cuda_graphs, false,
          "On a GPU, replay a CUDA graph per (batch, length) bucket instead of launching each "
          "kernel (needs a CUDA LibTorch).");
ABSL_FLAG(int, workers, 2,
          "Worker threads running batches, in [1, 256] (one math thread each; on a GPU, one "
          "stream each).");
// The batching overrides: absent = the package's value (its config.pbtxt).
ABSL_FLAG(std::optional<int>, max_batch_size, std::nullopt,
          "Most samples per batch, in [1, 4096]; absent = the package's value.");
ABSL_FLAG(std::optional<int64_t>, max_queue_delay_us, std::nullopt,
          "Longest a request waits for company, in microseconds, in [0, 10000000]; absent = "
          "the package's value.");
ABSL_FLAG(std::optional<int>, max_queue_size, std::nullopt,
          "Most requests waiting per queue, in [1, 1000000]; absent = the package's value.");
ABSL_FLAG(std::optional<int64_t>, max_batch_tokens, std::nullopt,
          "Most tokens per batch, in [1, 4294967296]; absent = the package's value.");
ABSL_FLAG(std::optional<int64_t>, default_timeout_ms, std::nullopt,
          "Timeout for requests without a deadline, in ms, in [1, 86400000]; absent = the "
          "package's value (none).");
ABSL_FLAG(std::optional<int64_t>, max_queue_time_ms, std::nullopt,
          "Longest estimated queue wait a request is accepted with, in ms, in [1, 86400000]; "
          "beyond it (or beyond its deadline) it is refused at once, RESOURCE_EXHAUSTED; "
          "absent = the package's value (none: deadlines only).");
ABSL_FLAG(std::optional<double>, length_bucket_ratio, std::nullopt,
          "Per modality, requests batch only with requests whose frame count is in the same "
          "geometric bucket of this ratio, in [1.05, 16], 0 = none; absent = the package's value.");
ABSL_FLAG(int, max_receive_message_bytes, 64 << 20,
          "Largest request message, in bytes, in [1024, 2147483647].");
ABSL_FLAG(bool, allow_timeout_override, true,
          "Whether a client's deadline may exceed --default_timeout_ms (false caps it).");
ABSL_FLAG(bool, adaptive_gating, false,
          "Shift the gate toward cheaper branches while queue waits exceed "
          "--target_queue_wait_us (bounded steps, hysteresis).");
ABSL_FLAG(bool, mixed_branch_queues, false,
          "One queue per length bucket for every branch (batches mix branches; each branch "
          "group runs its own expert) instead of a queue per branch. For comparison only.");
ABSL_FLAG(int64_t, target_queue_wait_us, 5000,
          "Queue wait that --adaptive_gating defends, in us, in [1, 60000000].");
ABSL_FLAG(int, drain_timeout_s, 30, "Longest shutdown waits for open calls, in seconds, in [0, 3600].");
ABSL_FLAG(int64_t, max_stream_bytes, int64_t{64} << 20,
          "StreamFeatures: most feature data bytes per stream (4 per float, 2 per half), in "
          "[1, 2^40]; beyond, RESOURCE_EXHAUSTED at the chunk that crosses it.");
ABSL_FLAG(int64_t, max_stream_chunks, 100000,
          "StreamFeatures: most chunks per stream, in [1, 1000000000]; beyond, "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, stream_timeout_ms, 60000,
          "StreamFeatures: longest a stream stays open before its half-close, in ms, in "
          "[1, 86400000]; then DEADLINE_EXCEEDED.");
ABSL_FLAG(int64_t, stream_idle_timeout_ms, 10000,
          "StreamFeatures: longest a stream goes without a chunk before its half-close, in ms, "
          "in [1, 86400000]; then DEADLINE_EXCEEDED.");

// Exit status of a setting out of its range (a flag, or a batching field of
// a package's config.pbtxt), as for a usage error; 1 is every other failure
// to start (a port in use, a package that cannot load).
constexpr int kBadSetting = 2;

#ifndef MMFUSE_VERSION
#define MMFUSE_VERSION "dev"
#endif

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Serves mmfuse.v1.MultimodalClassifier. Example:\n"
                               "  mmfuse-server --model_dir models/default --port 50051");
  // --help lists every flag (by default absl lists only flags defined in a
  // file named after the program).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view) { return true; };
  usage.contains_helpshort_flags = [](absl::string_view) { return true; };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);

  // Block the stop signals in every thread (threads inherit the mask) and
  // take them synchronously below, so shutdown runs as ordinary code.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  mmfuse::model::LimitMathThreads(1);

  mmfuse::server::ServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.metrics = absl::GetFlag(FLAGS_metrics);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.metrics_host = absl::GetFlag(FLAGS_metrics_host);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  for (const auto& dir : absl::StrSplit(absl::GetFlag(FLAGS_model_dir), ',', absl::SkipEmpty())) {
    options.model_dirs.emplace_back(dir);
  }
  absl::StatusOr<std::string> device = mmfuse::model::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "mmfuse-server: --device: %s\n", std::string(device.status().message()).c_str());
    return kBadSetting;
  }
  options.serving.device = *device;
  options.serving.precision = absl::GetFlag(FLAGS_precision);
  options.serving.cuda_graphs = absl::GetFlag(FLAGS_cuda_graphs);
  options.serving.workers = absl::GetFlag(FLAGS_workers);
  options.serving.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  options.serving.max_queue_delay_us = absl::GetFlag(FLAGS_max_queue_delay_us);
  options.serving.max_queue_size = absl::GetFlag(FLAGS_max_queue_size);
  options.serving.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  options.serving.default_timeout_ms = absl::GetFlag(FLAGS_default_timeout_ms);
  options.serving.max_queue_time_ms = absl::GetFlag(FLAGS_max_queue_time_ms);
  options.serving.length_bucket_ratio = absl::GetFlag(FLAGS_length_bucket_ratio);
  options.serving.allow_timeout_override = absl::GetFlag(FLAGS_allow_timeout_override);
  options.serving.adaptive_load_bias = absl::GetFlag(FLAGS_adaptive_gating);
  options.serving.mixed_branch_queues = absl::GetFlag(FLAGS_mixed_branch_queues);
  options.serving.load_bias.target_wait =
      absl::Microseconds(absl::GetFlag(FLAGS_target_queue_wait_us));
  options.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_bytes);
  options.drain_timeout = absl::Seconds(absl::GetFlag(FLAGS_drain_timeout_s));
  options.max_stream_bytes = absl::GetFlag(FLAGS_max_stream_bytes);
  options.max_stream_chunks = absl::GetFlag(FLAGS_max_stream_chunks);
  options.stream_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_stream_timeout_ms));
  options.stream_idle_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_stream_idle_timeout_ms));
  options.version = MMFUSE_VERSION;

  // Every setting is checked before any model loads (Start checks again).
  if (absl::Status valid = mmfuse::server::ValidateServerOptions(options); !valid.ok()) {
    std::fprintf(stderr, "mmfuse-server: %s\n", std::string(valid.message()).c_str());
    return kBadSetting;
  }
  absl::StatusOr<std::unique_ptr<mmfuse::server::Server>> server =
      mmfuse::server::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "mmfuse-server: %s\n", std::string(server.status().ToString()).c_str());
    return 1;
  }
  // Scripts parse "on HOST:PORT," and "metrics on port N": keep them.
  std::fprintf(stderr,
               "mmfuse-server: serving %s on %s:%d, metrics on port %d (gRPC: %s, device: %s %s)\n",
               options.model_dirs.empty() ? "" : options.model_dirs.front().c_str(),
               options.host.c_str(), (*server)->port(), (*server)->metrics_port(),
               mmfuse::server::DescribeTransport(options.tls).c_str(), device->c_str(),
               options.serving.precision.c_str());

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::fprintf(stderr, "mmfuse-server: %s received, draining\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  std::fprintf(stderr, "mmfuse-server: stopped; requests %s\n",
               (*server)->RequestCounts().c_str());
  return 0;
}
