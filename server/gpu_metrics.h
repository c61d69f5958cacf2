// GPU metrics from NVML, when the machine has it.
//
// NVML (libnvidia-ml.so.1) ships with NVIDIA's driver, not with CUDA or
// LibTorch, so it is loaded at run time: the same binary runs on machines
// without a GPU (no GPU series then) and needs no NVIDIA package to build.
// The collector reads every device at scrape time:
//   mmfuse_gpu_memory_used_bytes{gpu, name}
//   mmfuse_gpu_memory_total_bytes{gpu, name}
//   mmfuse_gpu_utilization_ratio{gpu, name}  share of the driver's last
//       sample period (1/6 s to 1 s) in which a kernel ran, 0..1
#ifndef MMFUSE_SERVER_GPU_METRICS_H_
#define MMFUSE_SERVER_GPU_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

namespace mmfuse::server {

inline constexpr char kNvmlLibrary[] = "libnvidia-ml.so.1";

struct GpuReading {
  int index = 0;
  std::string name;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  double utilization = 0;  // 0..1.
};

// An initialised NVML; shut down and unloaded when destroyed.
class Nvml {
 public:
  // NOT_FOUND when the library is absent (no NVIDIA driver), UNAVAILABLE
  // when it does not initialise (e.g. no device visible).
  static absl::StatusOr<std::unique_ptr<Nvml>> Load(const std::string& library = kNvmlLibrary);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // One reading per device; a device whose query fails is left out.
  std::vector<GpuReading> Read() const;

 private:
  struct Api;
  Nvml(void* handle, std::unique_ptr<Api> api);
  void* handle_;
  std::unique_ptr<Api> api_;
};

std::shared_ptr<prometheus::Collectable> MakeGpuCollector(std::shared_ptr<const Nvml> nvml);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_GPU_METRICS_H_
