// A model package that is missing, truncated or does not match its config:
// mmfuse-server exits non-zero at start-up with a message naming the package
// and the problem, and its ports never open (it never half-serves).
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "tests/reliability/server_process.h"
#include "tests/testing/test_package.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class BadPackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("mmfuse_bad_package_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    package_ = testing::SmallPackage();
    ASSERT_NE(package_, nullptr);
    model_dir_ = (dir_ / "model").string();
    ASSERT_TRUE(model::SaveModelPackage(*package_, model_dir_).ok());
  }

  // Starts the server on the package, watches both ports until it exits,
  // and returns its log. Fails the test if it is still running after 60 s
  // or if either port ever accepted a connection.
  std::string ExpectStartUpFailure() {
    const int port = testing::FreePort();
    const int metrics_port = testing::FreePort();
    testing::ServerProcess server;
    EXPECT_TRUE(server.Start(MMFUSE_SERVER_BINARY,
                             {"--host=127.0.0.1", absl::StrCat("--port=", port),
                              absl::StrCat("--metrics_port=", metrics_port),
                              absl::StrCat("--model_dir=", model_dir_)},
                             (dir_ / "server.log").string()));
    bool opened = false;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!server.WaitForExit(absl::Milliseconds(10))) {
      opened = opened || testing::PortAcceptsConnections(port) ||
               testing::PortAcceptsConnections(metrics_port);
      if (absl::Now() > deadline) {
        ADD_FAILURE() << "mmfuse-server still running on a bad package:\n" << server.Log();
        return server.Log();
      }
    }
    EXPECT_FALSE(opened) << "a port opened before the server gave up";
    EXPECT_TRUE(WIFEXITED(server.exit_status()));
    EXPECT_EQ(WEXITSTATUS(server.exit_status()), 1);
    const std::string log = server.Log();
    EXPECT_THAT(log, HasSubstr("mmfuse-server: "));
    EXPECT_THAT(log, HasSubstr("loading model "));
    EXPECT_THAT(log, ::testing::Not(HasSubstr("serving")));
    return log;
  }

  fs::path dir_;
  std::string model_dir_;
  std::shared_ptr<model::ModelPackage> package_;
};

TEST_F(BadPackageTest, MissingDirectory) {
  fs::remove_all(model_dir_);
  const std::string log = ExpectStartUpFailure();
  EXPECT_THAT(log, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("loading model ", model_dir_)));
}

TEST_F(BadPackageTest, MissingWeights) {
  fs::remove(fs::path(model_dir_) / "weights.pt");
  const std::string log = ExpectStartUpFailure();
  EXPECT_THAT(log, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(log, HasSubstr("weights.pt"));
}

TEST_F(BadPackageTest, TruncatedWeights) {
  const fs::path weights = fs::path(model_dir_) / "weights.pt";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  EXPECT_THAT(ExpectStartUpFailure(), HasSubstr("DATA_LOSS"));
}

TEST_F(BadPackageTest, EmptyWeights) {
  fs::resize_file(fs::path(model_dir_) / "weights.pt", 0);
  EXPECT_THAT(ExpectStartUpFailure(), HasSubstr("DATA_LOSS"));
}

TEST_F(BadPackageTest, WeightsOfAnotherArchitecture) {
  v1::ModelConfig wider = package_->config;
  wider.mutable_transformer()->set_d_model(wider.transformer().d_model() * 2);
  std::ofstream(fs::path(model_dir_) / "config.pbtxt") << model::FormatModelConfig(wider);
  const std::string log = ExpectStartUpFailure();
  EXPECT_THAT(log, HasSubstr("DATA_LOSS"));
  EXPECT_THAT(log, HasSubstr("does not match config.pbtxt"));
}

TEST_F(BadPackageTest, WrongLabelCount) {
  std::ofstream(fs::path(model_dir_) / "labels.txt") << "a\nb\n";
  EXPECT_THAT(ExpectStartUpFailure(), HasSubstr("has 2 labels"));
}

TEST_F(BadPackageTest, UnparsableConfig) {
  std::ofstream(fs::path(model_dir_) / "config.pbtxt") << "this is { not a config\n";
  EXPECT_THAT(ExpectStartUpFailure(), HasSubstr("config.pbtxt"));
}

TEST_F(BadPackageTest, SecondPackageBadMeansNothingServes) {
  // A good default model and a bad second one: still no port.
  const std::string bad = (dir_ / "bad").string();
  fs::create_directories(bad);
  model_dir_ = absl::StrCat(model_dir_, ",", bad);
  EXPECT_THAT(ExpectStartUpFailure(), HasSubstr(absl::StrCat("loading model ", bad)));
}

}  // namespace
}  // namespace mmfuse
