#include "channel_watcher.h"

#include <chrono>

namespace turbine::client::detail {
namespace {

// How long one watch lasts before it is renewed. Only a safety net for destruction: the
// channel's shutdown ends the watch at once.
constexpr std::chrono::seconds kWatchRenewal{10};

}  // namespace

ChannelWatcher::ChannelWatcher(grpc::Channel* channel)
    : channel_(channel), thread_([this] { Run(); }) {}

ChannelWatcher::~ChannelWatcher() {
  thread_.join();
  queue_.Shutdown();
  void* tag;
  bool ok;
  while (queue_.Next(&tag, &ok)) {
  }
}

void ChannelWatcher::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
}

void ChannelWatcher::Run() {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      // Never asks to connect: watching must not open connections nobody calls on.
      channel_->NotifyOnStateChange(channel_->GetState(/*try_to_connect=*/false),
                                    std::chrono::system_clock::now() + kWatchRenewal, &queue_,
                                    nullptr);
    }
    void* tag;
    bool ok;
    if (!queue_.Next(&tag, &ok)) return;
  }
}

}  // namespace turbine::client::detail
