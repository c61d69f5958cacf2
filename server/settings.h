// Start-up validation of every server setting, in one place: Server::Start
// runs it before anything else, and mmfuse-server exits with status 2 on its
// error. A setting out of its range (common/setting_range.h) stops start-up
// with a message naming the flag, its value and the range; none falls back
// to a default. The batching fields of each --model_dir package's
// config.pbtxt take the same ranges and are checked here too.
#ifndef MMFUSE_SERVER_SETTINGS_H_
#define MMFUSE_SERVER_SETTINGS_H_

#include "absl/status/status.h"
#include "server/server.h"

namespace mmfuse::server {

// OK, or INVALID_ARGUMENT naming the first bad setting by its flag
// ("--port=70000 is outside [0, 65535]").
absl::Status ValidateServerOptions(const ServerOptions& options);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_SETTINGS_H_
