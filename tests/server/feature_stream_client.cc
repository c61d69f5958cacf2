// feature_stream_client: a test tool sending generated samples to a running
// mmfuse-server over StreamFeatures, in chunks of a few frames with the
// modalities interleaved. With --bad, chunk 1 of each stream skips ahead
// (a gap), so the server ends the stream INVALID_ARGUMENT.
//
// Prints one line per stream, "<index> <grpc code number> <label or message>", and
// exits 0 when every stream ended as expected (OK, or INVALID_ARGUMENT with
// --bad), else 1. Used by the metrics shell tests for a known workload.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "mmfuse/v1/classifier.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "Server address.");
ABSL_FLAG(int, streams, 1, "Number of streams (one sample each), sent one after another.");
ABSL_FLAG(int, frames_per_chunk, 3, "Most frames per chunk.");
ABSL_FLAG(bool, bad, false, "Make chunk 1 of every stream leave a gap (INVALID_ARGUMENT).");
ABSL_FLAG(uint64_t, seed, 1, "Generator seed.");

namespace {

std::vector<mmfuse::v1::FeatureChunk> Chunks(const mmfuse::v1::ClassifyRequest& request,
                                             uint32_t per_chunk) {
  std::map<std::string, uint32_t> sent;
  std::vector<mmfuse::v1::FeatureChunk> chunks;
  bool more = true;
  while (more) {
    more = false;
    for (const auto& [name, seq] : request.features()) {  // Round robin.
      if (sent[name] >= seq.frames()) continue;
      more = true;
      const uint32_t n = std::min(per_chunk, seq.frames() - sent[name]);
      mmfuse::v1::FeatureChunk chunk;
      chunk.set_modality(name);
      chunk.set_offset(sent[name]);
      chunk.set_frames(n);
      chunk.set_dim(seq.dim());
      for (uint32_t i = sent[name] * seq.dim(); i < (sent[name] + n) * seq.dim(); ++i) {
        chunk.add_data(seq.data(i));
      }
      sent[name] += n;
      chunks.push_back(std::move(chunk));
    }
  }
  chunks.front().mutable_header()->set_request_id(request.request_id());
  return chunks;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto channel =
      grpc::CreateChannel(absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials());
  auto stub = mmfuse::v1::MultimodalClassifier::NewStub(channel);
  mmfuse::data::GeneratorOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  mmfuse::data::Generator generator(options, 7);
  const bool bad = absl::GetFlag(FLAGS_bad);
  bool all_expected = true;
  for (int i = 0; i < absl::GetFlag(FLAGS_streams); ++i) {
    mmfuse::v1::ClassifyRequest request = mmfuse::client::RequestFromExample(generator.Next());
    std::vector<mmfuse::v1::FeatureChunk> chunks =
        Chunks(request, static_cast<uint32_t>(std::max(1, absl::GetFlag(FLAGS_frames_per_chunk))));
    if (bad) {
      if (chunks.size() < 2) chunks.push_back(chunks.front());
      chunks[1].clear_header();
      chunks[1].set_offset(chunks[1].offset() + 1000);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    mmfuse::v1::ClassifyResponse response;
    auto writer = stub->StreamFeatures(&context, &response);
    for (const auto& chunk : chunks) {
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    const grpc::StatusCode expected = bad ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::OK;
    all_expected = all_expected && status.error_code() == expected;
    std::printf("%d %d %s\n", i, static_cast<int>(status.error_code()),
                status.ok() ? response.top_k(0).label().c_str() : status.error_message().c_str());
  }
  return all_expected ? 0 : 1;
}
