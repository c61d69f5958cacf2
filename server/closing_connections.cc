#include "server/closing_connections.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace mmfuse::server {
namespace {

// Kernel TCP states (include/net/tcp_states.h) in which this side may
// still send: the connection is not shut down for writing yet.
constexpr int kEstablished = 0x01;
constexpr int kSynRecv = 0x03;
constexpr int kCloseWait = 0x08;
constexpr int kListen = 0x0A;

// Inodes of the sockets among this process's open descriptors.
absl::StatusOr<std::unordered_set<uint64_t>> OwnSocketInodes() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return absl::UnavailableError("cannot read /proc/self/fd");
  std::unordered_set<uint64_t> inodes;
  while (dirent* entry = readdir(dir)) {
    char target[64];
    const std::string link = absl::StrCat("/proc/self/fd/", entry->d_name);
    const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view text(target, static_cast<size_t>(n));
    uint64_t inode = 0;
    if (absl::ConsumePrefix(&text, "socket:[") && absl::ConsumeSuffix(&text, "]") &&
        absl::SimpleAtoi(text, &inode)) {
      inodes.insert(inode);
    }
  }
  closedir(dir);
  return inodes;
}

// Which sockets CountInTable counts.
enum class Count { kUnfinished, kUnacked };

// Lines of /proc/net/tcp or tcp6: "sl local rem st tx:rx tr:when retr uid
// timeout inode ...", addresses as HEXADDR:HEXPORT.
int CountInTable(const char* path, int port, const std::unordered_set<uint64_t>& own,
                 Count what) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // Header.
  int unfinished = 0;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 10) continue;
    const std::vector<absl::string_view> local = absl::StrSplit(fields[1], ':');
    const std::vector<absl::string_view> queues = absl::StrSplit(fields[4], ':');
    int local_port = 0, state = 0;
    uint64_t unacked = 0, inode = 0;
    if (local.size() != 2 || queues.size() != 2 ||
        !absl::SimpleHexAtoi(local[1], &local_port) || !absl::SimpleHexAtoi(fields[3], &state) ||
        !absl::SimpleHexAtoi(queues[0], &unacked) || !absl::SimpleAtoi(fields[9], &inode)) {
      continue;
    }
    if (local_port != port || state == kListen || own.count(inode) == 0) continue;
    const bool may_still_send = state == kEstablished || state == kSynRecv || state == kCloseWait;
    if (what == Count::kUnacked ? unacked > 0 : may_still_send || unacked > 0) ++unfinished;
  }
  return unfinished;
}

absl::StatusOr<int> CountConnections(int port, Count what) {
  absl::StatusOr<std::unordered_set<uint64_t>> own = OwnSocketInodes();
  if (!own.ok()) return own.status();
  if (access("/proc/net/tcp", R_OK) != 0) {
    return absl::UnavailableError("cannot read /proc/net/tcp");
  }
  return CountInTable("/proc/net/tcp", port, *own, what) +
         CountInTable("/proc/net/tcp6", port, *own, what);
}

}  // namespace

absl::StatusOr<int> CountUnfinishedConnections(int port) {
  return CountConnections(port, Count::kUnfinished);
}

absl::StatusOr<int> CountConnectionsWithUnackedBytes(int port) {
  return CountConnections(port, Count::kUnacked);
}

bool AwaitUnackedBytesDrained(int port, absl::Duration settle, absl::Time deadline) {
  absl::Time drained_since = absl::InfiniteFuture();
  while (true) {
    absl::StatusOr<int> unacked = CountConnectionsWithUnackedBytes(port);
    if (!unacked.ok()) return false;
    const absl::Time now = absl::Now();
    if (*unacked > 0) {
      drained_since = absl::InfiniteFuture();
    } else if (drained_since == absl::InfiniteFuture()) {
      drained_since = now;
    }
    if (now - drained_since >= settle) return true;
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool AwaitConnectionsFinished(int port, absl::Time deadline) {
  while (true) {
    absl::StatusOr<int> unfinished = CountUnfinishedConnections(port);
    if (!unfinished.ok()) return false;
    if (*unfinished == 0) return true;
    if (absl::Now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace mmfuse::server
