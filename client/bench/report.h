// Report: renders bench results. FormatTable for people (stdout), FormatJson
// and FormatCsv for scripts, FormatProgressLine for the live stderr line.
// Latencies are in microseconds in JSON/CSV; the table picks us/ms/s.
//
// JSON: an array with one object per step: step (1-based), mode ("closed" |
// "open"), concurrency (closed) or rate and arrival (open), rpc, elapsed_s,
// sent, ok, errors {code: count}, unsent, late, unmatched, throughput_rps,
// mean_us, p50_us, p90_us, p99_us, p999_us, max_us, mean_batch_size,
// branches {branch: count}, mean_queue_us, mean_compute_us,
// mean_server_total_us, p99_server_total_us, aborted ("" unless the step
// stopped early).
// CSV: a header, then one row per step with the same fields but
// p99_server_total_us; errors is the total, error_codes and branches are
// "name:count" joined with ';'.
//
// Thread-safety: pure functions.
#ifndef MMFUSE_CLIENT_BENCH_REPORT_H_
#define MMFUSE_CLIENT_BENCH_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "client/bench/step_result.h"

namespace mmfuse::bench {

// "c=4" (closed loop) or "r=100/s" / "r=100/s poisson" (open loop).
std::string LoadLabel(const LoadSpec& load);

// 850 -> "850us", 1234 -> "1.23ms", 2500000 -> "2.50s".
std::string FormatMicros(double us);

std::string FormatTable(const std::vector<StepResult>& steps);
std::string FormatJson(const std::vector<StepResult>& steps);
std::string FormatCsv(const std::vector<StepResult>& steps);

// One line (no newline) for step `step` of `steps` (1-based).
std::string FormatProgressLine(int step, int steps, const LoadSpec& load, const Progress& progress);

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_REPORT_H_
