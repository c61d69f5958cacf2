// ThreadSanitizer builds only (MMFUSE_SANITIZE=thread): makes absl::Mutex
// visible to TSan.
//
// Debian's libabsl is not built with -fsanitize=thread, so the TSan
// annotations inside absl's mutex.cc are compiled out and TSan sees no
// happens-before edge through any absl::Mutex: every field guarded by one is
// reported as a data race. This file interposes the Mutex entry points
// (an executable's definitions win over the shared library's, also for the
// library's own PLT calls, e.g. from absl::Notification), annotates them with
// the TSan mutex interface and forwards to the real functions (dlsym
// RTLD_NEXT). Conditions are wrapped so their evaluation, which absl may run
// on another thread inside Unlock, counts as done under the lock, like
// absl's own EvalConditionAnnotated. The *WithTimeout entry points call
// this file's *WithDeadline ones (as absl's own do, through the PLT): were
// they wrapped too, absl's inner call would annotate a second time, and TSan
// saw a release of an unlocked mutex or failed its own ignore_sync CHECK.
// absl::Notification's waits return at once, without the mutex, when the
// notification happened before (an atomic load inside absl that TSan cannot
// see): Notify and the waits are annotated as a release and an acquire on
// the notification itself.
// absl::CondVar's waits (gRPC's gpr_cv
// is one) release the mutex for the wait and take it back inside absl, past
// Lock and Unlock, so they are annotated as an unlock and a lock around it.
//
// In TSan builds it is compiled into every test executable and mmfuse-server
// (mmfuse_tsan_shim() in the top CMakeLists.txt); it assumes Abseil 20220623
// as packaged by Debian (inline namespace debian3).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdlib>

#include "absl/base/internal/raw_logging.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace {

template <typename Fn>
Fn Real(const char* mangled_name) {
  void* fn = dlsym(RTLD_NEXT, mangled_name);
  ABSL_RAW_CHECK(fn != nullptr, "tsan_absl_mutex: real symbol not found");
  return reinterpret_cast<Fn>(fn);
}

// The mutex whose Unlock this thread is inside, between its release
// annotation and the real unlock's end; absl evaluates waiters' conditions
// there.
thread_local const absl::Mutex* unlocking = nullptr;

void AnnotateAcquired(absl::Mutex* mu) {
  __tsan_mutex_pre_lock(mu, 0);
  __tsan_mutex_post_lock(mu, 0, 0);
}

void AnnotateReleased(absl::Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
}

// A Condition evaluated as if under `mu` in TSan's view.
struct AnnotatedCondition {
  const absl::Condition* cond;
  absl::Mutex* mu;
  bool operator()() const {
    if (unlocking == mu) {
      // Inside our Unlock: TSan already saw the release (and ignores
      // accesses until post_unlock). Pretend to re-acquire, evaluate, and
      // release again before the outer post_unlock.
      __tsan_mutex_post_unlock(mu, 0);
      __tsan_mutex_pre_lock(mu, 0);
      __tsan_mutex_post_lock(mu, 0, 0);
      const bool result = cond->Eval();
      __tsan_mutex_pre_unlock(mu, 0);
      return result;
    }
    // A waiter evaluating its own condition inside Await/LockWhen, where
    // TSan already considers the mutex released (or not yet taken).
    AnnotateAcquired(mu);
    const bool result = cond->Eval();
    AnnotateReleased(mu);
    return result;
  }
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static auto* real = Real<void (*)(Mutex*)>("_ZN4absl7debian35MutexD2Ev");
  real(this);
  __tsan_mutex_destroy(this, 0);
}

void Mutex::Lock() {
  static auto* real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex4LockEv");
  __tsan_mutex_pre_lock(this, 0);
  real(this);
  __tsan_mutex_post_lock(this, 0, 0);
}

bool Mutex::TryLock() {
  static auto* real =
      Real<bool (*)(Mutex*)>("_ZN4absl7debian35Mutex7TryLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool locked = real(this);
  __tsan_mutex_post_lock(
      this,
      __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

void Mutex::ReaderLock() {
  static auto* real =
      Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex10ReaderLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
}

void Mutex::ReaderUnlock() {
  static auto* real =
      Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

void Mutex::Unlock() {
  static auto* real =
      Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_mutex_pre_unlock(this, 0);
  const Mutex* outer = unlocking;
  unlocking = this;
  real(this);
  unlocking = outer;
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::Await(const Condition& cond) {
  static auto* real = Real<void (*)(Mutex*, const Condition*)>(
      "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  const AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&annotated);
  AnnotateReleased(this);
  real(this, &wrapped);
  AnnotateAcquired(this);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto* real = Real<bool (*)(Mutex*, const Condition*, absl::Time)>(
      "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&annotated);
  AnnotateReleased(this);
  const bool result = real(this, &wrapped, deadline);
  AnnotateAcquired(this);
  return result;
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  return AwaitWithDeadline(cond, absl::Now() + timeout);
}

void Mutex::LockWhen(const Condition& cond) {
  static auto* real = Real<void (*)(Mutex*, const Condition*)>(
      "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  const AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&annotated);
  real(this, &wrapped);
  AnnotateAcquired(this);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto* real = Real<bool (*)(Mutex*, const Condition*, absl::Time)>(
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&annotated);
  const bool result = real(this, &wrapped, deadline);
  AnnotateAcquired(this);
  return result;
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  return LockWhenWithDeadline(cond, absl::Now() + timeout);
}

void CondVar::Wait(Mutex* mu) {
  static auto* real = Real<void (*)(CondVar*, Mutex*)>(
      "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  AnnotateReleased(mu);
  real(this, mu);
  AnnotateAcquired(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  return WaitWithDeadline(mu, absl::Now() + timeout);
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto* real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  AnnotateReleased(mu);
  const bool result = real(this, mu, deadline);
  AnnotateAcquired(mu);
  return result;
}

void Notification::Notify() {
  static auto* real =
      Real<void (*)(Notification*)>("_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static auto* real = Real<void (*)(const Notification*)>(
      "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  return WaitForNotificationWithDeadline(absl::Now() + timeout);
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static auto* real = Real<bool (*)(const Notification*, absl::Time)>(
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
