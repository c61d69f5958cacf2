#include "server/metrics.h"

#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/scrape.h"

namespace mmfuse::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ServerMetricsTest, GatingAndPaddingSeriesForTheModel) {
  CollectingRegistry registry;
  ServerMetrics metrics(&registry, "test");
  metrics.RecordPadding("m", 0.25);
  metrics.RecordPadding("m", 0.0);
  metrics.RecordModalitySkipped("m", "video");
  metrics.RecordModalitySkipped("m", "video");
  metrics.RecordModalitySkipped("m", "text");
  metrics.RecordGflopsSaved("m", 1.5);
  metrics.RecordGflopsSaved("m", 0.5);
  metrics.SetGateLoadBias("m", 0.75);
  const std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("mmfuse_padding_ratio_count{model=\"m\"} 2"));
  EXPECT_THAT(text, HasSubstr("mmfuse_padding_ratio_bucket{model=\"m\",le=\"0\"} 1"));
  EXPECT_THAT(text, HasSubstr("mmfuse_padding_ratio_bucket{model=\"m\",le=\"0.3\"} 2"));
  EXPECT_THAT(text, HasSubstr("mmfuse_padding_ratio_sum{model=\"m\"} 0.25"));
  EXPECT_THAT(text, HasSubstr("mmfuse_modality_skipped_total{modality=\"video\",model=\"m\"} 2"));
  EXPECT_THAT(text, HasSubstr("mmfuse_modality_skipped_total{modality=\"text\",model=\"m\"} 1"));
  EXPECT_THAT(text, HasSubstr("mmfuse_gflops_saved_total{model=\"m\"} 2"));
  EXPECT_THAT(text, HasSubstr("mmfuse_gate_load_bias{model=\"m\"} 0.75"));
}

TEST(ServerMetricsTest, QueueCollectorReadsTheSnapshotAtEveryScrape) {
  CollectingRegistry registry;
  int64_t depth = 3;
  registry.AddCollectable(MakeQueueCollector([&depth] {
    QueueSnapshot snapshot;
    snapshot.model = "m";
    snapshot.capacity = 256;
    snapshot.depth_by_branch = {{"full", depth}, {"text_only", 0}};
    return std::vector<QueueSnapshot>{snapshot};
  }));
  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE mmfuse_queue_depth gauge"));
  EXPECT_THAT(text, HasSubstr("mmfuse_queue_depth{branch=\"full\",model=\"m\"} 3"));
  EXPECT_THAT(text, HasSubstr("mmfuse_queue_depth{branch=\"text_only\",model=\"m\"} 0"));
  EXPECT_THAT(text, HasSubstr("mmfuse_queue_capacity{model=\"m\"} 256"));
  depth = 0;
  text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("mmfuse_queue_depth{branch=\"full\",model=\"m\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("} 3\n")));
}

TEST(ServerMetricsTest, ProcessCollectorReadsProc) {
  CollectingRegistry registry;
  registry.AddCollectable(MakeProcessCollector());
  const std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter"));
  EXPECT_GE(Sample(text, "process_cpu_seconds_total"), 0);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Sample(text, "process_virtual_memory_bytes"), Sample(text, "process_resident_memory_bytes"));
  EXPECT_GE(Sample(text, "process_threads"), 1);
  EXPECT_GE(Sample(text, "process_open_fds"), 3);
  const double start = Sample(text, "process_start_time_seconds");
  const double now = absl::ToUnixSeconds(absl::Now());
  // Started in the past, and not before this test binary could have.
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600);
}

}  // namespace
}  // namespace mmfuse::server
