// The LibTorch headers most of our LibTorch-linked files include, compiled
// once per build into a precompiled header (CMake option MMFUSE_TORCH_PCH;
// cmake/torch_pch.cmake). Parsing them is most of a file's compile time:
// about 11 s of it here, 4.7 s with the precompiled header. Files still
// include what they use: a build with MMFUSE_TORCH_PCH=OFF checks that.
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>
#include <torch/utils.h>
