// The image/video featurizer: patches of generated PNG, JPEG and video files,
// and a clear error for every bad input.
#include <cmath>

#include "client/featurize/image_file.h"
#include "client/featurize/patch_featurizer.h"
#include "client/featurize/video_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/featurizer_config.h"
#include "tests/featurize/media_writers.h"

namespace mmfuse::featurize {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

v1::ImageFeaturizer Params(int width, int height, int patch, v1::ImageFeaturizer::Color color,
                           v1::ImageFeaturizer::Resize resize = v1::ImageFeaturizer::RESIZE_BILINEAR) {
  v1::Featurizer f;
  v1::ImageFeaturizer* im = f.mutable_image();
  im->set_width(width);
  im->set_height(height);
  im->set_patch_size(patch);
  im->set_color(color);
  im->set_resize(resize);
  return model::ResolveFeaturizer(f, 0).image();
}

std::unique_ptr<PatchFeaturizer> Make(const v1::ImageFeaturizer& params, int max_frames = 256) {
  auto p = PatchFeaturizer::Create(params, max_frames);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : nullptr;
}

TEST(ImageFeaturizerTest, RgbPatchesEqualThePixelsInRasterOrder) {
  // 4x4 RGB image, pixel (x, y) = (10x + y, 100 + x, 200 - y); 2x2 patches.
  std::vector<uint8_t> rgb;
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) {
      rgb.push_back(10 * x + y);
      rgb.push_back(100 + x);
      rgb.push_back(200 - y);
    }
  }
  const std::string path = testing::TempDir("rgb") + "/a.png";
  ASSERT_TRUE(testing::WritePng(path, 4, 4, 3, rgb).ok());
  auto patches = Make(Params(4, 4, 2, v1::ImageFeaturizer::COLOR_RGB));
  absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeImageFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->frames(), 4u);
  ASSERT_EQ(s->dim(), 12u);
  for (int py = 0; py < 2; ++py) {
    for (int px = 0; px < 2; ++px) {
      for (int y = 0; y < 2; ++y) {
        for (int x = 0; x < 2; ++x) {
          for (int c = 0; c < 3; ++c) {
            const int gx = px * 2 + x, gy = py * 2 + y;
            const float want = rgb[(gy * 4 + gx) * 3 + c] / 255.0f;
            EXPECT_FLOAT_EQ(s->data((py * 2 + px) * 12 + (y * 2 + x) * 3 + c), want)
                << "patch " << py << "," << px << " pixel " << y << "," << x << " c " << c;
          }
        }
      }
    }
  }
}

TEST(ImageFeaturizerTest, GrayNormalisationAndBilinearDownscale) {
  // 4x2 gray image resized to 2x1: each output pixel is the mean of a 2x2
  // block (half-pixel centres land between the four).
  const std::vector<uint8_t> gray = {0, 40, 100, 200, 20, 60, 120, 255};
  const std::string path = testing::TempDir("gray") + "/g.png";
  ASSERT_TRUE(testing::WritePng(path, 4, 2, 1, gray).ok());
  v1::ImageFeaturizer params = Params(2, 1, 1, v1::ImageFeaturizer::COLOR_GRAY);
  params.add_mean(0.5f);
  params.add_std(0.25f);
  auto patches = Make(params);
  absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeImageFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->frames(), 2u);
  const double left = (0 + 40 + 20 + 60) / 4.0, right = (100 + 200 + 120 + 255) / 4.0;
  EXPECT_FLOAT_EQ(s->data(0), static_cast<float>((left / 255.0 - 0.5) / 0.25));
  EXPECT_FLOAT_EQ(s->data(1), static_cast<float>((right / 255.0 - 0.5) / 0.25));
}

// docs/FEATURES.md, "Images and video", test vector: a 4x4 RGB frame, pixel
// i = 4y + x is (16 i, 255 - 16 i, 128); gray, 2x2, patch 1, mean 0.5, std 0.5.
TEST(ImageFeaturizerTest, DocsTestVector) {
  RgbImage image;
  image.width = image.height = 4;
  for (int i = 0; i < 16; ++i) {
    image.rgb.insert(image.rgb.end(), {static_cast<uint8_t>(16 * i),
                                       static_cast<uint8_t>(255 - 16 * i), uint8_t{128}});
  }
  v1::ImageFeaturizer params = Params(2, 2, 1, v1::ImageFeaturizer::COLOR_GRAY);
  params.add_mean(0.5f);
  params.add_std(0.5f);
  absl::StatusOr<v1::FeatureSequence> s = Make(params)->FeaturizeFrames({image}, "docs");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->frames(), 4u);
  EXPECT_NEAR(s->data(0), 0.198094115f, 1e-6);
  EXPECT_NEAR(s->data(1), 0.125811771f, 1e-6);
  EXPECT_NEAR(s->data(2), -0.0910352916f, 1e-6);
  EXPECT_NEAR(s->data(3), -0.163317651f, 1e-6);
}

TEST(ImageFeaturizerTest, GrayOfRgbUsesRec601Weights) {
  const std::string path = testing::TempDir("luma") + "/c.png";
  ASSERT_TRUE(testing::WritePng(path, 1, 1, 3, {200, 100, 50}).ok());
  auto patches = Make(Params(1, 1, 1, v1::ImageFeaturizer::COLOR_GRAY));
  absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeImageFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FLOAT_EQ(s->data(0), static_cast<float>((299 * 200 + 587 * 100 + 114 * 50) / 1000.0 / 255.0));
}

TEST(ImageFeaturizerTest, AlphaIsCompositedOverBlack) {
  const std::string path = testing::TempDir("alpha") + "/a.png";
  ASSERT_TRUE(testing::WritePng(path, 1, 1, 4, {255, 255, 255, 51}).ok());
  auto patches = Make(Params(1, 1, 1, v1::ImageFeaturizer::COLOR_RGB));
  absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeImageFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FLOAT_EQ(s->data(0), 0.2f);
}

TEST(ImageFeaturizerTest, JpegDecodesCloseToItsPixels) {
  std::vector<uint8_t> rgb(16 * 16 * 3, 0);
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = 180, rgb[i + 1] = 90, rgb[i + 2] = 30;
  const std::string path = testing::TempDir("jpeg") + "/a.jpg";
  ASSERT_TRUE(testing::WriteJpeg(path, 16, 16, rgb, 95).ok());
  auto patches = Make(Params(16, 16, 8, v1::ImageFeaturizer::COLOR_RGB));
  absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeImageFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->frames(), 4u);
  EXPECT_NEAR(s->data(0), 180 / 255.0, 3 / 255.0);
  EXPECT_NEAR(s->data(1), 90 / 255.0, 3 / 255.0);
  EXPECT_NEAR(s->data(2), 30 / 255.0, 3 / 255.0);
}

TEST(ImageFeaturizerTest, VideoIsSampledAtTheFrameRateAndConcatenated) {
  // 10 frames at 10 fps (1 s), frame i gray 20 * i; sampled at 4 fps: slots
  // at 0, 0.25, 0.5, 0.75 s -> frames 0, 3, 5, 8.
  const std::string path = testing::TempDir("video") + "/v.mkv";
  std::vector<uint8_t> values;
  for (int i = 0; i < 10; ++i) values.push_back(20 * i);
  absl::Status written = testing::WriteGrayVideo(path, 4, 4, 10, values);
  if (!written.ok()) GTEST_SKIP() << "cannot encode a test video: " << written;
  v1::ImageFeaturizer params = Params(2, 2, 2, v1::ImageFeaturizer::COLOR_GRAY);
  params.set_frame_rate(4);
  auto patches = Make(params);
  absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeVideoFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->frames(), 4u);  // 4 frames of one 2x2 patch.
  ASSERT_EQ(s->dim(), 4u);
  const int expected[] = {0, 3, 5, 8};
  for (int f = 0; f < 4; ++f) {
    EXPECT_NEAR(s->data(f * 4), 20 * expected[f] / 255.0, 1.5 / 255.0) << "frame " << f;
  }
  // max_frames of the modality caps the frames: 3 rows of one patch each.
  auto capped = Make(params, /*max_frames=*/3);
  s = capped->FeaturizeVideoFile(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->frames(), 3u);
}

TEST(ImageFeaturizerTest, BadInputsAreClearErrorsNamingTheFile) {
  const std::string dir = testing::TempDir("bad");
  std::vector<uint8_t> gray(8 * 8, 128);
  ASSERT_TRUE(testing::WritePng(dir + "/good.png", 8, 8, 1, gray).ok());
  ASSERT_TRUE(testing::WritePng(dir + "/small.png", 6, 8, 1, std::vector<uint8_t>(48, 1)).ok());
  const std::string png = testing::ReadBytes(dir + "/good.png");
  ASSERT_TRUE(testing::WriteBytes(dir + "/cut.png", png.substr(0, png.size() / 2)).ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/header_only.png", png.substr(0, 12)).ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/empty.png", "").ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/text.png", "hello, not an image").ok());
  std::vector<uint8_t> rgb(32 * 32 * 3, 77);
  ASSERT_TRUE(testing::WriteJpeg(dir + "/good.jpg", 32, 32, rgb, 90).ok());
  const std::string jpg = testing::ReadBytes(dir + "/good.jpg");
  ASSERT_TRUE(testing::WriteBytes(dir + "/cut.jpg", jpg.substr(0, jpg.size() / 2)).ok());

  auto patches = Make(Params(8, 8, 4, v1::ImageFeaturizer::COLOR_GRAY,
                             v1::ImageFeaturizer::RESIZE_NONE));
  ASSERT_TRUE(patches->FeaturizeImageFile(dir + "/good.png").ok());
  struct Case {
    std::string file;
    std::string message;
  };
  for (const Case& c :
       {Case{"missing.png", "does not exist"}, Case{"empty.png", "is empty"},
        Case{"text.png", "unsupported format"}, Case{"cut.png", "corrupt or truncated PNG"},
        Case{"header_only.png", "corrupt or truncated PNG"},
        Case{"cut.jpg", "corrupt or truncated JPEG"},
        Case{"small.png", "6x8 but the featurizer needs 8x8 (resize: none)"}}) {
    absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeImageFile(dir + "/" + c.file);
    ASSERT_FALSE(s.ok()) << c.file;
    EXPECT_THAT(std::string(s.status().message()), AllOf(HasSubstr(c.file), HasSubstr(c.message))) << c.file;
  }
}

TEST(ImageFeaturizerTest, BadVideosAreClearErrorsNamingTheFile) {
  const std::string dir = testing::TempDir("badvideo");
  ASSERT_TRUE(testing::WriteBytes(dir + "/garbage.mp4", std::string(4096, '\x17')).ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/empty.mp4", "").ok());
  ASSERT_TRUE(testing::WritePng(dir + "/still.png", 4, 4, 1, std::vector<uint8_t>(16, 9)).ok());
  absl::Status no_frames = testing::WriteGrayVideo(dir + "/no_frames.mkv", 4, 4, 10, {});
  auto patches = Make(Params(4, 4, 2, v1::ImageFeaturizer::COLOR_GRAY));
  struct Case {
    std::string file;
    std::string message;
  };
  std::vector<Case> cases = {{"missing.mp4", "does not exist"},
                             {"empty.mp4", "is empty"},
                             {"garbage.mp4", "cannot open as a media container"}};
  if (no_frames.ok()) cases.push_back({"no_frames.mkv", "no frames decoded"});
  for (const Case& c : cases) {
    absl::StatusOr<v1::FeatureSequence> s = patches->FeaturizeVideoFile(dir + "/" + c.file);
    ASSERT_FALSE(s.ok()) << c.file;
    EXPECT_THAT(std::string(s.status().message()), AllOf(HasSubstr(c.file), HasSubstr(c.message))) << c.file;
  }
}

TEST(ImageFeaturizerTest, TruncatedVideoKeepsTheFramesBeforeTheCut) {
  const std::string dir = testing::TempDir("cutvideo");
  std::vector<uint8_t> values;
  for (int i = 0; i < 20; ++i) values.push_back(10 * i);
  absl::Status written = testing::WriteGrayVideo(dir + "/v.mkv", 4, 4, 10, values);
  if (!written.ok()) GTEST_SKIP() << "cannot encode a test video: " << written;
  const std::string bytes = testing::ReadBytes(dir + "/v.mkv");
  ASSERT_TRUE(testing::WriteBytes(dir + "/cut.mkv", bytes.substr(0, bytes.size() / 2)).ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/stub.mkv", bytes.substr(0, 40)).ok());
  v1::ImageFeaturizer params = Params(2, 2, 2, v1::ImageFeaturizer::COLOR_GRAY);
  params.set_frame_rate(10);
  auto patches = Make(params);
  absl::StatusOr<v1::FeatureSequence> full = patches->FeaturizeVideoFile(dir + "/v.mkv");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->frames(), 20u);
  // Whether a cut file opens depends on the container (Matroska's index
  // may lie past the cut); either the frames before the cut or a clear error.
  absl::StatusOr<v1::FeatureSequence> cut = patches->FeaturizeVideoFile(dir + "/cut.mkv");
  if (cut.ok()) {
    EXPECT_GE(cut->frames(), 1u);
    EXPECT_LT(cut->frames(), 20u);
    for (uint32_t f = 0; f < cut->frames(); ++f) {
      EXPECT_NEAR(cut->data(f * 4), 10.0 * f / 255.0, 1.5 / 255.0) << f;
    }
  } else {
    EXPECT_THAT(std::string(cut.status().message()), HasSubstr("cut.mkv: cannot open as a media "
                                                               "container (not a video, corrupt "
                                                               "or truncated)"));
  }
  absl::StatusOr<v1::FeatureSequence> stub = patches->FeaturizeVideoFile(dir + "/stub.mkv");
  ASSERT_FALSE(stub.ok());
  EXPECT_THAT(std::string(stub.status().message()), HasSubstr("stub.mkv"));
}

TEST(ImageFeaturizerTest, PatchCountAboveMaxFramesIsRejectedAtCreate) {
  auto p = PatchFeaturizer::Create(Params(32, 32, 4, v1::ImageFeaturizer::COLOR_GRAY), 63);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("64 patches but max_frames=63"));
}

}  // namespace
}  // namespace mmfuse::featurize
