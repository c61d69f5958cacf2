#include "client/featurize/extract.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/featurize/featurizer_source.h"
#include "client/featurize/manifest.h"
#include "client/featurize/media_featurizer.h"
#include "data/dataset_io.h"
#include "model/model_config.h"

namespace mmfuse::featurize {
namespace {

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// One manifest line's outcome, filled by a worker.
struct LineResult {
  int64_t line_number = 0;
  std::string text;
  bool ok = false;
  v1::Example example;
  std::string error;
  std::vector<std::string> unknown_keys;
};

// A one-line progress bar, redrawn at most every 100 ms.
class ProgressBar {
 public:
  ProgressBar(std::FILE* out, bool enabled, int64_t total)
      : out_(out), enabled_(enabled), total_(total) {}
  void Update(int64_t done, int64_t skipped, bool force = false) {
    if (!enabled_) return;
    const absl::Time now = absl::Now();
    if (!force && now - last_ < absl::Milliseconds(100)) return;
    last_ = now;
    constexpr int kWidth = 30;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::fprintf(out_, "\r[%s%s] %lld/%lld lines, %lld skipped", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), static_cast<long long>(skipped));
    std::fflush(out_);
  }
  // Moves off the bar's line before other output.
  void Clear() {
    if (enabled_) std::fprintf(out_, "\r\033[K");
  }
  void Finish(int64_t done, int64_t skipped) {
    if (!enabled_) return;
    Update(done, skipped, /*force=*/true);
    std::fprintf(out_, "\n");
  }

 private:
  std::FILE* out_;
  bool enabled_;
  int64_t total_;
  absl::Time last_ = absl::InfinitePast();
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read labels file ", path));
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  if (labels.empty()) return absl::InvalidArgumentError(absl::StrCat("labels file ", path, " is empty"));
  return labels;
}

absl::StatusOr<ExtractResult> Extract(const ExtractOptions& options) {
  std::FILE* log = options.log != nullptr ? options.log : stderr;
  if (options.manifest_path.empty() || options.featurizers_path.empty() ||
      options.out_path.empty()) {
    return absl::InvalidArgumentError("extract needs --manifest, --featurizers and --out");
  }
  if (options.jobs < 1 || options.jobs > 64) {
    return absl::InvalidArgumentError(absl::StrCat("--jobs=", options.jobs, " is outside [1, 64]"));
  }
  const std::string config_path = ConfigPathOf(options.featurizers_path);
  absl::StatusOr<v1::ModelConfig> config = model::ReadModelConfig(config_path);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<MediaFeaturizer>> featurizer = LoadFeaturizers(config_path);
  if (!featurizer.ok()) return featurizer.status();
  const std::string labels_path = options.labels_path.empty()
                                      ? ResolvePath(DirName(config_path), "labels.txt")
                                      : options.labels_path;
  absl::StatusOr<std::vector<std::string>> labels = ReadLabels(labels_path);
  if (!labels.ok()) return labels.status();
  if (labels->size() != config->num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat("labels file ", labels_path, " has ",
                                                   labels->size(), " names but ", config_path,
                                                   " has num_classes=", config->num_classes()));
  }
  absl::flat_hash_map<std::string, int> label_index;
  for (int i = 0; i < static_cast<int>(labels->size()); ++i) label_index.emplace((*labels)[i], i);

  std::ifstream manifest(options.manifest_path);
  if (!manifest) return absl::NotFoundError(absl::StrCat("cannot read manifest ", options.manifest_path));
  std::vector<LineResult> lines;
  {
    std::string text;
    int64_t number = 0;
    while (std::getline(manifest, text)) {
      ++number;
      if (absl::StripAsciiWhitespace(text).empty()) continue;
      LineResult line;
      line.line_number = number;
      line.text = std::move(text);
      lines.push_back(std::move(line));
    }
  }
  const std::string base_dir = DirName(options.manifest_path);
  const MediaFeaturizer& media = **featurizer;
  auto process = [&](LineResult* line) {
    absl::StatusOr<ManifestEntry> entry = ParseManifestLine(line->text, base_dir);
    if (!entry.ok()) {
      line->error = std::string(entry.status().message());
      return;
    }
    line->unknown_keys = entry->unknown_keys;
    auto label = label_index.find(entry->label);
    if (label == label_index.end()) {
      line->error = absl::StrCat("label \"", entry->label, "\" is not in ", labels_path);
      return;
    }
    absl::Status status = media.Featurize(entry->media, line->example.mutable_features());
    if (!status.ok()) {
      line->error = std::string(status.message());
      return;
    }
    line->example.set_id(entry->id.empty() ? absl::StrCat("line", line->line_number) : entry->id);
    line->example.set_label(label->second);
    line->example.set_label_name(entry->label);
    line->ok = true;
  };

  const std::string tmp_path = options.out_path + ".partial";
  absl::StatusOr<std::unique_ptr<data::DatasetWriter>> writer = data::DatasetWriter::Open(tmp_path);
  if (!writer.ok()) return writer.status();
  const bool tty = ::isatty(::fileno(log)) != 0;
  ProgressBar bar(log, options.progress == Progress::kOn || (options.progress == Progress::kAuto && tty),
                  static_cast<int64_t>(lines.size()));
  ExtractResult result;
  result.lines = static_cast<int64_t>(lines.size());
  std::set<std::string> ids, warned_keys;
  // Chunks keep memory bounded; within one, workers take lines round-robin.
  const size_t chunk = static_cast<size_t>(options.jobs) * 16;
  for (size_t begin = 0; begin < lines.size(); begin += chunk) {
    const size_t end = std::min(lines.size(), begin + chunk);
    if (options.jobs == 1) {
      for (size_t i = begin; i < end; ++i) process(&lines[i]);
    } else {
      std::vector<std::thread> workers;
      for (int w = 0; w < options.jobs; ++w) {
        workers.emplace_back([&, w] {
          for (size_t i = begin + w; i < end; i += options.jobs) process(&lines[i]);
        });
      }
      for (std::thread& t : workers) t.join();
    }
    for (size_t i = begin; i < end; ++i) {
      LineResult& line = lines[i];
      for (const std::string& key : line.unknown_keys) {
        if (warned_keys.insert(key).second) {
          bar.Clear();
          std::fprintf(log, "%s:%lld: warning: unknown key \"%s\" ignored (reported once)\n",
                       options.manifest_path.c_str(), static_cast<long long>(line.line_number),
                       key.c_str());
        }
      }
      if (line.ok && !ids.insert(line.example.id()).second) {
        line.ok = false;
        line.error = absl::StrCat("id \"", line.example.id(), "\" is a duplicate");
      }
      if (!line.ok) {
        result.errors.push_back(absl::StrCat(options.manifest_path, ":", line.line_number, ": ",
                                             line.error));
        bar.Clear();
        std::fprintf(log, "%s (skipped)\n", result.errors.back().c_str());
      } else {
        absl::Status written = (*writer)->Write(line.example);
        if (!written.ok()) return written;
        ++result.written;
      }
      line = LineResult();  // Frees the features.
      bar.Update(static_cast<int64_t>(i + 1), static_cast<int64_t>(result.errors.size()));
    }
  }
  bar.Finish(result.lines, static_cast<int64_t>(result.errors.size()));
  absl::Status closed = (*writer)->Close();
  if (!closed.ok()) {
    std::remove(tmp_path.c_str());
    return closed;
  }
  if (result.written == 0 || (options.strict && !result.errors.empty())) {
    std::remove(tmp_path.c_str());
    return absl::InvalidArgumentError(absl::StrCat(
        options.manifest_path, ": ", result.errors.size(), " of ", result.lines,
        " lines were bad", result.written == 0 ? " and none was written" : " (--strict)",
        "; nothing written to ", options.out_path));
  }
  if (std::rename(tmp_path.c_str(), options.out_path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp_path, " to ", options.out_path));
  }
  return result;
}

}  // namespace mmfuse::featurize
