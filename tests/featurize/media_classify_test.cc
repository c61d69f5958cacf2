// Classify from real media files against a server on a loopback port, with
// the featurizers the server reports in GetModelInfo.
#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "client/classifier_client.h"
#include "client/featurize/featurizer_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "server/server.h"
#include "tests/featurize/media_writers.h"
#include "tests/featurize/tiny_media_config.h"

namespace mmfuse::featurize {
namespace {

using ::testing::HasSubstr;

constexpr const char* kConfig = testing::kTinyMediaConfig;

class MediaClassifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<v1::ModelConfig> config = model::ParseModelConfig(kConfig);
    ASSERT_TRUE(config.ok()) << config.status();
    model::SeedRandom(1);
    auto package = model::NewModelPackage(*config, {"zero", "one", "two"});
    ASSERT_TRUE(package.ok()) << package.status();
    (*package)->model->eval();
    server::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics_port = 0;
    options.packages.push_back(*package);
    options.serving.workers = 1;
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<client::ClassifierClient>(
        absl::StrCat("127.0.0.1:", server_->port()));
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<client::ClassifierClient> client_;
};

TEST_F(MediaClassifyTest, GetModelInfoCarriesTheFeaturizers) {
  absl::StatusOr<v1::ModelInfo> info = client_->GetModelInfo("", absl::Seconds(30));
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->modalities_size(), 3);
  EXPECT_EQ(info->modalities(0).featurizer().audio().n_mels(), 8u);
  EXPECT_EQ(info->modalities(1).featurizer().image().patch_size(), 2u);
  EXPECT_EQ(info->modalities(2).featurizer().text().seed(), 3u);
}

TEST_F(MediaClassifyTest, ClassifiesFeaturesOfMediaFiles) {
  const std::string dir = testing::TempDir("classify");
  ASSERT_TRUE(testing::WriteAudio(dir + "/a.wav", testing::Sine(700, 8000, 0.3), 8000, 1).ok());
  ASSERT_TRUE(testing::WritePng(dir + "/i.png", 8, 8, 1, std::vector<uint8_t>(64, 99)).ok());
  absl::StatusOr<std::unique_ptr<MediaFeaturizer>> media =
      FetchFeaturizers(client_.get(), "", absl::Seconds(30));
  ASSERT_TRUE(media.ok()) << media.status();
  // Any subset of the inputs.
  for (const MediaInput& input :
       {MediaInput{dir + "/a.wav", dir + "/i.png", "", std::string("trois")},
        MediaInput{dir + "/a.wav", "", "", std::nullopt},
        MediaInput{"", dir + "/i.png", "", std::string("un deux")}}) {
    v1::ClassifyRequest request;
    ASSERT_TRUE((*media)->Featurize(input, request.mutable_features()).ok());
    request.set_top_k(3);
    absl::StatusOr<v1::ClassifyResponse> response = client_->Classify(request, absl::Seconds(30));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->top_k_size(), 3);
    EXPECT_EQ(response->modalities_used_size(), static_cast<int>(request.features().size()));
  }
}

TEST_F(MediaClassifyTest, BadMediaIsAnErrorBeforeAnyRequest) {
  const std::string dir = testing::TempDir("classify_bad");
  ASSERT_TRUE(testing::WriteBytes(dir + "/bad.wav", std::string(100, 'z')).ok());
  absl::StatusOr<std::unique_ptr<MediaFeaturizer>> media =
      FetchFeaturizers(client_.get(), "", absl::Seconds(30));
  ASSERT_TRUE(media.ok()) << media.status();
  v1::ClassifyRequest request;
  absl::Status status = (*media)->Featurize(MediaInput{dir + "/bad.wav", "", "", std::nullopt},
                                            request.mutable_features());
  EXPECT_THAT(std::string(status.message()), HasSubstr("bad.wav: cannot decode"));
}

TEST(FeaturizerConfigTest, OutputDimMismatchIsAClearErrorAtLoad) {
  std::string text = kConfig;
  text.replace(text.find("n_mels: 8"), 9, "n_mels: 8 stack_frames: 2");
  absl::StatusOr<v1::ModelConfig> config = model::ParseModelConfig(text);
  ASSERT_TRUE(config.ok());
  absl::Status status = model::ValidateModelConfig(*config);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("modalities[0] (audio).featurizer outputs 16 values per frame "
                        "(n_mels=8 * stack_frames=2) but feature_dim=8"));
  text = kConfig;
  text.replace(text.find("patch_size: 2"), 13, "patch_size: 2 color: COLOR_RGB");
  config = model::ParseModelConfig(text);
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(std::string(model::ValidateModelConfig(*config).message()),
              HasSubstr("modalities[1] (video).featurizer outputs 12 values per frame"));
  text = kConfig;
  text.replace(text.find("seed: 3"), 7, "dim: 5");
  config = model::ParseModelConfig(text);
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(std::string(model::ValidateModelConfig(*config).message()),
              HasSubstr("modalities[2] (text).featurizer outputs 5 values per frame but "
                        "feature_dim=4"));
  text = kConfig;
  text.replace(text.find("n_fft: 256"), 10, "n_fft: 250");
  config = model::ParseModelConfig(text);
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(std::string(model::ValidateModelConfig(*config).message()),
              HasSubstr("audio.n_fft=250 is not a power of two"));
  config = model::ParseModelConfig(kConfig);
  EXPECT_TRUE(model::ValidateModelConfig(*config).ok());
}

// The example config in docs/FEATURES.md is valid.
TEST(FeaturizerConfigTest, DocsExampleConfigIsValid) {
  std::ifstream in(std::string(MMFUSE_SOURCE_DIR) + "/docs/FEATURES.md");
  ASSERT_TRUE(in.good());
  const std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t begin = docs.find("```\nmodalities {");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = docs.find("```", begin + 3);
  const std::string modalities = docs.substr(begin + 4, end - begin - 4);
  absl::StatusOr<v1::ModelConfig> config = model::ParseModelConfig(
      modalities + "num_classes: 10 fusion_mode: FUSION_MODE_CONCAT "
                   "transformer { d_model: 64 num_heads: 4 ff_dim: 128 fusion_layers: 1 }");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(model::ValidateModelConfig(*config).ok()) << model::ValidateModelConfig(*config);
  auto media = MediaFeaturizer::FromModelConfig(*config);
  ASSERT_TRUE(media.ok()) << media.status();
  EXPECT_EQ((*media)->audio_modality(), "audio");
  EXPECT_EQ((*media)->image_modality(), "video");
  EXPECT_EQ((*media)->text_modality(), "text");
}

}  // namespace
}  // namespace mmfuse::featurize
