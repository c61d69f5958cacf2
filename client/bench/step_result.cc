#include "client/bench/step_result.h"

namespace mmfuse::bench {
namespace {

double Mean(int64_t sum, int64_t count) {
  return count == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(count);
}

}  // namespace

const char* LoadModeName(LoadMode mode) { return mode == LoadMode::kOpenLoop ? "open" : "closed"; }

const char* ArrivalName(Arrival arrival) {
  return arrival == Arrival::kPoisson ? "poisson" : "constant";
}

const char* RpcKindName(RpcKind rpc) { return rpc == RpcKind::kStream ? "stream" : "unary"; }

int64_t StepResult::error_count() const {
  int64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

double StepResult::throughput_rps() const {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(ok) / seconds : 0.0;
}

double StepResult::mean_batch_size() const { return Mean(batch_size_sum, ok); }
double StepResult::mean_queue_us() const { return Mean(queue_us_sum, ok); }
double StepResult::mean_compute_us() const { return Mean(compute_us_sum, ok); }
double StepResult::mean_server_total_us() const { return Mean(server_total_us_sum, ok); }

}  // namespace mmfuse::bench
