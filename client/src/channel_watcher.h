// channel_watcher.h — a thread that keeps a channel's connection looked at, so that a
// daemon which went away is noticed when it goes, not when the next call is written into
// its dead connection.
//
// gRPC's client learns that a connection closed only while some thread polls it: a call
// waiting for its reply does, an idle channel has only gRPC's backup poller, every 5 s. So
// after a daemon restart an idle Client's first call went out on the old connection and
// failed ("UNAVAILABLE: Broken pipe", or "Connection reset by peer" over TCP) although the
// new daemon was up. The watcher's thread waits on the channel's connectivity state, which
// makes gRPC poll the connection all the time: the close is seen at once (the channel goes
// IDLE) and the next call connects anew. It costs one sleeping thread per Client.
//
// Thread-safety: Stop and the destructor are for the owner's thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <thread>

namespace turbine::client::detail {

class ChannelWatcher {
 public:
  // Starts watching `channel`, which must outlive Stop().
  explicit ChannelWatcher(grpc::Channel* channel);
  // Joins the thread. REQUIRES: Stop() was called and the channel destroyed since (its
  // shutdown ends the pending watch and so wakes the thread).
  ~ChannelWatcher();
  ChannelWatcher(const ChannelWatcher&) = delete;
  ChannelWatcher& operator=(const ChannelWatcher&) = delete;

  // Stop makes the thread touch the channel no more; after it the channel may be destroyed.
  void Stop();

 private:
  void Run();

  grpc::Channel* const channel_;
  grpc::CompletionQueue queue_;
  std::mutex mu_;
  bool stopped_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace turbine::client::detail
