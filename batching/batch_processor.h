// BatchProcessor: the narrow view the batcher has of the model. The server
// implements it with the fusion transformer; tests with a fake that records
// batches (tests/testing/fake_processor.h).
#ifndef MMFUSE_BATCHING_BATCH_PROCESSOR_H_
#define MMFUSE_BATCHING_BATCH_PROCESSOR_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "batching/task.h"

namespace mmfuse::batching {

class BatchProcessor {
 public:
  virtual ~BatchProcessor() = default;

  // Runs one batch on the calling worker thread. Every task in `batch` has the
  // same branch and length bucket, none is expired or cancelled, and
  // 1 <= batch.size() <= max_batch_size. Writes each task's result into its
  // payload. Returns one status per task (same order, same size), so one bad
  // sample cannot fail its neighbours; an error of the whole batch is that
  // status repeated. Called concurrently from several workers: must be
  // thread-safe.
  virtual std::vector<absl::Status> ProcessBatch(absl::Span<Task* const> batch) = 0;
};

}  // namespace mmfuse::batching

#endif  // MMFUSE_BATCHING_BATCH_PROCESSOR_H_
