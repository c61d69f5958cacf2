#include "data/dataset_io.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/generator.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace mmfuse::data {
namespace {

using google::protobuf::util::MessageDifferencer;

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

std::vector<v1::Example> SomeExamples(int n) {
  Generator generator(GeneratorOptions{}, 0);
  std::vector<v1::Example> examples;
  for (int i = 0; i < n; ++i) examples.push_back(generator.Next());
  return examples;
}

TEST(DatasetIoTest, WriteThenReadGivesTheSameExamples) {
  const std::string path = TempPath("round_trip.mmds");
  const std::vector<v1::Example> examples = SomeExamples(17);
  ASSERT_TRUE(WriteDataset(path, examples).ok());
  absl::StatusOr<std::vector<v1::Example>> read = ReadDataset(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*read)[i], examples[i])) << "example " << i;
  }
}

TEST(DatasetIoTest, EmptyFileHasNoExamples) {
  const std::string path = TempPath("empty.mmds");
  ASSERT_TRUE(WriteDataset(path, {}).ok());
  absl::StatusOr<std::vector<v1::Example>> read = ReadDataset(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());
}

TEST(DatasetIoTest, TruncatedFileIsDataLossNamingTheRecord) {
  const std::string path = TempPath("truncated.mmds");
  ASSERT_TRUE(WriteDataset(path, SomeExamples(3)).ok());
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 10);
  absl::StatusOr<std::vector<v1::Example>> read = ReadDataset(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("record 2"), std::string::npos) << read.status();
}

TEST(DatasetIoTest, ForeignFileIsRejectedNotMisread) {
  const std::string path = TempPath("foreign.mmds");
  std::ofstream(path) << "\xff\xff\xff\xff\xff\xff\xff\x7f this is not a dataset";
  absl::StatusOr<std::vector<v1::Example>> read = ReadDataset(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
}

TEST(DatasetIoTest, MissingFileIsNotFound) {
  absl::StatusOr<std::vector<v1::Example>> read = ReadDataset(TempPath("does_not_exist.mmds"));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mmfuse::data
