// LoCoMT head views, torch-free so config validation and FLOP accounting can
// use them: each head of a fusion layer attends within one view, self(m)
// ("self:<m>") or cross(i, j) ("cross:<i>:<j>").
#ifndef MMFUSE_MODEL_LOCOMT_VIEWS_H_
#define MMFUSE_MODEL_LOCOMT_VIEWS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Modality indices (model order): self(a) when a == b, else cross(a, b).
struct HeadView {
  int a = 0;
  int b = 0;
  bool operator<(const HeadView& o) const { return a != o.a ? a < o.a : b < o.b; }
};

// The views of every fusion layer ([layer][head]): config.locomt.layers, or
// the default table: layer l cycles its heads over the self views and then
// the cross pairs, both rotated by l, so every pair meets as depth grows.
// Errors name the layer, head and the bad view.
absl::StatusOr<std::vector<std::vector<HeadView>>> LocomtViews(const v1::ModelConfig& config);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_LOCOMT_VIEWS_H_
