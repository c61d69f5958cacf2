// ServerProcess: mmfuse-server run as its own process, for tests that need
// what only a process has: its exit status, its start-up message, its RSS,
// and SIGTERM. Its stderr goes to a log file the test can read.
//
// Thread-compatible: one test thread drives it.
#ifndef MMFUSE_TESTS_RELIABILITY_SERVER_PROCESS_H_
#define MMFUSE_TESTS_RELIABILITY_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace mmfuse::testing {

// A loopback port free at the time of asking (the kernel's pick for port 0).
int FreePort();

// Whether a TCP connection to 127.0.0.1:`port` succeeds now.
bool PortAcceptsConnections(int port);

class ServerProcess {
 public:
  // Spawns `binary` with `args` (not including argv[0]); stderr and stdout go
  // to `log_path`. Returns false if the spawn itself failed.
  bool Start(const std::string& binary, const std::vector<std::string>& args,
             const std::string& log_path);
  // SIGKILLs a process still running.
  ~ServerProcess();

  pid_t pid() const { return pid_; }

  // Waits until the process exits or `timeout` passes; returns whether it
  // exited. Its wait status is then exit_status().
  bool WaitForExit(absl::Duration timeout);
  int exit_status() const { return exit_status_; }

  // Sends SIGTERM and waits for the exit; returns the wait status.
  int Terminate();

  // VmRSS of the running process in KiB (from /proc/<pid>/status); -1 if
  // unreadable.
  int64_t RssKib() const;

  // The whole log so far.
  std::string Log() const;
  // The server's account at exit: "accepted=A answered=B ok=C undelivered=U", or a
  // message saying the line is missing.
  std::string ExitCounts() const;

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::string log_path_;
};

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_RELIABILITY_SERVER_PROCESS_H_
