// ClassifierService::Admit against StartDraining: a request is either
// refused UNAVAILABLE without being accepted, or accepted and computed;
// never accepted and then refused by a batcher that already shut down.
#include <atomic>
#include <map>
#include <memory>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gtest/gtest.h"
#include "server/classifier_service.h"
#include "server/served_model.h"
#include "tests/testing/test_package.h"

namespace mmfuse::server {
namespace {

CallContext NoDeadline() {
  CallContext call;
  call.received = absl::Now();
  call.deadline = absl::InfiniteFuture();
  call.is_cancelled = [] { return false; };
  return call;
}

TEST(AdmissionTest, DrainingWhileRequestsArriveAcceptsOnlyWhatItComputes) {
  constexpr int kProducers = 4;
  for (int round = 0; round < 20; ++round) {
    ClassifierService service(/*metrics=*/nullptr);
    ServingOptions serving;
    serving.workers = 1;
    absl::StatusOr<std::unique_ptr<ServedModel>> model =
        ServedModel::Create(testing::SmallPackage(), serving);
    ASSERT_TRUE(model.ok()) << model.status();
    ServedModel* served = model->get();
    service.AddModel(*std::move(model));

    data::Generator generator(testing::SmallGeneratorOptions(), round);
    const v1::ClassifyRequest request = client::RequestFromExample(generator.Next());
    absl::Mutex mu;
    std::map<std::string, int> outcomes;  // "code: message" -> count
    int answered = 0;
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&] {
        // Closed loop, one request at a time: the queue never fills.
        while (!stop.load()) {
          sent.fetch_add(1);
          v1::ClassifyResponse response;
          absl::Notification answer;
          service.Admit(served, &request, &response, NoDeadline(), [&](absl::Status status) {
            {
              absl::MutexLock lock(&mu);
              ++outcomes[absl::StrCat(status.code(), ": ", status.message())];
              ++answered;
            }
            answer.Notify();
          });
          answer.WaitForNotification();
        }
      });
    }
    // Drain in the middle of the traffic, as Server::Shutdown does.
    while (sent.load() < 20 * (round + 1)) std::this_thread::yield();
    service.StartDraining();
    service.ShutdownModels();
    stop.store(true);
    for (auto& t : producers) t.join();

    const ClassifierService::Counts counts = service.counts();
    absl::MutexLock lock(&mu);
    EXPECT_EQ(answered, sent.load()) << "round " << round;
    EXPECT_EQ(counts.accepted, counts.answered) << "round " << round;
    EXPECT_EQ(counts.accepted, counts.answered_ok)
        << "round " << round << ": an accepted request was refused";
    for (const auto& [what, count] : outcomes) {
      EXPECT_TRUE(what == "0: " || what == "14: server is shutting down")
          << "round " << round << ": " << what << " x" << count;
    }
    EXPECT_EQ(outcomes["0: "], counts.accepted) << "round " << round;
  }
}

}  // namespace
}  // namespace mmfuse::server
