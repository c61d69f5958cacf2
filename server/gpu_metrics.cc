#include "server/gpu_metrics.h"

#include <dlfcn.h>

#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"

namespace mmfuse::server {
namespace {

// NVML's C ABI, as far as it is used here (nvml.h; stable since the v2
// entry points of CUDA 5). Return code 0 is NVML_SUCCESS.
using NvmlReturn = int;
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total;  // NOLINT(runtime/int): NVML's type.
  unsigned long long free;   // NOLINT(runtime/int)
  unsigned long long used;   // NOLINT(runtime/int)
};
struct NvmlUtilization {
  unsigned int gpu;     // Percent of the sample period a kernel ran.
  unsigned int memory;  // Percent of it device memory was read or written.
};
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr unsigned int kNameLength = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE.

}  // namespace

struct Nvml::Api {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  NvmlReturn (*device_count)(unsigned int*);
  NvmlReturn (*device_by_index)(unsigned int, NvmlDevice*);
  NvmlReturn (*device_name)(NvmlDevice, char*, unsigned int);
  NvmlReturn (*memory_info)(NvmlDevice, NvmlMemory*);
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*);
};

absl::StatusOr<std::unique_ptr<Nvml>> Nvml::Load(const std::string& library) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot load ", library, ": ", dlerror()));
  }
  auto api = std::make_unique<Api>();
  bool complete = true;
  auto bind = [&](auto& fn, const char* symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, symbol));
    complete = complete && fn != nullptr;
  };
  bind(api->init, "nvmlInit_v2");
  bind(api->shutdown, "nvmlShutdown");
  bind(api->device_count, "nvmlDeviceGetCount_v2");
  bind(api->device_by_index, "nvmlDeviceGetHandleByIndex_v2");
  bind(api->device_name, "nvmlDeviceGetName");
  bind(api->memory_info, "nvmlDeviceGetMemoryInfo");
  bind(api->utilization, "nvmlDeviceGetUtilizationRates");
  if (!complete) {
    dlclose(handle);
    return absl::NotFoundError(absl::StrCat(library, " lacks an NVML entry point"));
  }
  if (const NvmlReturn r = api->init(); r != kNvmlSuccess) {
    dlclose(handle);
    return absl::UnavailableError(absl::StrCat("nvmlInit_v2 failed with NVML error ", r));
  }
  return std::unique_ptr<Nvml>(new Nvml(handle, std::move(api)));
}

Nvml::Nvml(void* handle, std::unique_ptr<Api> api) : handle_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(handle_);
}

std::vector<GpuReading> Nvml::Read() const {
  std::vector<GpuReading> readings;
  unsigned int count = 0;
  if (api_->device_count(&count) != kNvmlSuccess) return readings;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    NvmlMemory memory{};
    NvmlUtilization utilization{};
    char name[kNameLength] = {};
    if (api_->device_by_index(i, &device) != kNvmlSuccess ||
        api_->memory_info(device, &memory) != kNvmlSuccess ||
        api_->utilization(device, &utilization) != kNvmlSuccess) {
      continue;
    }
    GpuReading reading;
    reading.index = static_cast<int>(i);
    if (api_->device_name(device, name, kNameLength) == kNvmlSuccess) {
      name[kNameLength - 1] = '\0';
      reading.name = name;
    }
    reading.memory_used_bytes = memory.used;
    reading.memory_total_bytes = memory.total;
    reading.utilization = utilization.gpu / 100.0;
    readings.push_back(std::move(reading));
  }
  return readings;
}

namespace {

class GpuCollector : public prometheus::Collectable {
 public:
  explicit GpuCollector(std::shared_ptr<const Nvml> nvml) : nvml_(std::move(nvml)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const std::vector<GpuReading> readings = nvml_->Read();
    if (readings.empty()) return {};
    prometheus::MetricFamily used = Gauge("mmfuse_gpu_memory_used_bytes",
                                          "Device memory in use, all processes (NVML).");
    prometheus::MetricFamily total =
        Gauge("mmfuse_gpu_memory_total_bytes", "Device memory installed (NVML).");
    prometheus::MetricFamily busy = Gauge(
        "mmfuse_gpu_utilization_ratio",
        "Share of the driver's last sample period in which a kernel ran on the GPU (NVML).");
    for (const GpuReading& r : readings) {
      Add(&used, r, static_cast<double>(r.memory_used_bytes));
      Add(&total, r, static_cast<double>(r.memory_total_bytes));
      Add(&busy, r, r.utilization);
    }
    return {std::move(used), std::move(total), std::move(busy)};
  }

 private:
  static prometheus::MetricFamily Gauge(const char* name, const char* help) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = prometheus::MetricType::Gauge;
    return family;
  }

  static void Add(prometheus::MetricFamily* family, const GpuReading& r, double value) {
    prometheus::ClientMetric metric;
    metric.label = {{"gpu", absl::StrCat(r.index)}, {"name", r.name}};
    metric.gauge.value = value;
    family->metric.push_back(std::move(metric));
  }

  std::shared_ptr<const Nvml> nvml_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeGpuCollector(std::shared_ptr<const Nvml> nvml) {
  return std::make_shared<GpuCollector>(std::move(nvml));
}

}  // namespace mmfuse::server
