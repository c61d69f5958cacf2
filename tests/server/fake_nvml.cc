// A stand-in for NVIDIA's libnvidia-ml.so.1 with the entry points
// server/gpu_metrics.cc binds: two devices with fixed readings, so the GPU
// collector's parsing and labels are tested on machines without a GPU.
// Setting FAKE_NVML_INIT_FAILS makes nvmlInit_v2 fail, as on a machine
// whose driver sees no device.
#include <cstdlib>
#include <cstring>

namespace {
struct FakeDevice {
  const char* name;
  unsigned long long total, free, used;  // NOLINT(runtime/int): NVML's type.
  unsigned int gpu_percent, memory_percent;
};
FakeDevice devices[] = {
    {"Fake H200", 150ull << 30, (150ull << 30) - (3ull << 30), 3ull << 30, 37, 12},
    {"Fake H200", 150ull << 30, 150ull << 30, 0, 0, 0},
};
int initialised = 0;
}  // namespace

extern "C" {
struct nvmlMemory_st {
  unsigned long long total, free, used;  // NOLINT(runtime/int)
};
struct nvmlUtilization_st {
  unsigned int gpu, memory;
};

int nvmlInit_v2() {
  if (std::getenv("FAKE_NVML_INIT_FAILS") != nullptr) return 9;  // NVML_ERROR_DRIVER_NOT_LOADED.
  ++initialised;
  return 0;
}
int nvmlShutdown() {
  --initialised;
  return 0;
}
int nvmlDeviceGetCount_v2(unsigned int* count) {
  if (initialised <= 0) return 1;  // NVML_ERROR_UNINITIALIZED.
  *count = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index >= 2) return 2;  // NVML_ERROR_INVALID_ARGUMENT.
  *device = &devices[index];
  return 0;
}
int nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  std::strncpy(name, static_cast<FakeDevice*>(device)->name, length);
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* device, nvmlMemory_st* memory) {
  const FakeDevice* d = static_cast<FakeDevice*>(device);
  *memory = {d->total, d->free, d->used};
  return 0;
}
int nvmlDeviceGetUtilizationRates(void* device, nvmlUtilization_st* utilization) {
  const FakeDevice* d = static_cast<FakeDevice*>(device);
  *utilization = {d->gpu_percent, d->memory_percent};
  return 0;
}
}  // extern "C"
