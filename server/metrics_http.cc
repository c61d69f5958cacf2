#include "server/metrics_http.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace mmfuse::server {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host, int port, prometheus::Registry* registry) {
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->http_ = std::make_unique<httplib::Server>();
  server->http_->Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, registry->Collect());
    res.set_content(text.str(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server->http_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("mmfuse metrics: see /metrics\n", "text/plain");
  });
  if (port == 0) {
    server->port_ = server->http_->bind_to_any_port(host);
  } else if (server->http_->bind_to_port(host, port)) {
    server->port_ = port;
  } else {
    server->port_ = -1;
  }
  if (server->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind the metrics port ", host, ":", port, " (in use?)"));
  }
  httplib::Server* http = server->http_.get();
  auto listen_returned = std::make_shared<std::atomic<bool>>(false);
  server->thread_ = std::thread([http, listen_returned] {
    http->listen_after_bind();
    listen_returned->store(true);
  });
  // httplib's stop() does nothing before the accept loop runs, so a Stop()
  // right after Start() would hang in join(): return only once it runs.
  // This waits once, at start-up, for a thread that is about to run.
  while (!http->is_running() && !listen_returned->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mmfuse::server
