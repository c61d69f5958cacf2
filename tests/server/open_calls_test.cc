// OpenCalls (the drain list shutdown uses) and the undelivered count of a
// stream's write queue.
#include "server/open_calls.h"

#include <atomic>
#include <string>

#include "gtest/gtest.h"
#include "server/response_write_queue.h"

namespace mmfuse::server {
namespace {

// A stand-in call: reference counted as the reactors are.
struct FakeCall {
  std::atomic<int> refs{1};
  int drained = 0;
  OpenCalls::Member AsMember() {
    return {[this] { return TryAddRef(refs); },
            [this] {
              ++drained;
              refs.fetch_sub(1);
            }};
  }
};

TEST(OpenCallsTest, DrainAllDrainsEveryLiveMemberOnceAndRefusesLaterJoins) {
  OpenCalls calls;
  FakeCall a, b, dying, left;
  dying.refs = 0;  // its destructor is running: try_ref fails
  ASSERT_TRUE(calls.Join(&a, a.AsMember()));
  ASSERT_TRUE(calls.Join(&b, b.AsMember()));
  ASSERT_TRUE(calls.Join(&dying, dying.AsMember()));
  ASSERT_TRUE(calls.Join(&left, left.AsMember()));
  calls.Leave(&left);
  EXPECT_EQ(calls.size(), 3);
  EXPECT_FALSE(calls.draining());

  calls.DrainAll();
  EXPECT_TRUE(calls.draining());
  EXPECT_EQ(a.drained, 1);
  EXPECT_EQ(b.drained, 1);
  EXPECT_EQ(dying.drained, 0);
  EXPECT_EQ(left.drained, 0);
  // Each drain dropped the reference it took.
  EXPECT_EQ(a.refs.load(), 1);
  EXPECT_EQ(b.refs.load(), 1);

  FakeCall late;
  EXPECT_FALSE(calls.Join(&late, late.AsMember()));
  EXPECT_EQ(calls.size(), 3);
  EXPECT_TRUE(calls.AwaitSizeAtLeast(3, absl::ZeroDuration()));
  EXPECT_FALSE(calls.AwaitSizeAtLeast(4, absl::ZeroDuration()));
}

TEST(OpenCallsTest, UndeliveredIsCountedAndReported) {
  OpenCalls calls;
  int64_t reported = 0;
  calls.set_on_undelivered([&reported](int64_t n) { reported += n; });
  calls.RecordUndelivered(0);  // nothing lost: no report
  calls.RecordUndelivered(3);
  calls.RecordUndelivered(2);
  EXPECT_EQ(calls.undelivered(), 5);
  EXPECT_EQ(reported, 5);
}

TEST(ResponseWriteQueueTest, CountsEveryResponseThatIsNeverWritten) {
  ResponseWriteQueueOf<std::string> queue;
  ASSERT_NE(queue.Push("a"), nullptr);   // written now
  EXPECT_EQ(queue.Push("b"), nullptr);   // pending
  EXPECT_EQ(queue.Push("c"), nullptr);   // pending
  std::string* next = queue.WriteDone(true);  // "a" reached the client
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(*next, "b");
  EXPECT_EQ(queue.dropped(), 0);
  EXPECT_EQ(queue.WriteDone(false), nullptr);  // "b" failed, "c" never goes
  EXPECT_EQ(queue.dropped(), 2);
  EXPECT_EQ(queue.Push("d"), nullptr);  // after the failure: dropped at once
  EXPECT_EQ(queue.dropped(), 3);

  ResponseWriteQueueOf<std::string> cleared;
  ASSERT_NE(cleared.Push("x"), nullptr);
  EXPECT_EQ(cleared.Push("y"), nullptr);
  cleared.Clear();  // the stream ended with an error: "y" is never written
  EXPECT_EQ(cleared.WriteDone(true), nullptr);
  EXPECT_EQ(cleared.dropped(), 1);
}

}  // namespace
}  // namespace mmfuse::server
