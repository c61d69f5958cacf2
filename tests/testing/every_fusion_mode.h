// The parameters of a test run once per fusion mode:
//   INSTANTIATE_TEST_SUITE_P(EveryFusionMode, SomeTest, testing::EveryFusionMode(),
//                            testing::FusionModeTestName);
#ifndef MMFUSE_TESTS_TESTING_EVERY_FUSION_MODE_H_
#define MMFUSE_TESTS_TESTING_EVERY_FUSION_MODE_H_

#include <string>

#include "gtest/gtest.h"
#include "model/model_config.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::testing {

inline auto EveryFusionMode() {
  return ::testing::Values(v1::FUSION_MODE_CONCAT, v1::FUSION_MODE_LATE, v1::FUSION_MODE_MBT,
                           v1::FUSION_MODE_SFT, v1::FUSION_MODE_LOCOMT, v1::FUSION_MODE_PMF);
}

// "concat", "late", ...: the mode's name in test names.
inline std::string FusionModeTestName(const ::testing::TestParamInfo<v1::FusionMode>& info) {
  return model::FusionModeName(info.param);
}

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_TESTING_EVERY_FUSION_MODE_H_
