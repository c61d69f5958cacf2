#include "client/featurize/manifest.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace mmfuse::featurize {

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (base_dir.empty() || (!path.empty() && path[0] == '/')) return path;
  return base_dir.back() == '/' ? base_dir + path : absl::StrCat(base_dir, "/", path);
}

absl::StatusOr<ManifestEntry> ParseManifestLine(absl::string_view line,
                                                const std::string& base_dir) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a line must be a JSON object, not ", json.type_name()));
  }
  ManifestEntry entry;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& key = it.key();
    const bool known = key == "label" || key == "id" || key == "audio" || key == "image" ||
                       key == "video" || key == "text";
    if (!known) {
      entry.unknown_keys.push_back(key);
      continue;
    }
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" must be a string, not ",
                                                     it.value().type_name()));
    }
    const std::string value = it.value().get<std::string>();
    if (key == "text") {
      entry.media.text = value;
      continue;
    }
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" is empty"));
    if (key == "label") {
      entry.label = value;
    } else if (key == "id") {
      entry.id = value;
    } else if (key == "audio") {
      entry.media.audio_path = ResolvePath(base_dir, value);
    } else if (key == "image") {
      entry.media.image_path = ResolvePath(base_dir, value);
    } else {
      entry.media.video_path = ResolvePath(base_dir, value);
    }
  }
  if (entry.label.empty()) return absl::InvalidArgumentError("no \"label\"");
  if (entry.media.audio_path.empty() && entry.media.image_path.empty() &&
      entry.media.video_path.empty() && !entry.media.text.has_value()) {
    return absl::InvalidArgumentError(
        "no modality: give at least one of \"audio\", \"image\", \"video\", \"text\"");
  }
  return entry;
}

}  // namespace mmfuse::featurize
