// Dataset files: length-delimited mmfuse.v1.Example messages (see
// proto/mmfuse/v1/dataset.proto). Readers and writers are streaming, so a file
// larger than memory can be replayed.
//
// Thread-safety: thread-compatible (one reader or writer per thread).
#ifndef MMFUSE_DATA_DATASET_IO_H_
#define MMFUSE_DATA_DATASET_IO_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mmfuse/v1/dataset.pb.h"

namespace google::protobuf::io {
class IstreamInputStream;
class OstreamOutputStream;
}  // namespace google::protobuf::io

namespace mmfuse::data {

// Largest Example a reader accepts, in bytes; a larger length prefix means a
// corrupt or foreign file.
inline constexpr uint64_t kMaxExampleBytes = 256ull << 20;

class DatasetWriter {
 public:
  static absl::StatusOr<std::unique_ptr<DatasetWriter>> Open(const std::string& path);
  ~DatasetWriter();
  absl::Status Write(const v1::Example& example);
  // Flushes and closes; errors (e.g. disk full) surface here.
  absl::Status Close();

 private:
  DatasetWriter(std::string path, std::unique_ptr<std::ofstream> file);
  std::string path_;
  std::unique_ptr<std::ofstream> file_;
  std::unique_ptr<google::protobuf::io::OstreamOutputStream> stream_;
};

class DatasetReader {
 public:
  static absl::StatusOr<std::unique_ptr<DatasetReader>> Open(const std::string& path);
  ~DatasetReader();
  // Reads the next example into `example`. Returns false at a clean end of
  // file; an error for a truncated or malformed record (naming its index).
  absl::StatusOr<bool> Next(v1::Example* example);

 private:
  DatasetReader(std::string path, std::unique_ptr<std::ifstream> file);
  std::string path_;
  std::unique_ptr<std::ifstream> file_;
  std::unique_ptr<google::protobuf::io::IstreamInputStream> stream_;
  int64_t index_ = 0;
};

// Reads a whole file into memory.
absl::StatusOr<std::vector<v1::Example>> ReadDataset(const std::string& path);
// Writes `examples` to `path`, replacing it.
absl::Status WriteDataset(const std::string& path, const std::vector<v1::Example>& examples);

}  // namespace mmfuse::data

#endif  // MMFUSE_DATA_DATASET_IO_H_
