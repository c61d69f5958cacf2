#include "data/dataset_io.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"

namespace mmfuse::data {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

absl::StatusOr<std::unique_ptr<DatasetWriter>> DatasetWriter::Open(const std::string& path) {
  auto file = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
  if (!file->is_open()) {
    return absl::NotFoundError(absl::StrCat("cannot open dataset file for writing: ", path));
  }
  return std::unique_ptr<DatasetWriter>(new DatasetWriter(path, std::move(file)));
}

DatasetWriter::DatasetWriter(std::string path, std::unique_ptr<std::ofstream> file)
    : path_(std::move(path)),
      file_(std::move(file)),
      stream_(std::make_unique<google::protobuf::io::OstreamOutputStream>(file_.get())) {}

DatasetWriter::~DatasetWriter() { Close().IgnoreError(); }

absl::Status DatasetWriter::Write(const v1::Example& example) {
  if (stream_ == nullptr) return absl::FailedPreconditionError("dataset writer is closed");
  CodedOutputStream out(stream_.get());
  out.WriteVarint64(example.ByteSizeLong());
  if (!example.SerializeToCodedStream(&out) || out.HadError()) {
    return absl::DataLossError(absl::StrCat("write failed: ", path_));
  }
  return absl::OkStatus();
}

absl::Status DatasetWriter::Close() {
  if (stream_ == nullptr) return absl::OkStatus();
  stream_.reset();  // Flushes its buffer into the ofstream.
  file_->close();
  if (file_->fail()) return absl::DataLossError(absl::StrCat("write failed: ", path_));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DatasetReader>> DatasetReader::Open(const std::string& path) {
  auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!file->is_open()) {
    return absl::NotFoundError(absl::StrCat("cannot open dataset file: ", path));
  }
  return std::unique_ptr<DatasetReader>(new DatasetReader(path, std::move(file)));
}

DatasetReader::DatasetReader(std::string path, std::unique_ptr<std::ifstream> file)
    : path_(std::move(path)),
      file_(std::move(file)),
      stream_(std::make_unique<google::protobuf::io::IstreamInputStream>(file_.get())) {}

DatasetReader::~DatasetReader() = default;

absl::StatusOr<bool> DatasetReader::Next(v1::Example* example) {
  // A fresh CodedInputStream per record keeps its byte limit per message.
  CodedInputStream in(stream_.get());
  uint64_t size = 0;
  if (!in.ReadVarint64(&size)) {
    // ReadVarint64 fails both at a clean end and inside a torn varint; only
    // the first consumed nothing.
    if (in.CurrentPosition() == 0) return false;
    return absl::DataLossError(
        absl::StrCat(path_, ": record ", index_, ": truncated length prefix"));
  }
  if (size > kMaxExampleBytes) {
    return absl::DataLossError(absl::StrCat(path_, ": record ", index_, ": length ", size,
                                            " exceeds the limit of ", kMaxExampleBytes,
                                            " bytes (not a dataset file?)"));
  }
  auto limit = in.PushLimit(static_cast<int>(size));
  if (!example->ParseFromCodedStream(&in) || !in.ConsumedEntireMessage() ||
      in.BytesUntilLimit() != 0) {
    return absl::DataLossError(
        absl::StrCat(path_, ": record ", index_, ": truncated or malformed Example"));
  }
  in.PopLimit(limit);
  ++index_;
  return true;
}

absl::StatusOr<std::vector<v1::Example>> ReadDataset(const std::string& path) {
  MMFUSE_ASSIGN_OR_RETURN(std::unique_ptr<DatasetReader> reader, DatasetReader::Open(path));
  std::vector<v1::Example> examples;
  while (true) {
    v1::Example example;
    MMFUSE_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
    if (!more) break;
    examples.push_back(std::move(example));
  }
  return examples;
}

absl::Status WriteDataset(const std::string& path, const std::vector<v1::Example>& examples) {
  MMFUSE_ASSIGN_OR_RETURN(std::unique_ptr<DatasetWriter> writer, DatasetWriter::Open(path));
  for (const v1::Example& example : examples) MMFUSE_RETURN_IF_ERROR(writer->Write(example));
  return writer->Close();
}

}  // namespace mmfuse::data
