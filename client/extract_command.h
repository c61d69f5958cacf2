// `mmfuse extract --manifest m.jsonl --featurizers config.pbtxt --out d.mmds`
// (docs/FEATURES.md). Flags are defined in extract_command.cc.
#ifndef MMFUSE_CLIENT_EXTRACT_COMMAND_H_
#define MMFUSE_CLIENT_EXTRACT_COMMAND_H_

namespace mmfuse::client {

// Exit code: 0 when at least one example was written (and, with --strict,
// no line was bad), 1 on errors, 2 on bad flags.
int RunExtractCommand();

}  // namespace mmfuse::client

#endif  // MMFUSE_CLIENT_EXTRACT_COMMAND_H_
