// CountUnfinishedConnections against real loopback sockets: the server side
// of a connection counts until it is shut down for writing and its bytes
// are acknowledged; the listener, the client side and other ports never do.
#include "server/closing_connections.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace mmfuse::server {
namespace {

// A listening socket on a free loopback port, one accepted connection and
// its client end.
class LoopbackPair {
 public:
  LoopbackPair() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(listener_, 4) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
    client_ = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return;
    server_side_ = accept(listener_, nullptr, nullptr);
  }
  ~LoopbackPair() {
    for (int fd : {server_side_, client_, listener_}) {
      if (fd >= 0) close(fd);
    }
  }

  int port() const { return port_; }
  int listener() const { return listener_; }
  int client() const { return client_; }
  int server_side() const { return server_side_; }
  bool ok() const { return port_ > 0 && server_side_ >= 0; }

 private:
  int listener_ = -1;
  int client_ = -1;
  int server_side_ = -1;
  int port_ = 0;
};

TEST(ClosingConnectionsTest, CountsTheServerSideUntilItIsShutDownForWriting) {
  LoopbackPair pair;
  ASSERT_TRUE(pair.ok());
  ASSERT_EQ(CountUnfinishedConnections(pair.port()).value(), 1);

  // Answer bytes written, then the write side shut: FIN after the data.
  ASSERT_EQ(write(pair.server_side(), "answer", 6), 6);
  ASSERT_EQ(shutdown(pair.server_side(), SHUT_WR), 0);
  EXPECT_TRUE(AwaitConnectionsFinished(pair.port(), absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(CountUnfinishedConnections(pair.port()).value(), 0);

  // The client still reads every byte.
  char buffer[16];
  EXPECT_EQ(read(pair.client(), buffer, sizeof(buffer)), 6);
  EXPECT_EQ(read(pair.client(), buffer, sizeof(buffer)), 0);  // The FIN.
}

TEST(ClosingConnectionsTest, AConnectionTheClientClosedCountsUntilTheServerClosesToo) {
  LoopbackPair pair;
  ASSERT_TRUE(pair.ok());
  ASSERT_EQ(shutdown(pair.client(), SHUT_WR), 0);  // Server side: CLOSE_WAIT.
  EXPECT_FALSE(AwaitConnectionsFinished(pair.port(), absl::Now() + absl::Milliseconds(50)));
  EXPECT_EQ(CountUnfinishedConnections(pair.port()).value(), 1);
  ASSERT_EQ(shutdown(pair.server_side(), SHUT_WR), 0);
  EXPECT_TRUE(AwaitConnectionsFinished(pair.port(), absl::Now() + absl::Seconds(30)));
}

TEST(ClosingConnectionsTest, TheListenerAndOtherPortsDoNotCount) {
  LoopbackPair pair;
  LoopbackPair other;
  ASSERT_TRUE(pair.ok());
  ASSERT_TRUE(other.ok());
  // The client end's local port is an ephemeral one, never the server's.
  ASSERT_EQ(shutdown(pair.server_side(), SHUT_WR), 0);
  EXPECT_TRUE(AwaitConnectionsFinished(pair.port(), absl::Now() + absl::Seconds(30)));
  // `other` is open on its own port and counts there only.
  EXPECT_EQ(CountUnfinishedConnections(other.port()).value(), 1);
}

TEST(ClosingConnectionsTest, AnUnusedPortHasNone) {
  LoopbackPair pair;
  ASSERT_TRUE(pair.ok());
  const int unused = pair.port() == 65535 ? pair.port() - 1 : pair.port() + 1;
  EXPECT_EQ(CountUnfinishedConnections(unused).value(), 0);
}

}  // namespace
}  // namespace mmfuse::server
