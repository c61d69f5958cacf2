#include "model/device.h"

#include <torch/cuda.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace mmfuse::model {

DeviceSupport LinkedDeviceSupport() {
  DeviceSupport support;
  support.cuda_devices = static_cast<int>(torch::cuda::device_count());
  return support;
}

absl::StatusOr<std::string> ResolveDevice(absl::string_view spec, const DeviceSupport& support) {
  if (spec == "cpu") return std::string("cpu");
  if (spec == "auto") return support.cuda_devices > 0 ? std::string("cuda:0") : std::string("cpu");
  int index = 0;
  if (spec != "cuda") {
    absl::string_view number = spec;
    if (!absl::ConsumePrefix(&number, "cuda:") || number.empty() ||
        !absl::SimpleAtoi(number, &index) || index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device \"", spec, "\" is not one of auto, cpu, cuda, cuda:N (N >= 0)"));
    }
  }
  if (support.cuda_devices == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", spec, ": this LibTorch sees no CUDA device (a CPU-only build, or no GPU or "
        "driver); use --device cpu or auto"));
  }
  if (index >= support.cuda_devices) {
    return absl::FailedPreconditionError(absl::StrCat("device ", spec, ": only ",
                                                      support.cuda_devices,
                                                      " CUDA device(s) here (cuda:0..cuda:",
                                                      support.cuda_devices - 1, ")"));
  }
  return absl::StrCat("cuda:", index);
}

absl::Status CheckPrecision(absl::string_view precision, absl::string_view device) {
  if (precision != "fp32" && precision != "bf16" && precision != "fp16") {
    return absl::InvalidArgumentError(
        absl::StrCat("precision \"", precision, "\" is not one of fp32, bf16, fp16"));
  }
  if (precision == "fp16" && device == "cpu") {
    return absl::FailedPreconditionError(
        "precision fp16 needs a GPU (LibTorch's CPU kernels lack half-precision matrix "
        "products); use bf16 or fp32 on the CPU");
  }
  return absl::OkStatus();
}

}  // namespace mmfuse::model
