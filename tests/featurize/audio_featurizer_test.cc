// The audio featurizer: log-mel frames of generated WAV/FLAC files, and a
// clear error for every bad input.
#include <sndfile.h>

#include <algorithm>
#include <cmath>

#include "client/featurize/audio_file.h"
#include "client/featurize/log_mel.h"
#include "client/featurize/media_featurizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/featurizer_config.h"
#include "tests/featurize/media_writers.h"

namespace mmfuse::featurize {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

v1::AudioFeaturizer Params(int n_mels = 40, int stack = 1) {
  v1::Featurizer f;
  f.mutable_audio()->set_n_mels(n_mels);
  f.mutable_audio()->set_stack_frames(stack);
  return model::ResolveFeaturizer(f, 0).audio();
}

// The audio featurizer of a one-modality model with these parameters.
std::unique_ptr<MediaFeaturizer> AudioModel(const v1::AudioFeaturizer& params, int max_frames = 512) {
  v1::ModelConfig config;
  v1::ModalityConfig* m = config.add_modalities();
  m->set_name("audio");
  m->set_feature_dim(params.n_mels() * std::max<uint32_t>(1, params.stack_frames()));
  m->set_max_frames(max_frames);
  *m->mutable_featurizer()->mutable_audio() = params;
  config.set_num_classes(2);
  config.set_fusion_mode(v1::FUSION_MODE_CONCAT);
  config.mutable_transformer()->set_d_model(8);
  config.mutable_transformer()->set_num_heads(1);
  config.mutable_transformer()->set_ff_dim(8);
  config.mutable_transformer()->set_fusion_layers(1);
  auto media = MediaFeaturizer::FromModelConfig(config);
  EXPECT_TRUE(media.ok()) << media.status();
  return media.ok() ? std::move(*media) : nullptr;
}

absl::StatusOr<v1::FeatureSequence> FeaturizeAudio(const MediaFeaturizer& media,
                                                   const std::string& path) {
  google::protobuf::Map<std::string, v1::FeatureSequence> features;
  absl::Status status = media.Featurize(MediaInput{path, "", "", std::nullopt}, &features);
  if (!status.ok()) return status;
  return features.at("audio");
}

int PeakBand(const v1::FeatureSequence& s, int frame) {
  const float* row = s.data().data() + frame * s.dim();
  return static_cast<int>(std::max_element(row, row + s.dim()) - row);
}

// The band whose centre is nearest `hz`.
int NearestBand(const LogMel& mel, int n_mels, double hz) {
  int best = 0;
  for (int b = 1; b < n_mels; ++b) {
    if (std::abs(mel.BandCentreHz(b) - hz) < std::abs(mel.BandCentreHz(best) - hz)) best = b;
  }
  return best;
}

TEST(AudioFeaturizerTest, PureTonePeaksInItsMelBand) {
  const std::string path = testing::TempDir("tone") + "/tone.wav";
  ASSERT_TRUE(testing::WriteAudio(path, testing::Sine(1000, 16000, 1.0), 16000, 1).ok());
  auto media = AudioModel(Params());
  absl::StatusOr<v1::FeatureSequence> s = FeaturizeAudio(*media, path);
  ASSERT_TRUE(s.ok()) << s.status();
  // 16000 samples, n_fft 512, hop 160: 1 + (16000 - 512) / 160 = 97 frames.
  EXPECT_EQ(s->frames(), 97u);
  EXPECT_EQ(s->dim(), 40u);
  auto mel = LogMel::Create(Params());
  ASSERT_TRUE(mel.ok());
  const int expected = NearestBand(**mel, 40, 1000);
  for (int t : {0, 48, 96}) EXPECT_EQ(PeakBand(*s, t), expected) << "frame " << t;
}

TEST(AudioFeaturizerTest, StereoIsMixedAndOtherRatesResampled) {
  const std::string dir = testing::TempDir("stereo");
  // 44.1 kHz stereo: 2 kHz left, silence right, as FLAC.
  const std::vector<float> tone = testing::Sine(2000, 44100, 0.5);
  std::vector<float> stereo;
  for (float x : tone) {
    stereo.push_back(x);
    stereo.push_back(0);
  }
  ASSERT_TRUE(testing::WriteAudio(dir + "/a.flac", stereo, 44100, 2,
                                  SF_FORMAT_FLAC | SF_FORMAT_PCM_16).ok());
  absl::StatusOr<MonoAudio> mono = ReadMonoAudio(dir + "/a.flac", 600);
  ASSERT_TRUE(mono.ok()) << mono.status();
  EXPECT_EQ(mono->sample_rate, 44100);
  // Mean of the channels: half the left channel.
  EXPECT_NEAR(*std::max_element(mono->samples.begin(), mono->samples.end()), 0.25, 1e-3);
  auto media = AudioModel(Params());
  absl::StatusOr<v1::FeatureSequence> s = FeaturizeAudio(*media, dir + "/a.flac");
  ASSERT_TRUE(s.ok()) << s.status();
  // 0.5 s at 16 kHz = 8000 samples: 1 + (8000 - 512) / 160 = 47 frames.
  EXPECT_NEAR(static_cast<int>(s->frames()), 47, 1);
  auto mel = LogMel::Create(Params());
  EXPECT_EQ(PeakBand(*s, 20), NearestBand(**mel, 40, 2000));
}

TEST(AudioFeaturizerTest, StackingConcatenatesConsecutiveFramesAndMaxFramesCuts) {
  const std::vector<float> samples = testing::Sine(500, 16000, 0.5);
  auto plain = LogMel::Create(Params(8, 1));
  auto stacked = LogMel::Create(Params(8, 3));
  ASSERT_TRUE(plain.ok() && stacked.ok());
  absl::StatusOr<v1::FeatureSequence> a = (*plain)->Compute(samples, 1000);
  absl::StatusOr<v1::FeatureSequence> b = (*stacked)->Compute(samples, 1000);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->frames(), a->frames() / 3);
  EXPECT_EQ(b->dim(), 24u);
  for (int i = 0; i < b->data_size(); ++i) ASSERT_EQ(b->data(i), a->data(i)) << i;
  absl::StatusOr<v1::FeatureSequence> cut = (*plain)->Compute(samples, 5);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->frames(), 5u);
}

// docs/FEATURES.md, "Audio", test vector: 1600 samples at 16 kHz of
// 0.5 sin(2 pi 440 n / 16000) + 0.25 sin(2 pi 3000 n / 16000) (as float32),
// n_mels 8, other fields 0 (defaults).
TEST(AudioFeaturizerTest, DocsTestVector) {
  std::vector<float> x(1600);
  for (int n = 0; n < 1600; ++n) {
    x[n] = static_cast<float>(0.5 * std::sin(2 * M_PI * 440.0 * n / 16000.0) +
                              0.25 * std::sin(2 * M_PI * 3000.0 * n / 16000.0));
  }
  auto mel = LogMel::Create(Params(8));
  ASSERT_TRUE(mel.ok());
  absl::StatusOr<v1::FeatureSequence> s = (*mel)->Compute(x, 512);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->frames(), 7u);
  const float want[8] = {7.4700222f, 8.38693714f, -6.10186815f, -13.4342403f,
                         4.53883982f, 7.27407598f, -20.8389359f, -22.8161831f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(s->data(i), want[i], 1e-4) << i;
  EXPECT_NEAR(s->data(8 + 2), -6.10271549f, 1e-4);
}

TEST(AudioFeaturizerTest, UtteranceNormalisationStandardisesEachBandOverTheFrames) {
  std::vector<float> x(1600);
  for (int n = 0; n < 1600; ++n) {
    x[n] = static_cast<float>(0.5 * std::sin(2 * M_PI * 440.0 * n / 16000.0) * n / 1600.0 +
                              0.25 * std::sin(2 * M_PI * 3000.0 * n / 16000.0));
  }
  v1::AudioFeaturizer params = Params(8, 2);
  auto plain = LogMel::Create(params);
  params.set_normalization(v1::AudioFeaturizer::NORMALIZATION_UTTERANCE);
  auto normalised = LogMel::Create(params);
  ASSERT_TRUE(plain.ok() && normalised.ok());
  absl::StatusOr<v1::FeatureSequence> a = (*plain)->Compute(x, 512);
  absl::StatusOr<v1::FeatureSequence> b = (*normalised)->Compute(x, 512);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->data_size(), b->data_size());
  // Raw frame t, band k is value t * 8 + k in both (stacking keeps order).
  const int frames = a->data_size() / 8;
  for (int k = 0; k < 8; ++k) {
    double mean = 0, deviation = 0, b_mean = 0, b_sq = 0;
    for (int t = 0; t < frames; ++t) mean += a->data(t * 8 + k);
    mean /= frames;
    for (int t = 0; t < frames; ++t) {
      const double v = a->data(t * 8 + k), w = b->data(t * 8 + k);
      deviation += (v - mean) * (v - mean);
      b_mean += w;
      b_sq += w * w;
    }
    const double std_dev = std::sqrt(deviation / frames);
    if (std_dev <= 1e-5) {  // Constant energy (the steady 3 kHz tone): zeros.
      EXPECT_EQ(b_sq, 0) << "band " << k;
      continue;
    }
    EXPECT_NEAR(b_mean / frames, 0, 1e-5) << "band " << k;
    EXPECT_NEAR(b_sq / frames, 1, 1e-3) << "band " << k;
    EXPECT_NEAR(b->data(k), (a->data(k) - mean) / std_dev, 1e-3) << "band " << k;
  }
  // Docs test vector (docs/FEATURES.md, Audio, normalization): this signal,
  // n_mels 8, stack_frames 2, row 0.
  const float want[16] = {-1.73112f, -1.73112f, -1.31203f, -1.13681f, 0, 0, -0.94258f, 0,
                          -0.74449f, -0.74448f, -0.93585f, -1.14299f, 0, 0, -1.25319f, 0};
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(b->data(i), want[i], 1e-4) << i;
}

TEST(AudioFeaturizerTest, SilenceGivesTheLogFloor) {
  auto mel = LogMel::Create(Params(8));
  absl::StatusOr<v1::FeatureSequence> s = (*mel)->Compute(std::vector<float>(1000, 0.0f), 10);
  ASSERT_TRUE(s.ok());
  for (float v : s->data()) EXPECT_FLOAT_EQ(v, std::log(1e-10f));
}

TEST(AudioFeaturizerTest, DeterministicAcrossRuns) {
  const std::vector<float> samples = testing::Sine(321, 16000, 0.3);
  auto a = LogMel::Create(Params());
  auto b = LogMel::Create(Params());
  auto x = (*a)->Compute(samples, 100);
  auto y = (*b)->Compute(samples, 100);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(x->SerializeAsString(), y->SerializeAsString());
}

TEST(AudioFeaturizerTest, BadInputsAreClearErrorsNamingTheFile) {
  const std::string dir = testing::TempDir("bad");
  auto media = AudioModel(Params(40, 4));
  const std::string good = dir + "/good.wav";
  ASSERT_TRUE(testing::WriteAudio(good, testing::Sine(440, 16000, 0.5), 16000, 1).ok());
  const std::string wav = testing::ReadBytes(good);

  ASSERT_TRUE(testing::WriteBytes(dir + "/empty.wav", "").ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/garbage.wav", std::string(2000, 'x')).ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/cut_header.wav", wav.substr(0, 30)).ok());
  ASSERT_TRUE(testing::WriteBytes(dir + "/image.png", "\x89PNG\r\n\x1a\nnot audio").ok());
  ASSERT_TRUE(testing::WriteAudio(dir + "/slow.wav", std::vector<float>(500, 0.1f), 500, 1).ok());
  ASSERT_TRUE(testing::WriteAudio(dir + "/short.wav", std::vector<float>(600, 0.1f), 16000, 1).ok());

  struct Case {
    std::string file;
    std::string message;
  };
  for (const Case& c : {Case{"missing.wav", "does not exist"}, Case{"empty.wav", "is empty"},
                        Case{"garbage.wav", "cannot decode"}, Case{"cut_header.wav", "cannot decode"},
                        Case{"image.png", "cannot decode"},
                        Case{"slow.wav", "sample rate 500 Hz is outside [1000, 384000]"},
                        Case{"short.wav", "fewer than stack_frames=4"}}) {
    absl::StatusOr<v1::FeatureSequence> s = FeaturizeAudio(*media, dir + "/" + c.file);
    ASSERT_FALSE(s.ok()) << c.file;
    EXPECT_THAT(std::string(s.status().message()), AllOf(HasSubstr(c.file), HasSubstr(c.message))) << c.file;
  }
}

TEST(AudioFeaturizerTest, TruncatedDataIsAnErrorOrTheSamplesPresent) {
  const std::string dir = testing::TempDir("trunc");
  const std::string good = dir + "/good.wav";
  ASSERT_TRUE(testing::WriteAudio(good, testing::Sine(440, 16000, 0.5), 16000, 1).ok());
  const std::string wav = testing::ReadBytes(good);
  // Data cut mid-way: the header promises 8000 frames, 3000 remain.
  ASSERT_TRUE(testing::WriteBytes(dir + "/cut.wav", wav.substr(0, 44 + 6000)).ok());
  absl::StatusOr<MonoAudio> audio = ReadMonoAudio(dir + "/cut.wav", 600);
  if (audio.ok()) {
    // libsndfile trims a WAV's length to the data present: never more.
    EXPECT_EQ(audio->samples.size(), 3000u);
  } else {
    EXPECT_THAT(audio.status().message(), HasSubstr("truncated"));
  }
}

}  // namespace
}  // namespace mmfuse::featurize
