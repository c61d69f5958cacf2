// Where a client gets a model's featurizers: a config.pbtxt (or the package
// directory holding one), or a running server's GetModelInfo.
#ifndef MMFUSE_CLIENT_FEATURIZE_FEATURIZER_SOURCE_H_
#define MMFUSE_CLIENT_FEATURIZE_FEATURIZER_SOURCE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/classifier_client.h"
#include "client/featurize/media_featurizer.h"

namespace mmfuse::featurize {

// `path` itself, or path/config.pbtxt when `path` is a directory.
std::string ConfigPathOf(const std::string& path);

// The featurizers of the config at ConfigPathOf(path); errors name the file.
absl::StatusOr<std::unique_ptr<MediaFeaturizer>> LoadFeaturizers(const std::string& path);

// The featurizers of model `model` ("" = the default) as the server reports
// them. `client` is borrowed for the call.
absl::StatusOr<std::unique_ptr<MediaFeaturizer>> FetchFeaturizers(
    client::ClassifierClient* client, const std::string& model, absl::Duration timeout);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_FEATURIZER_SOURCE_H_
