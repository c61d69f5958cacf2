// MetricsHttpServer: serves a prometheus-cpp registry's text exposition on
// GET /metrics. prometheus-cpp's own Exposer (civetweb) cannot start its
// 100 KiB-stack threads in a process that links LibTorch + OpenBLAS (their
// static TLS fills the stack), so this uses cpp-httplib, whose threads have
// normal stacks.
//
// Thread-safety: Start/Stop from one thread; scrapes run on httplib's pool.
#ifndef MMFUSE_SERVER_METRICS_HTTP_H_
#define MMFUSE_SERVER_METRICS_HTTP_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace httplib {
class Server;
}  // namespace httplib

namespace mmfuse::server {

class MetricsHttpServer {
 public:
  // Binds host:port (port 0 = any free port) and starts serving. `registry`
  // is not owned and must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, prometheus::Registry* registry);
  ~MetricsHttpServer();  // Stops.

  int port() const { return port_; }
  void Stop();

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_METRICS_HTTP_H_
