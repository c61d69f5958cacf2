#include "batching/load_bias.h"

#include "gtest/gtest.h"

namespace mmfuse::batching {
namespace {

class LoadBiasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.target_wait = absl::Milliseconds(10);
    options_.step = 1;
    options_.max_bias = 2;
    options_.smoothing = 1;  // The average is the last observation.
    options_.min_interval = absl::Milliseconds(100);
    auto controller = LoadBiasController::Create(options_);
    ASSERT_TRUE(controller.ok()) << controller.status();
    controller_ = std::move(*controller);
  }

  double Observe(absl::Duration wait) {
    now_ += absl::Milliseconds(100);
    return controller_->Observe(wait, now_);
  }

  LoadBiasOptions options_;
  std::unique_ptr<LoadBiasController> controller_;
  absl::Time now_ = absl::UnixEpoch();
};

TEST_F(LoadBiasTest, RisesInBoundedStepsWhileQueuesWaitTooLong) {
  EXPECT_EQ(Observe(absl::Milliseconds(50)), 1);
  EXPECT_EQ(Observe(absl::Milliseconds(50)), 2);
  EXPECT_EQ(Observe(absl::Milliseconds(50)), 2);  // Capped at max_bias.
}

TEST_F(LoadBiasTest, HoldsBetweenTheThresholdsAndFallsWhenLoadDrops) {
  Observe(absl::Milliseconds(50));
  EXPECT_EQ(Observe(absl::Milliseconds(7)), 1);  // Between 5 and 10 ms: hysteresis.
  EXPECT_EQ(Observe(absl::Milliseconds(1)), 0);
  EXPECT_EQ(Observe(absl::Milliseconds(1)), 0);  // Never below zero.
}

TEST_F(LoadBiasTest, ChangesAtMostOncePerInterval) {
  EXPECT_EQ(controller_->Observe(absl::Milliseconds(50), now_ + absl::Milliseconds(1)), 1);
  EXPECT_EQ(controller_->Observe(absl::Milliseconds(50), now_ + absl::Milliseconds(50)), 1);
  EXPECT_EQ(controller_->Observe(absl::Milliseconds(50), now_ + absl::Milliseconds(101)), 2);
}

TEST(LoadBiasCreateTest, RejectsBadOptionsNamingTheField) {
  LoadBiasOptions options;
  options.lower_fraction = 1.5;
  auto controller = LoadBiasController::Create(options);
  ASSERT_FALSE(controller.ok());
  EXPECT_NE(controller.status().message().find("lower_fraction=1.5"), std::string::npos);
}

}  // namespace
}  // namespace mmfuse::batching
