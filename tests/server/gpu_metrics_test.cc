#include "server/gpu_metrics.h"

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "tests/server/scrape.h"

namespace mmfuse::server {
namespace {

using ::testing::HasSubstr;

TEST(GpuMetricsTest, ReadsEveryDeviceThroughNvml) {
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(FAKE_NVML_PATH);
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  const std::vector<GpuReading> readings = (*nvml)->Read();
  ASSERT_EQ(readings.size(), 2u);
  EXPECT_EQ(readings[0].index, 0);
  EXPECT_EQ(readings[0].name, "Fake H200");
  EXPECT_EQ(readings[0].memory_used_bytes, 3ull << 30);
  EXPECT_EQ(readings[0].memory_total_bytes, 150ull << 30);
  EXPECT_DOUBLE_EQ(readings[0].utilization, 0.37);
  EXPECT_EQ(readings[1].index, 1);
  EXPECT_EQ(readings[1].memory_used_bytes, 0u);
}

TEST(GpuMetricsTest, CollectorExposesMemoryAndUtilisationPerGpu) {
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(FAKE_NVML_PATH);
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  CollectingRegistry registry;
  registry.AddCollectable(MakeGpuCollector(std::move(*nvml)));
  const std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE mmfuse_gpu_memory_used_bytes gauge"));
  EXPECT_THAT(text, HasSubstr("mmfuse_gpu_memory_used_bytes{gpu=\"0\",name=\"Fake H200\"} 3221225472"));
  EXPECT_THAT(text, HasSubstr("mmfuse_gpu_memory_total_bytes{gpu=\"1\",name=\"Fake H200\"} 161061273600"));
  EXPECT_THAT(text, HasSubstr("mmfuse_gpu_utilization_ratio{gpu=\"0\",name=\"Fake H200\"} 0.37"));
  EXPECT_THAT(text, HasSubstr("mmfuse_gpu_utilization_ratio{gpu=\"1\",name=\"Fake H200\"} 0"));
}

TEST(GpuMetricsTest, MissingLibraryIsNotFound) {
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load("libmmfuse-no-such-nvml.so.1");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(nvml.status().message(), HasSubstr("libmmfuse-no-such-nvml.so.1"));
}

TEST(GpuMetricsTest, LibraryWithoutNvmlEntryPointsIsRefused) {
  // Any shared library that is not NVML: the C library.
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load("libc.so.6");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(nvml.status().message(), HasSubstr("lacks an NVML entry point"));
}

TEST(GpuMetricsTest, DriverThatDoesNotInitialiseIsUnavailable) {
  setenv("FAKE_NVML_INIT_FAILS", "1", 1);
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(FAKE_NVML_PATH);
  unsetenv("FAKE_NVML_INIT_FAILS");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(nvml.status().message(), HasSubstr("NVML error 9"));
}

}  // namespace
}  // namespace mmfuse::server
