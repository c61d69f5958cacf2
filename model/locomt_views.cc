#include "model/locomt_views.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/model_config.h"

namespace mmfuse::model {
namespace {

absl::StatusOr<HeadView> ParseView(const v1::ModelConfig& config, const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  if (parts.size() == 2 && parts[0] == "self") {
    const int m = ModalityIndex(config, parts[1]);
    if (m >= 0) return HeadView{m, m};
  } else if (parts.size() == 3 && parts[0] == "cross") {
    const int a = ModalityIndex(config, parts[1]);
    const int b = ModalityIndex(config, parts[2]);
    if (a >= 0 && b >= 0 && a != b) return HeadView{std::min(a, b), std::max(a, b)};
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text, "\" is not a view (\"self:<modality>\" or \"cross:<modality>:<other modality>\")"));
}

}  // namespace

absl::StatusOr<std::vector<std::vector<HeadView>>> LocomtViews(const v1::ModelConfig& config) {
  const int layers = static_cast<int>(config.transformer().fusion_layers());
  const int heads = static_cast<int>(config.transformer().num_heads());
  std::vector<std::vector<HeadView>> views(layers);
  if (config.locomt().layers_size() > 0) {
    if (config.locomt().layers_size() != layers) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: locomt.layers has ", config.locomt().layers_size(),
          " entries; transformer.fusion_layers=", layers));
    }
    for (int l = 0; l < layers; ++l) {
      const v1::LocomtLayer& layer = config.locomt().layers(l);
      if (layer.head_views_size() != heads) {
        return absl::InvalidArgumentError(absl::StrCat(
            "config: locomt.layers[", l, "] has ", layer.head_views_size(),
            " head_views; transformer.num_heads=", heads));
      }
      for (int h = 0; h < heads; ++h) {
        absl::StatusOr<HeadView> view = ParseView(config, layer.head_views(h));
        if (!view.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "config: locomt.layers[", l, "].head_views[", h, "]: ", view.status().message()));
        }
        views[l].push_back(*view);
      }
    }
    return views;
  }
  const int modalities = config.modalities_size();
  std::vector<HeadView> selves, pairs;
  for (int a = 0; a < modalities; ++a) {
    selves.push_back({a, a});
    for (int b = a + 1; b < modalities; ++b) pairs.push_back({a, b});
  }
  for (int l = 0; l < layers; ++l) {
    std::vector<HeadView> cycle;
    for (size_t i = 0; i < selves.size(); ++i) cycle.push_back(selves[(i + l) % selves.size()]);
    for (size_t i = 0; i < pairs.size(); ++i) cycle.push_back(pairs[(i + l) % pairs.size()]);
    for (int h = 0; h < heads; ++h) views[l].push_back(cycle[h % cycle.size()]);
  }
  return views;
}

}  // namespace mmfuse::model
