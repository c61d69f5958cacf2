#include "client/featurize/featurizer_source.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "model/model_config.h"

namespace mmfuse::featurize {

std::string ConfigPathOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return path.back() == '/' ? path + "config.pbtxt" : path + "/config.pbtxt";
  }
  return path;
}

absl::StatusOr<std::unique_ptr<MediaFeaturizer>> LoadFeaturizers(const std::string& path) {
  const std::string config_path = ConfigPathOf(path);
  absl::StatusOr<v1::ModelConfig> config = model::ReadModelConfig(config_path);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<MediaFeaturizer>> media = MediaFeaturizer::FromModelConfig(*config);
  if (!media.ok()) {
    return absl::Status(media.status().code(),
                        absl::StrCat(config_path, ": ", media.status().message()));
  }
  return media;
}

absl::StatusOr<std::unique_ptr<MediaFeaturizer>> FetchFeaturizers(
    client::ClassifierClient* client, const std::string& model, absl::Duration timeout) {
  absl::StatusOr<v1::ModelInfo> info = client->GetModelInfo(model, timeout);
  if (!info.ok()) return info.status();
  absl::StatusOr<std::unique_ptr<MediaFeaturizer>> media = MediaFeaturizer::FromModelInfo(*info);
  if (!media.ok()) {
    return absl::Status(media.status().code(), absl::StrCat("model ", info->name(), " (from the server): ",
                                                            media.status().message()));
  }
  return media;
}

}  // namespace mmfuse::featurize
