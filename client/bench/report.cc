#include "client/bench/report.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace mmfuse::bench {
namespace {

// Quantiles reported, with their JSON/CSV names and table headers.
struct Quantile {
  double q;
  const char* key;
  const char* header;
};
constexpr Quantile kQuantiles[] = {{0.50, "p50_us", "p50"},
                                   {0.90, "p90_us", "p90"},
                                   {0.99, "p99_us", "p99"},
                                   {0.999, "p999_us", "p99.9"}};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// A finite number for JSON (which has no NaN/Inf).
std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "0";
  return absl::StrFormat("%.6g", v);
}

std::string JsonCounts(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts)
    parts.push_back(absl::StrCat(JsonString(name), ":", count));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string JoinCounts(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) parts.push_back(absl::StrCat(name, ":", count));
  return absl::StrJoin(parts, ";");
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Branch shares of the successful responses: "full 80% text 20%".
std::string BranchShares(const StepResult& step) {
  std::vector<std::string> parts;
  int64_t total = 0;
  for (const auto& [name, count] : step.branches) total += count;
  for (const auto& [name, count] : step.branches) {
    parts.push_back(absl::StrFormat("%s %.0f%%", name.empty() ? "?" : name,
                                    100.0 * static_cast<double>(count) / total));
  }
  return absl::StrJoin(parts, " ");
}

}  // namespace

std::string LoadLabel(const LoadSpec& load) {
  if (load.mode == LoadMode::kClosedLoop) return absl::StrCat("c=", load.concurrency);
  return absl::StrCat("r=", absl::StrFormat("%g", load.rate_rps), "/s",
                      load.arrival == Arrival::kPoisson ? " poisson" : "");
}

std::string FormatMicros(double us) {
  if (us < 1000) return absl::StrFormat("%.0fus", us);
  if (us < 1e6) return absl::StrFormat("%.2fms", us / 1e3);
  return absl::StrFormat("%.2fs", us / 1e6);
}

std::string FormatTable(const std::vector<StepResult>& steps) {
  std::string out = absl::StrFormat(
      "%-4s %-16s %-6s %8s %8s %6s %6s %9s %8s %8s %8s %8s %8s %6s %8s %8s  %s\n", "step", "load",
      "rpc", "sent", "ok", "errors", "unsent", "ok/s", kQuantiles[0].header, kQuantiles[1].header,
      kQuantiles[2].header, kQuantiles[3].header, "max", "batch", "queue", "compute", "branches");
  std::string notes;
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepResult& s = steps[i];
    const LatencyHistogram& h = s.latency_us;
    auto q = [&](int k) { return FormatMicros(h.ValueAtQuantile(kQuantiles[k].q)); };
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "%-4d %-16s %-6s %8d %8d %6d %6d %9.1f %8s %8s %8s %8s %8s %6.2f %8s %8s  %s\n", i + 1,
            LoadLabel(s.load), RpcKindName(s.load.rpc), s.sent, s.ok, s.error_count(), s.unsent,
            s.throughput_rps(), q(0), q(1), q(2), q(3), FormatMicros(h.max()), s.mean_batch_size(),
            FormatMicros(s.mean_queue_us()), FormatMicros(s.mean_compute_us()), BranchShares(s)));
    if (!s.errors.empty()) {
      std::vector<std::string> parts;
      for (const auto& [code, count] : s.errors) parts.push_back(absl::StrCat(code, "=", count));
      absl::StrAppend(&notes, "step ", i + 1, " errors: ", absl::StrJoin(parts, " "), "\n");
    }
    if (s.late > 0) {
      absl::StrAppend(&notes, "step ", i + 1, ": ", s.late,
                      " requests sent late (client behind schedule)\n");
    }
    if (s.unsent > 0) {
      absl::StrAppend(&notes, "step ", i + 1, ": ", s.unsent,
                      " requests not sent (max_outstanding in flight): the server did not keep "
                      "up with this rate\n");
    }
    if (s.unmatched > 0) {
      absl::StrAppend(&notes, "step ", i + 1, ": ", s.unmatched,
                      " stream responses matched no request\n");
    }
    if (!s.aborted.empty()) absl::StrAppend(&notes, "step ", i + 1, " aborted: ", s.aborted, "\n");
  }
  return out + notes;
}

std::string FormatJson(const std::vector<StepResult>& steps) {
  std::vector<std::string> objects;
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepResult& s = steps[i];
    std::vector<std::string> f;
    f.push_back(absl::StrCat("\"step\":", i + 1));
    f.push_back(absl::StrCat("\"mode\":", JsonString(LoadModeName(s.load.mode))));
    if (s.load.mode == LoadMode::kClosedLoop) {
      f.push_back(absl::StrCat("\"concurrency\":", s.load.concurrency));
    } else {
      f.push_back(absl::StrCat("\"rate\":", JsonNumber(s.load.rate_rps)));
      f.push_back(absl::StrCat("\"arrival\":", JsonString(ArrivalName(s.load.arrival))));
    }
    f.push_back(absl::StrCat("\"rpc\":", JsonString(RpcKindName(s.load.rpc))));
    f.push_back(absl::StrCat("\"elapsed_s\":", JsonNumber(absl::ToDoubleSeconds(s.elapsed))));
    f.push_back(absl::StrCat("\"sent\":", s.sent));
    f.push_back(absl::StrCat("\"ok\":", s.ok));
    f.push_back(absl::StrCat("\"errors\":", JsonCounts(s.errors)));
    f.push_back(absl::StrCat("\"unsent\":", s.unsent));
    f.push_back(absl::StrCat("\"late\":", s.late));
    f.push_back(absl::StrCat("\"unmatched\":", s.unmatched));
    f.push_back(absl::StrCat("\"throughput_rps\":", JsonNumber(s.throughput_rps())));
    f.push_back(absl::StrCat("\"mean_us\":", JsonNumber(s.latency_us.mean())));
    for (const Quantile& q : kQuantiles) {
      f.push_back(absl::StrCat("\"", q.key, "\":", s.latency_us.ValueAtQuantile(q.q)));
    }
    f.push_back(absl::StrCat("\"max_us\":", s.latency_us.max()));
    f.push_back(absl::StrCat("\"mean_batch_size\":", JsonNumber(s.mean_batch_size())));
    f.push_back(absl::StrCat("\"branches\":", JsonCounts(s.branches)));
    f.push_back(absl::StrCat("\"mean_queue_us\":", JsonNumber(s.mean_queue_us())));
    f.push_back(absl::StrCat("\"mean_compute_us\":", JsonNumber(s.mean_compute_us())));
    f.push_back(absl::StrCat("\"mean_server_total_us\":", JsonNumber(s.mean_server_total_us())));
    f.push_back(absl::StrCat("\"p99_server_total_us\":", s.server_total_us.ValueAtQuantile(0.99)));
    f.push_back(absl::StrCat("\"aborted\":", JsonString(s.aborted)));
    objects.push_back(absl::StrCat("{", absl::StrJoin(f, ","), "}"));
  }
  return absl::StrCat("[", absl::StrJoin(objects, ",\n "), "]\n");
}

std::string FormatCsv(const std::vector<StepResult>& steps) {
  std::string out =
      "step,mode,concurrency,rate,arrival,rpc,elapsed_s,sent,ok,errors,unsent,late,unmatched,"
      "throughput_rps,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,mean_batch_size,"
      "mean_queue_us,mean_compute_us,mean_server_total_us,error_codes,branches,aborted\n";
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepResult& s = steps[i];
    const bool closed = s.load.mode == LoadMode::kClosedLoop;
    std::vector<std::string> f = {absl::StrCat(i + 1),
                                  LoadModeName(s.load.mode),
                                  closed ? absl::StrCat(s.load.concurrency) : "",
                                  closed ? "" : JsonNumber(s.load.rate_rps),
                                  closed ? "" : ArrivalName(s.load.arrival),
                                  RpcKindName(s.load.rpc),
                                  JsonNumber(absl::ToDoubleSeconds(s.elapsed)),
                                  absl::StrCat(s.sent),
                                  absl::StrCat(s.ok),
                                  absl::StrCat(s.error_count()),
                                  absl::StrCat(s.unsent),
                                  absl::StrCat(s.late),
                                  absl::StrCat(s.unmatched),
                                  JsonNumber(s.throughput_rps()),
                                  JsonNumber(s.latency_us.mean())};
    for (const Quantile& q : kQuantiles)
      f.push_back(absl::StrCat(s.latency_us.ValueAtQuantile(q.q)));
    f.push_back(absl::StrCat(s.latency_us.max()));
    f.push_back(JsonNumber(s.mean_batch_size()));
    f.push_back(JsonNumber(s.mean_queue_us()));
    f.push_back(JsonNumber(s.mean_compute_us()));
    f.push_back(JsonNumber(s.mean_server_total_us()));
    f.push_back(CsvField(JoinCounts(s.errors)));
    f.push_back(CsvField(JoinCounts(s.branches)));
    f.push_back(CsvField(s.aborted));
    absl::StrAppend(&out, absl::StrJoin(f, ","), "\n");
  }
  return out;
}

std::string FormatProgressLine(int step, int steps, const LoadSpec& load,
                               const Progress& progress) {
  const LatencyHistogram& h = progress.interval_latency_us;
  return absl::StrFormat(
      "[%d/%d %s] %5.1fs%s  sent %d  ok %d  err %d%s  |  %.1f ok/s  p50 %s  p99 %s  |  "
      "in flight %d",
      step, steps, LoadLabel(load), absl::ToDoubleSeconds(progress.elapsed),
      progress.warming_up ? " (warm-up)" : "", progress.sent, progress.ok, progress.errors,
      progress.unsent > 0 ? absl::StrCat("  unsent ", progress.unsent) : "", progress.interval_rps,
      h.count() > 0 ? FormatMicros(h.ValueAtQuantile(0.5)) : "-",
      h.count() > 0 ? FormatMicros(h.ValueAtQuantile(0.99)) : "-", progress.outstanding);
}

}  // namespace mmfuse::bench
