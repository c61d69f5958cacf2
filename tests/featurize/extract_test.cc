// `mmfuse extract` on a small manifest of generated media, one line of each
// kind of bad input.
#include "client/featurize/extract.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "data/dataset_io.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "model/model_config.h"
#include "tests/featurize/media_writers.h"
#include "tests/featurize/tiny_media_config.h"

namespace mmfuse::featurize {
namespace {

using ::testing::HasSubstr;

constexpr const char* kConfig = testing::kTinyMediaConfig;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("extract");
    WriteFile(dir_ + "/config.pbtxt", kConfig);
    WriteFile(dir_ + "/labels.txt", "zero\none\ntwo\n");
    ::mkdir((dir_ + "/media").c_str(), 0755);
    ASSERT_TRUE(testing::WriteAudio(dir_ + "/media/a.wav", testing::Sine(700, 8000, 0.3), 8000, 1).ok());
    ASSERT_TRUE(testing::WritePng(dir_ + "/media/i.png", 8, 8, 1, std::vector<uint8_t>(64, 200)).ok());
    ASSERT_TRUE(testing::WriteBytes(dir_ + "/media/bad.png", "not a png at all").ok());
    options_.manifest_path = dir_ + "/m.jsonl";
    options_.featurizers_path = dir_;  // A package directory works too.
    options_.out_path = dir_ + "/out.mmds";
    options_.progress = Progress::kOff;
    log_ = std::tmpfile();
    options_.log = log_;
  }
  void TearDown() override { std::fclose(log_); }

  std::string Log() {
    std::rewind(log_);
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), log_)) > 0) text.append(buffer, n);
    return text;
  }

  std::string dir_;
  ExtractOptions options_;
  std::FILE* log_ = nullptr;
};

TEST_F(ExtractTest, WritesGoodLinesAndReportsTheBadOne) {
  WriteFile(options_.manifest_path,
            "{\"label\": \"one\", \"audio\": \"media/a.wav\", \"image\": \"media/i.png\", "
            "\"text\": \"un\", \"id\": \"first\"}\n"
            "\n"
            "{\"label\": \"two\", \"image\": \"media/bad.png\", \"text\": \"deux\"}\n"
            "{\"label\": \"zero\", \"text\": \"zéro zéro\", \"split\": \"train\"}\n");
  absl::StatusOr<ExtractResult> result = Extract(options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->lines, 3);
  EXPECT_EQ(result->written, 2);
  ASSERT_EQ(result->errors.size(), 1u);
  EXPECT_THAT(result->errors[0], HasSubstr("m.jsonl:3: image file "));
  EXPECT_THAT(result->errors[0], HasSubstr("bad.png: unsupported format"));
  const std::string log = Log();
  EXPECT_THAT(log, HasSubstr("m.jsonl:3: image file"));
  EXPECT_THAT(log, HasSubstr("unknown key \"split\" ignored"));

  absl::StatusOr<std::vector<v1::Example>> examples = data::ReadDataset(options_.out_path);
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 2u);
  const v1::Example& first = (*examples)[0];
  EXPECT_EQ(first.id(), "first");
  EXPECT_EQ(first.label(), 1u);
  EXPECT_EQ(first.label_name(), "one");
  ASSERT_EQ(first.features().size(), 3u);
  // 0.3 s at 8 kHz = 2400 samples: 1 + (2400 - 256) / 128 = 17 frames.
  EXPECT_EQ(first.features().at("audio").frames(), 17u);
  EXPECT_EQ(first.features().at("audio").dim(), 8u);
  EXPECT_EQ(first.features().at("video").frames(), 4u);
  EXPECT_FLOAT_EQ(first.features().at("video").data(0), 200 / 255.0f);
  EXPECT_EQ(first.features().at("text").frames(), 1u);
  const v1::Example& second = (*examples)[1];
  EXPECT_EQ(second.id(), "line4");
  EXPECT_EQ(second.label(), 0u);
  EXPECT_EQ(second.features().size(), 1u);
  EXPECT_EQ(second.features().at("text").frames(), 2u);
}

TEST_F(ExtractTest, EveryKindOfBadLineIsNamedAndSkipped) {
  WriteFile(options_.manifest_path,
            "{\"label\": \"one\", \"text\": \"ok\"}\n"                      // 1: good
            "{\"label\": \"one\", \"text\": \"ok\"\n"                       // 2: bad JSON
            "[1, 2]\n"                                                     // 3: not an object
            "{\"label\": \"nine\", \"text\": \"neuf\"}\n"                   // 4: unknown label
            "{\"label\": \"one\"}\n"                                        // 5: no modality
            "{\"text\": \"x\"}\n"                                           // 6: no label
            "{\"label\": \"one\", \"audio\": 5}\n"                          // 7: wrong type
            "{\"label\": \"one\", \"audio\": \"media/none.wav\"}\n"         // 8: missing file
            "{\"label\": \"one\", \"text\": \"   \"}\n"                     // 9: no tokens
            "{\"label\": \"one\", \"image\": \"media/i.png\", \"video\": \"v.mkv\"}\n"  // 10
            "{\"label\": \"one\", \"text\": \"ok\", \"id\": \"line1\"}\n");  // 11: duplicate id
  absl::StatusOr<ExtractResult> result = Extract(options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->written, 1);
  const std::vector<std::string> want = {
      "m.jsonl:2: not valid JSON",
      "m.jsonl:3: a line must be a JSON object, not array",
      "m.jsonl:4: label \"nine\" is not in",
      "m.jsonl:5: no modality",
      "m.jsonl:6: no \"label\"",
      "m.jsonl:7: \"audio\" must be a string, not number",
      "m.jsonl:8: audio file " + dir_ + "/media/none.wav: does not exist",
      "m.jsonl:9: text has no tokens",
      "m.jsonl:10: both image",
      "m.jsonl:11: id \"line1\" is a duplicate"};
  ASSERT_EQ(result->errors.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_THAT(result->errors[i], HasSubstr(want[i]));
}

TEST_F(ExtractTest, StrictOrNothingWrittenFailsAndLeavesNoFile) {
  WriteFile(options_.manifest_path,
            "{\"label\": \"one\", \"text\": \"ok\"}\n{\"label\": \"one\", \"audio\": \"x.wav\"}\n");
  options_.strict = true;
  absl::StatusOr<ExtractResult> result = Extract(options_);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("1 of 2 lines were bad (--strict)"));
  EXPECT_FALSE(std::ifstream(options_.out_path).good());
  EXPECT_FALSE(std::ifstream(options_.out_path + ".partial").good());

  options_.strict = false;
  WriteFile(options_.manifest_path, "{\"label\": \"one\", \"audio\": \"x.wav\"}\n");
  result = Extract(options_);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("none was written"));
  EXPECT_FALSE(std::ifstream(options_.out_path).good());
}

TEST_F(ExtractTest, ThreadsGiveTheSameFile) {
  std::string manifest;
  for (int i = 0; i < 40; ++i) {
    manifest += "{\"label\": \"two\", \"audio\": \"media/a.wav\", \"text\": \"mot" +
                std::to_string(i) + "\"}\n";
  }
  WriteFile(options_.manifest_path, manifest);
  ASSERT_TRUE(Extract(options_).ok());
  absl::StatusOr<std::vector<v1::Example>> one = data::ReadDataset(options_.out_path);
  options_.jobs = 3;
  ASSERT_TRUE(Extract(options_).ok());
  absl::StatusOr<std::vector<v1::Example>> three = data::ReadDataset(options_.out_path);
  ASSERT_TRUE(one.ok() && three.ok());
  ASSERT_EQ(one->size(), 40u);
  ASSERT_EQ(three->size(), 40u);
  for (size_t i = 0; i < 40; ++i) {
    // Map order in the wire format is unspecified: compare messages.
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals((*one)[i], (*three)[i]))
        << "example " << i;
  }
}

TEST_F(ExtractTest, SetupErrorsNameTheFile) {
  WriteFile(options_.manifest_path, "{\"label\": \"one\", \"text\": \"ok\"}\n");
  ExtractOptions options = options_;
  options.labels_path = dir_ + "/missing_labels.txt";
  EXPECT_THAT(std::string(Extract(options).status().message()), HasSubstr("missing_labels.txt"));
  WriteFile(dir_ + "/two_labels.txt", "a\nb\n");
  options.labels_path = dir_ + "/two_labels.txt";
  EXPECT_THAT(std::string(Extract(options).status().message()),
              HasSubstr("has 2 names but"));
  options = options_;
  options.manifest_path = dir_ + "/none.jsonl";
  EXPECT_THAT(std::string(Extract(options).status().message()), HasSubstr("none.jsonl"));
}

}  // namespace
}  // namespace mmfuse::featurize
