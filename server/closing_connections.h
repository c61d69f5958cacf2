// The server side of this process's TCP connections on a port, read from
// /proc (Linux), so shutdown can wait for gRPC to finish writing before the
// process exits.
//
// Why: gRPC reports a call finished (its OnDone, and Server::Wait returning)
// once the final status is encoded into the transport's write buffer, not
// once the bytes are in the socket. A process that exits right after
// Server::Wait can drop the last answers still in that buffer: the client
// sees UNAVAILABLE for a request the server computed. After its GOAWAY and
// last stream, gRPC shuts each connection down itself, and only once its
// writes have finished; waiting for that keeps every answer.
#ifndef MMFUSE_SERVER_CLOSING_CONNECTIONS_H_
#define MMFUSE_SERVER_CLOSING_CONNECTIONS_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mmfuse::server {

// Sockets held by this process with local port `port` (not the listener)
// that are still open for writing (ESTABLISHED, SYN_RECV, CLOSE_WAIT) or
// still hold bytes the peer has not acknowledged. An error when /proc
// cannot be read.
absl::StatusOr<int> CountUnfinishedConnections(int port);

// Polls CountUnfinishedConnections until it is 0 (true) or `deadline`
// passes or /proc cannot be read (false).
bool AwaitConnectionsFinished(int port, absl::Time deadline);

// Sockets of this process on local port `port` whose sent bytes the peer
// has not all acknowledged yet (a slow reader's answers in the kernel's send
// queue). Closing such a socket while the peer's own bytes wait unread (its
// flow-control updates, pings) makes the kernel reset the connection and
// drop them, so shutdown lets them drain before gRPC closes anything.
absl::StatusOr<int> CountConnectionsWithUnackedBytes(int port);

// Polls CountConnectionsWithUnackedBytes until it has been 0 for `settle`
// (true; gRPC may still be handing its last bytes to the kernel when it
// first reads 0), or `deadline` passes or /proc cannot be read (false).
bool AwaitUnackedBytesDrained(int port, absl::Duration settle, absl::Time deadline);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_CLOSING_CONNECTIONS_H_
