// mmfuse-bench: load tester for mmfuse.v1.MultimodalClassifier (or, with
// --protocol kserve, the same server's Open Inference Protocol), closed loop
// (--concurrency sweeps) or open loop (--rate sweeps, constant or Poisson
// arrivals, latency from each request's intended send time). See
// docs/BENCH_TOOL.md.
//
//   mmfuse-bench --server 127.0.0.1:50051 --concurrency 1,2,4,8 --duration 10s
//   mmfuse-bench --server a:50051,b:50051 --rate 100,200 --arrival poisson --json
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/bench/channel_pool.h"
#include "client/bench/report.h"
#include "client/bench/runner.h"
#include "client/bench/spec_parser.h"
#include "client/bench/workload.h"
#include "mmfuse/v1/classifier.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051",
          "Server address(es), comma-separated; requests go round robin over them.");
ABSL_FLAG(int, channels, 1, "gRPC channels (connections) per server address.");
ABSL_FLAG(std::string, rpc, "unary",
          "unary (Classify) or stream (ClassifyStream: one stream per channel, requests "
          "matched by request_id).");
ABSL_FLAG(std::string, protocol, "mmfuse",
          "mmfuse (mmfuse.v1: Classify, ClassifyStream) or kserve (the Open Inference "
          "Protocol: ModelInfer, ModelStreamInfer, same requests; docs/API.md).");
ABSL_FLAG(std::string, concurrency, "",
          "Closed loop: requests in flight, a comma-separated sweep (e.g. 1,2,4,8). Default 1 "
          "unless --rate is given.");
ABSL_FLAG(std::string, rate, "",
          "Open loop: requests per second, a comma-separated sweep (e.g. 100,200).");
ABSL_FLAG(std::string, arrival, "constant", "Open loop: constant or poisson inter-arrival gaps.");
ABSL_FLAG(int, max_outstanding, 1000,
          "Open loop: most requests in flight; a request due while this many are in flight is "
          "not sent and counts as unsent.");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(),
          "Measured time per step (after --warmup), e.g. 10s. 0 = 10s unless --requests is "
          "given.");
ABSL_FLAG(int64_t, requests, 0,
          "Measured requests per step (open loop: scheduled); 0 = no count bound. With "
          "--duration, whichever comes first.");
ABSL_FLAG(absl::Duration, warmup, absl::ZeroDuration(),
          "Load sent before each step's measurement starts (not counted), e.g. 2s.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each request.");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5),
          "Longest wait for each connection at start-up; an unreachable server fails the run.");
ABSL_FLAG(std::string, data, "",
          "Dataset file (length-delimited Example protos) to replay; empty = generated samples.");
ABSL_FLAG(int, samples, 0,
          "Distinct requests pre-built and cycled: generated (0 = 512) or the first N of --data "
          "(0 = all).");
ABSL_FLAG(uint64_t, seed, 1,
          "Seeds the generator (the model's training seed gives meaningful classes), the mix "
          "assignment and Poisson arrivals.");
ABSL_FLAG(std::string, mix, "",
          "Modality mix, e.g. text=0.3,all=0.7: keys are modality names joined with '+', or "
          "all; other modalities are dropped. Empty = all modalities.");
ABSL_FLAG(std::string, budget_mix, "",
          "Budget mix, e.g. fast=0.5,accurate=0.5 (accurate, balanced, fast). Empty = unset.");
ABSL_FLAG(int, top_k, 1, "ClassifyRequest.top_k.");
ABSL_FLAG(std::string, model, "", "Model name; empty = the server's default model.");
ABSL_FLAG(int, priority, 0, "ClassifyRequest.priority; 0 = the model's default.");
ABSL_FLAG(bool, json, false, "Print the results as a JSON array (one object per step).");
ABSL_FLAG(bool, csv, false, "Print the results as CSV (one row per step).");
ABSL_FLAG(bool, progress, true, "Live progress line on stderr (only when stderr is a TTY).");
ABSL_FLAG(bool, tls, false, "Connect over TLS (implied by any --tls_*_file).");
ABSL_FLAG(std::string, tls_ca_file, "",
          "PEM CA bundle verifying the server certificate; empty = system roots.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM client certificate for mutual TLS (with --tls_key_file).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the server certificate must carry; empty = the host of each --server address.");

namespace mmfuse::bench {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "mmfuse-bench: %s\n", std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<std::vector<LoadSpec>> ParseLoads() {
  const std::string concurrency = absl::GetFlag(FLAGS_concurrency);
  const std::string rate = absl::GetFlag(FLAGS_rate);
  if (!concurrency.empty() && !rate.empty()) {
    return absl::InvalidArgumentError(
        "--concurrency (closed loop) and --rate (open loop) are exclusive");
  }
  absl::StatusOr<RpcKind> rpc = ParseRpcKind(absl::GetFlag(FLAGS_rpc));
  if (!rpc.ok()) return rpc.status();
  std::vector<LoadSpec> loads;
  if (!rate.empty()) {
    absl::StatusOr<Arrival> arrival = ParseArrival(absl::GetFlag(FLAGS_arrival));
    if (!arrival.ok()) return arrival.status();
    absl::StatusOr<std::vector<double>> rates = ParsePositiveList("--rate", rate);
    if (!rates.ok()) return rates.status();
    for (double r : *rates) {
      LoadSpec load;
      load.mode = LoadMode::kOpenLoop;
      load.rate_rps = r;
      load.arrival = *arrival;
      load.rpc = *rpc;
      loads.push_back(load);
    }
    return loads;
  }
  absl::StatusOr<std::vector<int>> levels =
      ParseIntList("--concurrency", concurrency.empty() ? "1" : concurrency, 1);
  if (!levels.ok()) return levels.status();
  for (int c : *levels) {
    LoadSpec load;
    load.concurrency = c;
    load.rpc = *rpc;
    loads.push_back(load);
  }
  return loads;
}

absl::StatusOr<v1::ModelInfo> FetchModelInfo(const ChannelPool& pool) {
  auto stub = v1::MultimodalClassifier::NewStub(pool.channels()[0]);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  v1::GetModelInfoRequest request;
  request.set_model(absl::GetFlag(FLAGS_model));
  v1::ModelInfo info;
  const grpc::Status status = stub->GetModelInfo(&context, request, &info);
  if (!status.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("GetModelInfo on ", pool.targets()[0], " failed: ", status.error_message()));
  }
  return info;
}

// Runs one step, refreshing the progress line on stderr every half second
// when `show_progress`.
StepResult RunStep(Runner* runner, int step, int steps, const LoadSpec& load, bool show_progress) {
  if (!show_progress) return runner->Run();
  StepResult result;
  absl::Notification done;
  std::thread worker([&] {
    result = runner->Run();
    done.Notify();
  });
  while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
    const std::string line = FormatProgressLine(step, steps, load, runner->GetProgress());
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
    std::fflush(stderr);
  }
  worker.join();
  std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
  return result;
}

int Main() {
  if (absl::GetFlag(FLAGS_json) && absl::GetFlag(FLAGS_csv)) {
    return Fail(absl::InvalidArgumentError("--json and --csv are exclusive"));
  }
  absl::StatusOr<std::vector<LoadSpec>> loads = ParseLoads();
  if (!loads.ok()) return Fail(loads.status());
  absl::StatusOr<std::vector<std::string>> servers = ParseServerList(absl::GetFlag(FLAGS_server));
  if (!servers.ok()) return Fail(servers.status());

  RunnerOptions runner_options;
  runner_options.max_requests = absl::GetFlag(FLAGS_requests);
  runner_options.duration = absl::GetFlag(FLAGS_duration);
  if (runner_options.duration == absl::ZeroDuration()) {
    runner_options.duration =
        runner_options.max_requests > 0 ? absl::InfiniteDuration() : absl::Seconds(10);
  }
  if (runner_options.duration < absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--duration must be >= 0"));
  }
  if (runner_options.max_requests < 0) {
    return Fail(absl::InvalidArgumentError("--requests must be >= 0"));
  }
  runner_options.warmup = absl::GetFlag(FLAGS_warmup);
  runner_options.timeout = absl::GetFlag(FLAGS_timeout);
  runner_options.max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  runner_options.seed = absl::GetFlag(FLAGS_seed);
  if (const std::string protocol = absl::GetFlag(FLAGS_protocol); protocol == "kserve") {
    runner_options.protocol = Protocol::kKserve;
  } else if (protocol != "mmfuse") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--protocol=", protocol, " is not a protocol; use mmfuse or kserve")));
  }

  ChannelPoolOptions pool_options;
  pool_options.targets = *servers;
  pool_options.channels_per_target = absl::GetFlag(FLAGS_channels);
  pool_options.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  pool_options.security.tls = absl::GetFlag(FLAGS_tls);
  pool_options.security.ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  pool_options.security.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  pool_options.security.key_file = absl::GetFlag(FLAGS_tls_key_file);
  pool_options.security.server_name = absl::GetFlag(FLAGS_tls_server_name);
  absl::StatusOr<std::unique_ptr<ChannelPool>> pool = ChannelPool::Connect(pool_options);
  if (!pool.ok()) return Fail(pool.status());
  absl::StatusOr<v1::ModelInfo> info = FetchModelInfo(**pool);
  if (!info.ok()) return Fail(info.status());

  WorkloadOptions workload_options;
  workload_options.data_path = absl::GetFlag(FLAGS_data);
  workload_options.samples = absl::GetFlag(FLAGS_samples);
  workload_options.seed = absl::GetFlag(FLAGS_seed);
  workload_options.top_k = absl::GetFlag(FLAGS_top_k);
  workload_options.model = absl::GetFlag(FLAGS_model);
  workload_options.priority = absl::GetFlag(FLAGS_priority);
  if (const std::string mix = absl::GetFlag(FLAGS_mix); !mix.empty()) {
    std::vector<std::string> modalities;
    for (const v1::ModalityInfo& m : info->modalities()) modalities.push_back(m.name());
    absl::StatusOr<std::vector<ModalityMixEntry>> parsed = ParseModalityMix(mix, modalities);
    if (!parsed.ok()) return Fail(parsed.status());
    workload_options.modality_mix = *parsed;
  }
  if (const std::string mix = absl::GetFlag(FLAGS_budget_mix); !mix.empty()) {
    absl::StatusOr<std::vector<BudgetMixEntry>> parsed = ParseBudgetMix(mix);
    if (!parsed.ok()) return Fail(parsed.status());
    workload_options.budget_mix = *parsed;
  }
  absl::StatusOr<Workload> workload = BuildWorkload(workload_options, *info);
  if (!workload.ok()) return Fail(workload.status());

  std::fprintf(stderr,
               "mmfuse-bench: model %s (%d modalities), %zu distinct requests, %d server(s) x "
               "%d channel(s), %s %s RPCs, %zu step(s)\n",
               info->name().c_str(), info->modalities_size(), workload->requests.size(),
               static_cast<int>(servers->size()), pool_options.channels_per_target,
               absl::GetFlag(FLAGS_protocol).c_str(), RpcKindName(loads->front().rpc),
               loads->size());
  const bool show_progress = absl::GetFlag(FLAGS_progress) && isatty(STDERR_FILENO) != 0;

  std::vector<StepResult> results;
  std::string aborted;
  for (size_t i = 0; i < loads->size(); ++i) {
    RunnerOptions options = runner_options;
    options.load = (*loads)[i];
    options.request_id_prefix = absl::StrCat("bench-", i + 1, "-");
    absl::StatusOr<std::unique_ptr<Runner>> runner =
        Runner::Create(options, pool->get(), *workload);
    if (!runner.ok()) return Fail(runner.status());
    results.push_back(RunStep(runner->get(), static_cast<int>(i) + 1,
                              static_cast<int>(loads->size()), options.load, show_progress));
    if (!results.back().aborted.empty()) {
      aborted = absl::StrCat("step ", i + 1, " (", LoadLabel(options.load),
                             ") aborted: ", results.back().aborted);
      break;
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << FormatJson(results);
  } else if (absl::GetFlag(FLAGS_csv)) {
    std::cout << FormatCsv(results);
  } else {
    std::cout << FormatTable(results);
  }
  std::cout.flush();
  if (!aborted.empty()) return Fail(absl::UnavailableError(aborted));
  return 0;
}

}  // namespace
}  // namespace mmfuse::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load tester for mmfuse servers. Closed loop: --concurrency 1,2,4; open loop: --rate "
      "100,200 [--arrival poisson]. See docs/BENCH_TOOL.md.");
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "mmfuse-bench: unexpected argument \"%s\"\n", positional[1]);
    return 1;
  }
  return mmfuse::bench::Main();
}
