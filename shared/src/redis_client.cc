// redis_client.cc — cluster routing over hiredis's blocking API (redis_client.h).
#include "turbine/shared/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>

#include "turbine/shared/key_slot.h"

namespace turbine::shared {
namespace {

using Clock = std::chrono::steady_clock;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(Clock::duration d) {
  const auto micros =
      std::max<int64_t>(1000, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  return timeval{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
}

// Debian's Abseil has its own string_view, so string helpers here are std-only.
template <class... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  ((out += parts), ...);
  return out;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

bool SplitAddress(std::string_view address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  *host = std::string(address.substr(0, colon));
  const std::string_view digits = address.substr(colon + 1);
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), *port);
  return error == std::errc() && end == digits.data() + digits.size() && *port > 0 && *port < 65536;
}

std::string_view ReplyText(const redisReply* reply) {
  return std::string_view(reply->str, reply->len);
}

// Op is one command of a call, with where it goes next and what came back.
struct Op {
  std::vector<std::string> args;
  uint16_t slot = 0;
  std::string target;   // the node's address
  bool asking = false;  // send ASKING first (an ASK redirect)
  // A read of a record (MultiGet): a key of another type is foreign data, not a failure.
  bool read = false;
  bool done = false;
  bool unreached = false;  // failed because its node could not be reached
  absl::Status status;
  std::optional<std::string> value;  // a bulk string reply
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseRedisUrl(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) {
    return absl::InvalidArgumentError(Cat("shared cache address must start with redis://: ", url));
  }
  const std::string_view rest = url.substr(kScheme.size());
  if (const size_t at = rest.find('@'); at != std::string_view::npos) {
    // Not echoed: what comes before the @ may be a password.
    return absl::InvalidArgumentError(
        Cat("shared cache address must not hold a user or password (redis://...@",
            rest.substr(at + 1),
            "): give them with --shared-cache-user and --shared-cache-password-file"));
  }
  std::vector<std::string> seeds;
  for (std::string_view part : Split(rest, ',')) {
    std::string host;
    int port = 0;
    if (!SplitAddress(part, &host, &port)) {
      return absl::InvalidArgumentError(
          Cat("shared cache address needs HOST:PORT, got \"", part, "\" in ", url));
    }
    seeds.emplace_back(part);
  }
  return seeds;
}

class RedisClient::Impl {
 public:
  explicit Impl(RedisOptions options) : options_(std::move(options)) {}
  ~Impl() {
    for (auto& [address, node] : nodes_) {
      if (node->context != nullptr) redisFree(node->context);
    }
  }

  // Node is one server and our connection to it.
  struct Node {
    std::string host;
    int port = 0;
    std::mutex mu;
    redisContext* context = nullptr;  // guarded by mu; null: not connected
    // The connection's socket, for Stop, which cannot take `mu` (a round trip waiting on
    // the socket holds it). Guarded by fd_mu, which the socket is closed under: Stop never
    // shuts down a descriptor number that was since given to another file.
    std::mutex fd_mu;
    int fd = -1;
    bool connected_before = false;    // guarded by mu
    // Its last connect failed: it is asked for the slot map only after every other node
    // (RefreshSlots), until a connect to it works again.
    std::atomic<bool> last_connect_failed{false};
  };

  absl::Status RefreshSlots(Clock::time_point deadline) {
    std::vector<std::string> candidates = Primaries();
    for (const std::string& seed : options_.seeds) candidates.push_back(seed);
    // A dead node first among the seeds would cost its connect at every refresh, before
    // the live ones: under a short timeout, none got its turn, and the tier stayed down.
    // Not for a while only: the pause after a lookup that reached no node lasts as long.
    std::stable_partition(candidates.begin(), candidates.end(), [&](const std::string& address) {
      const Node* node = GetNode(address);
      return node == nullptr || !node->last_connect_failed.load();
    });
    absl::Status last = absl::UnavailableError("no seed node given");
    for (const std::string& address : candidates) {
      if (Clock::now() >= deadline || stopped_.load()) break;
      Node* node = GetNode(address);
      if (node == nullptr) continue;
      absl::StatusOr<ReplyPtr> reply = Roundtrip(node, {"CLUSTER", "SLOTS"}, deadline);
      if (!reply.ok()) {
        last = reply.status();
        continue;
      }
      last = ApplySlots(**reply, *node, address);
      if (last.ok()) break;
    }
    std::lock_guard<std::mutex> lock(state_mu_);
    last_refresh_error_ = last.ok() ? "" : std::string(last.message());
    return last;
  }

  // Stop makes every call from now on fail at once, and those waiting on a node return:
  // their sockets are shut down (the blocked read ends), not closed (their callers close
  // them, as after any I/O error).
  void Stop() {
    stopped_.store(true);
    std::vector<Node*> nodes;
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      for (const auto& [address, node] : nodes_) nodes.push_back(node.get());
    }
    for (Node* node : nodes) {
      std::lock_guard<std::mutex> lock(node->fd_mu);
      if (node->fd >= 0) ::shutdown(node->fd, SHUT_RDWR);
    }
  }

  // ReplyError is a command's error reply as a status whose code says what kind of failure
  // it is (the daemon logs one line per kind and outage): the credentials (NOAUTH, a
  // password now required; WRONGPASS; NOPERM, the ACL), a full Redis (OOM, `maxmemory`
  // with `noeviction`), or else the cache not serving (CLUSTERDOWN, LOADING, READONLY...).
  static absl::Status ReplyError(std::string_view text) {
    const std::string message = Cat("shared cache: ", text);
    if (text.starts_with("NOAUTH") || text.starts_with("WRONGPASS") || text.starts_with("NOPERM")) {
      return absl::PermissionDeniedError(message);
    }
    if (text.starts_with("OOM")) return absl::ResourceExhaustedError(message);
    return absl::UnavailableError(message);
  }

  // Stopped is what a call of a stopped client gets: CANCELLED, not a failure of the cache
  // (the daemon stops; the cache may be fine).
  static absl::Status Stopped() {
    return absl::CancelledError("the shared cache client is stopped");
  }

  absl::Status Execute(std::vector<Op>& ops) {
    if (stopped_.load()) return Stopped();
    const Clock::time_point start = Clock::now();
    if (start < Clock::time_point(Clock::duration(unavailable_until_.load()))) {
      return absl::UnavailableError("shared cache unreachable (retrying later)");
    }
    const Clock::time_point deadline = start + options_.timeout;
    if (refresh_needed_.exchange(false)) {
      ++slot_refreshes_;
      if (!RefreshSlots(deadline).ok()) refresh_needed_ = true;
    }
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      for (Op& op : ops) op.target = owner_of_slot_[op.slot];
    }
    bool reached_a_node = Rounds(ops, deadline);
    // A node that could not be reached may have failed over while this client was idle:
    // its replica serves its slots, which only a fresh CLUSTER SLOTS names. Read it now and
    // send those operations once more, rather than fail them and every call for a while.
    if (std::any_of(ops.begin(), ops.end(), [](const Op& op) { return op.unreached; }) &&
        Clock::now() < deadline && !stopped_.load() && refresh_needed_.exchange(false)) {
      ++slot_refreshes_;
      if (RefreshSlots(deadline).ok()) {
        std::lock_guard<std::mutex> lock(state_mu_);
        for (Op& op : ops) {
          if (!op.unreached) continue;
          Op fresh;  // sent again from the start, to the slot's owner now
          fresh.args = std::move(op.args);
          fresh.slot = op.slot;
          fresh.read = op.read;  // (a designated initializer of the rest lost it)
          fresh.target = owner_of_slot_[op.slot];
          op = std::move(fresh);
        }
      } else {
        refresh_needed_ = true;
      }
      if (std::any_of(ops.begin(), ops.end(), [](const Op& op) { return !op.done; })) {
        reached_a_node = Rounds(ops, deadline) || reached_a_node;
      }
    }
    if (!reached_a_node) {
      unavailable_until_ = (Clock::now() + options_.retry_after).time_since_epoch().count();
    }
    for (Op& op : ops) {
      // Failed because the client was stopped meanwhile (its socket shut down): said so.
      if (!op.done || !op.status.ok()) {
        if (stopped_.load()) return Stopped();
        return op.done ? op.status : absl::UnavailableError("too many redirects");
      }
    }
    return absl::OkStatus();
  }

  // Rounds sends the operations not done to their targets, following redirects; true if
  // any node was reached.
  bool Rounds(std::vector<Op>& ops, Clock::time_point deadline) {
    bool reached_a_node = false;
    for (int round = 0; round <= options_.max_redirects; ++round) {
      std::map<std::string, std::vector<Op*>> by_node;
      for (Op& op : ops) {
        if (!op.done) by_node[op.target].push_back(&op);
      }
      if (by_node.empty()) break;
      for (auto& [address, node_ops] : by_node) {
        reached_a_node = Pipeline(address, node_ops, deadline) || reached_a_node;
      }
    }
    return reached_a_node;
  }

  void RefreshLater() { refresh_needed_ = true; }

  const RedisOptions& options() const { return options_; }
  bool getrange_refused() const { return getrange_refused_.load(); }

  bool cluster_mode() const {
    std::lock_guard<std::mutex> lock(state_mu_);
    return cluster_mode_;
  }

  std::vector<std::string> Primaries() const {
    std::lock_guard<std::mutex> lock(state_mu_);
    std::vector<std::string> out;
    for (const std::string& owner : owner_of_slot_) {
      if (!owner.empty()) out.push_back(owner);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  Counters counters() const {
    return Counters{round_trips_.load(), redirects_.load(), reconnects_.load(),
                    slot_refreshes_.load()};
  }

 private:
  Node* GetNode(const std::string& address) {
    std::lock_guard<std::mutex> lock(state_mu_);
    auto it = nodes_.find(address);
    if (it != nodes_.end()) return it->second.get();
    auto node = std::make_unique<Node>();
    if (!SplitAddress(address, &node->host, &node->port)) return nullptr;
    Node* raw = node.get();
    nodes_.emplace(address, std::move(node));
    return raw;
  }

  // Connect opens the node's connection if it has none. REQUIRES: node->mu held.
  absl::Status Connect(Node* node, Clock::time_point deadline) {
    if (node->context != nullptr) return absl::OkStatus();
    // Stopped: no new connection, whose connect could wait out the deadline (a host behind
    // a partition drops it), after the stop cut the old one.
    if (stopped_.load()) return Stopped();
    // Past the deadline (what came before took it): no connect that nothing could use.
    if (Clock::now() >= deadline) return absl::DeadlineExceededError("shared cache call timed out");
    const timeval tv = ToTimeval(deadline - Clock::now());
    redisContext* context = redisConnectWithTimeout(node->host.c_str(), node->port, tv);
    if (context == nullptr || context->err != 0) {
      std::string error = context != nullptr ? context->errstr : "out of memory";
      if (context != nullptr) redisFree(context);
      // A node that cannot be reached may have failed over: its slots served by its replica,
      // which only a fresh CLUSTER SLOTS names (nobody redirects us from a dead node).
      refresh_needed_ = true;
      node->last_connect_failed = true;
      return absl::UnavailableError(
          Cat("cannot connect to ", node->host, ":", std::to_string(node->port), ": ", error));
    }
    if (node->connected_before) ++reconnects_;
    node->connected_before = true;
    node->last_connect_failed = false;
    node->context = context;
    {
      std::lock_guard<std::mutex> lock(node->fd_mu);
      node->fd = context->fd;
    }
    // A Stop that swept the nodes before this fd was set has set stopped_ first: nothing is
    // sent on the connection (a write to a socket shut down would raise SIGPIPE).
    if (stopped_.load()) {
      Disconnect(node);
      return Stopped();
    }
    if (!options_.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!options_.user.empty()) auth.push_back(options_.user);
      auth.push_back(options_.password);
      absl::StatusOr<ReplyPtr> reply = SendLocked(node, auth, deadline);
      if (!reply.ok()) {
        // Never left connected unauthenticated: every later command would be answered
        // NOAUTH, and nothing would connect again (the deadline may pass before AUTH is
        // even sent, the connect having taken it).
        Disconnect(node);
        return reply.status();
      }
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        Disconnect(node);
        return absl::PermissionDeniedError(Cat("refused AUTH: ", ReplyText(reply->get())));
      }
    }
    return absl::OkStatus();
  }

  void Disconnect(Node* node) {
    if (node->context != nullptr) {
      std::lock_guard<std::mutex> lock(node->fd_mu);
      redisFree(node->context);  // closes the socket
      node->fd = -1;
    }
    node->context = nullptr;
    refresh_needed_ = true;  // a node that failed may have been replaced
  }

  // SendLocked sends one command and reads its reply. REQUIRES: node->mu held, connected.
  absl::StatusOr<ReplyPtr> SendLocked(Node* node, const std::vector<std::string>& args,
                                      Clock::time_point deadline) {
    std::vector<Op> one(1);
    one[0].args = args;
    std::vector<ReplyPtr> replies;
    absl::Status status = PipelineLocked(node, {&one[0]}, deadline, &replies);
    if (!status.ok()) return status;
    return std::move(replies[0]);
  }

  absl::StatusOr<ReplyPtr> Roundtrip(Node* node, const std::vector<std::string>& args,
                                     Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(node->mu);
    absl::Status connected = Connect(node, deadline);
    if (!connected.ok()) return connected;
    return SendLocked(node, args, deadline);
  }

  // PipelineLocked writes every op's command (after ASKING where asked) and reads the
  // replies, the command's into `replies`. On an I/O error the connection is closed.
  absl::Status PipelineLocked(Node* node, const std::vector<Op*>& ops, Clock::time_point deadline,
                              std::vector<ReplyPtr>* replies) {
    const Clock::duration left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      return absl::DeadlineExceededError("shared cache call timed out");
    }
    redisContext* context = node->context;
    redisSetTimeout(context, ToTimeval(left));
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const Op* op : ops) {
      if (op->asking) redisAppendCommand(context, "ASKING");
      argv.clear();
      lengths.clear();
      for (const std::string& arg : op->args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data());
    }
    ++round_trips_;
    for (const Op* op : ops) {
      for (int i = op->asking ? 2 : 1; i > 0; --i) {
        void* reply = nullptr;
        if (redisGetReply(context, &reply) != REDIS_OK || reply == nullptr) {
          std::string error = context->errstr;
          const bool timed_out = context->err == REDIS_ERR_IO && (errno == EAGAIN);
          Disconnect(node);  // the stream is out of step now
          return timed_out ? absl::DeadlineExceededError("shared cache call timed out")
                           : absl::UnavailableError(Cat("shared cache ", node->host, ":",
                                                        std::to_string(node->port), ": ", error));
        }
        ReplyPtr owned(static_cast<redisReply*>(reply));
        if (i == 1) replies->push_back(std::move(owned));  // ASKING's +OK is dropped
      }
    }
    return absl::OkStatus();
  }

  // Pipeline runs `ops` on one node and files each reply into its op: a value, an error, or
  // where to send it next. Returns whether the node answered.
  bool Pipeline(const std::string& address, const std::vector<Op*>& ops,
                Clock::time_point deadline) {
    Node* node = address.empty() ? nullptr : GetNode(address);
    std::vector<ReplyPtr> replies;
    absl::Status status;
    if (node == nullptr) {
      // The slot map has no owner for it: most likely it could not be read at all (a seed
      // that does not resolve, or does not answer), which is what to say.
      std::string why;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        why = last_refresh_error_;
      }
      // Never read: whether it is a cluster is not known either (a plain Redis down at
      // start), nor is there a slot to speak of.
      const bool never_read = Primaries().empty();
      if (never_read) {
        status = absl::UnavailableError(why.empty() ? "no Redis has answered yet"
                                                    : Cat("no Redis has answered yet (", why, ")"));
      } else {
        status = absl::UnavailableError(
            why.empty() ? "no node serves this key's slot"
                        : Cat("no node serves this key's slot: the cluster's slot map could not "
                              "be read (",
                              why, ")"));
      }
      refresh_needed_ = true;
    } else {
      std::lock_guard<std::mutex> lock(node->mu);
      status = Connect(node, deadline);
      if (status.ok()) status = PipelineLocked(node, ops, deadline, &replies);
      // A connection the server no longer counts as authenticated: connect (and AUTH)
      // again next time rather than be refused for good. Under this lock, so that it is
      // this connection that goes, not one another thread made since.
      if (status.ok() && std::any_of(replies.begin(), replies.end(), [](const ReplyPtr& reply) {
            return reply->type == REDIS_REPLY_ERROR && ReplyText(reply.get()).starts_with("NOAUTH");
          })) {
        Disconnect(node);
      }
    }
    if (!status.ok()) {
      for (Op* op : ops) {
        op->done = true;
        op->status = status;
        op->unreached = node == nullptr || status.code() == absl::StatusCode::kUnavailable;
      }
      return false;
    }
    for (size_t i = 0; i < ops.size(); ++i) {
      Op& op = *ops[i];
      const redisReply* reply = replies[i].get();
      op.asking = false;
      if (reply->type == REDIS_REPLY_ERROR) {
        std::string_view text = ReplyText(reply);
        const bool moved = text.starts_with("MOVED ");
        const bool ask = text.starts_with("ASK ");
        if (moved || ask) {
          // "MOVED 3999 127.0.0.1:6381": the slot and where it lives now.
          std::vector<std::string_view> parts = Split(text, ' ');
          if (parts.size() == 3) {
            ++redirects_;
            op.target = std::string(parts[2]);
            if (op.target.front() == ':') op.target = node->host + op.target;  // unknown host
            op.asking = ask;
            if (moved) {
              std::lock_guard<std::mutex> lock(state_mu_);
              owner_of_slot_[op.slot] = op.target;
              refresh_needed_ = true;  // others moved too, most likely
            }
            continue;
          }
        }
        if (op.read && op.args[0] == "GETRANGE" && text.starts_with("NOPERM")) {
          // A user whose ACL allows GET only (one made for turbined before it read with
          // GETRANGE): whole values from now on, this one in the next round.
          getrange_refused_ = true;
          op.args = {"GET", op.args[1]};
          continue;
        }
        op.done = true;
        if (op.read && text.starts_with("WRONGTYPE")) {
          op.value.emplace(text);  // foreign data under the key (redis_client.h)
          continue;
        }
        op.status = ReplyError(text);
        continue;
      }
      op.done = true;
      if (reply->type == REDIS_REPLY_STRING) op.value.emplace(ReplyText(reply));
    }
    return true;
  }

  // ApplySlots reads a CLUSTER SLOTS reply (or the error of a server without cluster
  // mode) into the slot map.
  absl::Status ApplySlots(const redisReply& reply, const Node& asked, const std::string& address) {
    std::array<std::string, kSlotCount> owners;
    bool cluster = true;
    if (reply.type == REDIS_REPLY_ERROR) {
      const std::string_view text = ReplyText(&reply);
      if (text.starts_with("NOAUTH") || text.starts_with("WRONGPASS") ||
          text.starts_with("NOPERM")) {
        return absl::PermissionDeniedError(Cat("shared cache at ", address, ": ", text));
      }
      if (text.find("cluster support disabled") == std::string_view::npos) {
        return absl::UnavailableError(
            Cat("CLUSTER SLOTS failed on ", address, ": ", ReplyText(&reply)));
      }
      cluster = false;
      owners.fill(address);
    } else if (reply.type == REDIS_REPLY_ARRAY) {
      // Each element: [first slot, last slot, [host, port, id...] (primary), replicas...].
      for (size_t i = 0; i < reply.elements; ++i) {
        const redisReply* range = reply.element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            range->element[0]->type != REDIS_REPLY_INTEGER ||
            range->element[1]->type != REDIS_REPLY_INTEGER ||
            range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2 ||
            range->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            range->element[2]->element[1]->type != REDIS_REPLY_INTEGER) {
          return absl::UnavailableError("malformed CLUSTER SLOTS reply");
        }
        const long long first = range->element[0]->integer;
        const long long last = range->element[1]->integer;
        if (first < 0 || last >= kSlotCount || first > last) {
          return absl::UnavailableError("CLUSTER SLOTS names a slot out of range");
        }
        std::string host(ReplyText(range->element[2]->element[0]));
        if (host.empty() || host == "?") host = asked.host;  // "the address you used"
        const std::string owner =
            Cat(host, ":", std::to_string(range->element[2]->element[1]->integer));
        for (long long slot = first; slot <= last; ++slot) owners[slot] = owner;
      }
    } else {
      return absl::UnavailableError("unexpected CLUSTER SLOTS reply");
    }
    std::lock_guard<std::mutex> lock(state_mu_);
    owner_of_slot_ = std::move(owners);
    cluster_mode_ = cluster;
    return absl::OkStatus();
  }

  const RedisOptions options_;
  mutable std::mutex state_mu_;                         // never held while waiting on the network
  std::array<std::string, kSlotCount> owner_of_slot_;   // guarded by state_mu_
  bool cluster_mode_ = true;                            // guarded by state_mu_
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // guarded by state_mu_; never shrinks
  std::string last_refresh_error_;  // guarded by state_mu_; empty: the last refresh worked
  std::atomic<bool> refresh_needed_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> getrange_refused_{false};  // the ACL allows GET, not GETRANGE
  std::atomic<Clock::rep> unavailable_until_{0};
  std::atomic<uint64_t> round_trips_{0}, redirects_{0}, reconnects_{0}, slot_refreshes_{0};
};

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(RedisOptions options) {
  if (options.seeds.empty()) return absl::InvalidArgumentError("shared cache: no seed node");
  const bool lazily = options.connect_lazily;
  auto impl = std::make_unique<Impl>(std::move(options));
  // Start-up may take longer than a lookup: a few timeouts' worth.
  absl::Status status = impl->RefreshSlots(Clock::now() + std::chrono::seconds(lazily ? 1 : 5));
  // Refused credentials are a setting to fix, not a cluster that may come up later.
  if (!status.ok() && (!lazily || absl::IsPermissionDenied(status))) return status;
  if (!status.ok()) impl->RefreshLater();
  return std::unique_ptr<RedisClient>(new RedisClient(std::move(impl)));
}

RedisClient::RedisClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisClient::~RedisClient() = default;

absl::StatusOr<std::vector<std::optional<std::string>>> RedisClient::MultiGet(
    const std::vector<std::string>& keys) {
  const size_t most = impl_->options().max_value_bytes;
  const bool ranged = most > 0 && !impl_->getrange_refused();
  std::vector<Op> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    // GETRANGE's end is inclusive: one byte more than the most tells a value is larger.
    ops[i].args = ranged ? std::vector<std::string>{"GETRANGE", keys[i], "0", std::to_string(most)}
                         : std::vector<std::string>{"GET", keys[i]};
    ops[i].slot = KeySlot(keys[i]);
    ops[i].read = true;
  }
  absl::Status status = impl_->Execute(ops);
  if (!status.ok()) return status;
  std::vector<std::optional<std::string>> values;
  values.reserve(ops.size());
  for (Op& op : ops) {
    // GETRANGE reads a missing key as an empty string.
    if (op.args[0] == "GETRANGE" && op.value.has_value() && op.value->empty()) op.value.reset();
    values.push_back(std::move(op.value));
  }
  return values;
}

absl::Status RedisClient::MultiSet(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  std::vector<Op> ops(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    ops[i].args = {"SET", entries[i].first, entries[i].second};
    ops[i].slot = KeySlot(entries[i].first);
  }
  return impl_->Execute(ops);
}

absl::Status RedisClient::Delete(const std::vector<std::string>& keys) {
  std::vector<Op> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].args = {"DEL", keys[i]};
    ops[i].slot = KeySlot(keys[i]);
  }
  return impl_->Execute(ops);
}

bool RedisClient::cluster_mode() const { return impl_->cluster_mode(); }
std::vector<std::string> RedisClient::Primaries() const { return impl_->Primaries(); }
RedisClient::Counters RedisClient::counters() const { return impl_->counters(); }
void RedisClient::Stop() { impl_->Stop(); }

}  // namespace turbine::shared
