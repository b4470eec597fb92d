// input_read_section.h — reading an input's value between batches of SetInputs.
#pragma once

#include "engine_impl.h"

namespace turbine::internal {

// InputReadSection holds the engine's input_batch_mu shared while it lives, if `task` is an
// input (EngineImpl::input_batch_mu says why). Without `may_wait` it only tries: a thread
// that must not block (a server's, in ReadAsync) leaves the read to a worker when a batch
// is being applied, and entered() says so.
class InputReadSection {
 public:
  InputReadSection(EngineImpl& engine, const TaskState& task, bool may_wait)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (task.fn != engine.input_function) return;
    if (may_wait) {
      engine.input_batch_mu.ReaderLock();
    } else if (!engine.input_batch_mu.ReaderTryLock()) {
      entered_ = false;
      return;
    }
    mu_ = &engine.input_batch_mu;
  }
  ~InputReadSection() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (mu_ != nullptr) mu_->ReaderUnlock();
  }
  InputReadSection(const InputReadSection&) = delete;
  InputReadSection& operator=(const InputReadSection&) = delete;

  bool entered() const { return entered_; }

 private:
  Mutex* mu_ = nullptr;
  bool entered_ = true;
};

}  // namespace turbine::internal
