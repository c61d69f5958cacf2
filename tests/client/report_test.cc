#include "client/bench/report.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmfuse::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<StepResult> TwoSteps() {
  StepResult closed;
  closed.load.concurrency = 4;
  closed.elapsed = absl::Seconds(2);
  closed.sent = 12;
  closed.ok = 10;
  closed.errors["RESOURCE_EXHAUSTED"] = 2;
  for (int us = 1000; us <= 10000; us += 1000) closed.latency_us.Record(us);
  closed.batch_size_sum = 30;
  closed.queue_us_sum = 1000;
  for (int us = 100; us <= 1000; us += 100) closed.server_total_us.Record(us);
  closed.branches["full"] = 8;
  closed.branches["text\"only"] = 2;

  StepResult open;
  open.load.mode = LoadMode::kOpenLoop;
  open.load.rate_rps = 100;
  open.load.arrival = Arrival::kPoisson;
  open.load.rpc = RpcKind::kStream;
  open.elapsed = absl::Seconds(1);
  open.sent = 5;
  open.ok = 5;
  open.unsent = 1;
  open.latency_us.Record(250);
  return {closed, open};
}

TEST(BenchReportTest, JsonHasOneObjectPerStepWithTheDocumentedFields) {
  const std::string json = FormatJson(TwoSteps());
  EXPECT_EQ(json.front(), '[');
  for (const char* field :
       {"\"throughput_rps\":5", "\"p50_us\":", "\"p90_us\":", "\"p99_us\":", "\"p999_us\":",
        "\"max_us\":10000", "\"errors\":{\"RESOURCE_EXHAUSTED\":2}", "\"sent\":12", "\"ok\":10",
        "\"mean_batch_size\":3", "\"branches\":{\"full\":8,\"text\\\"only\":2}",
        "\"concurrency\":4", "\"rate\":100", "\"arrival\":\"poisson\"", "\"rpc\":\"stream\"",
        "\"unsent\":1", "\"mean_queue_us\":100", "\"p99_server_total_us\":1000"}) {
    EXPECT_THAT(json, HasSubstr(field));
  }
  // The closed step has no rate, the open one no concurrency.
  const std::vector<std::string> objects = absl::StrSplit(json, "},\n {");
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_THAT(objects[0], Not(HasSubstr("\"rate\"")));
  EXPECT_THAT(objects[1], Not(HasSubstr("\"concurrency\"")));
  EXPECT_EQ(FormatJson({}), "[]\n");
}

TEST(BenchReportTest, CsvHasAHeaderAndOneRowPerStep) {
  const std::string csv = FormatCsv(TwoSteps());
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  const size_t columns = std::count(lines[0].begin(), lines[0].end(), ',');
  EXPECT_THAT(lines[0], HasSubstr("throughput_rps,mean_us,p50_us,p90_us,p99_us,p999_us,max_us"));
  EXPECT_THAT(lines[1], HasSubstr("1,closed,4,,,unary,2,12,10,2,0,"));
  EXPECT_THAT(lines[1], HasSubstr("RESOURCE_EXHAUSTED:2"));
  EXPECT_THAT(lines[1], HasSubstr("\"full:8;text\"\"only:2\""));  // Quoted CSV field.
  EXPECT_EQ(std::count(lines[2].begin(), lines[2].end(), ','), columns);
}

TEST(BenchReportTest, TableShowsLoadsLatenciesAndNotes) {
  const std::string table = FormatTable(TwoSteps());
  EXPECT_THAT(table, HasSubstr("c=4"));
  EXPECT_THAT(table, HasSubstr("r=100/s poisson"));
  EXPECT_THAT(table, HasSubstr("10.00ms"));  // Max of step 1.
  EXPECT_THAT(table, HasSubstr("full 80%"));
  EXPECT_THAT(table, HasSubstr("step 1 errors: RESOURCE_EXHAUSTED=2"));
  EXPECT_THAT(table, HasSubstr("step 2: 1 requests not sent"));
}

TEST(BenchReportTest, FormatsMicrosecondsInReadableUnits) {
  EXPECT_EQ(FormatMicros(850), "850us");
  EXPECT_EQ(FormatMicros(1234), "1.23ms");
  EXPECT_EQ(FormatMicros(2500000), "2.50s");
}

TEST(BenchReportTest, ProgressLineShowsRateAndPercentiles) {
  Progress progress;
  progress.elapsed = absl::Seconds(3);
  progress.sent = 7;
  progress.ok = 6;
  progress.errors = 1;
  progress.interval_rps = 12.5;
  progress.interval_latency_us.Record(1500);
  LoadSpec load;
  load.concurrency = 2;
  const std::string line = FormatProgressLine(1, 3, load, progress);
  EXPECT_THAT(line, HasSubstr("[1/3 c=2]"));
  EXPECT_THAT(line, HasSubstr("12.5 ok/s"));
  EXPECT_THAT(line, HasSubstr("p50 1.50ms"));
  EXPECT_THAT(line, HasSubstr("err 1"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace mmfuse::bench
