"""client.py — Client: calls, pipelined calls, inputs and watches over one channel to turbined.

Thread-safety: a Client may be used from any number of threads at once (its calls share one
gRPC channel); a Watch is iterated by one thread and may be cancelled from any.
"""
import collections.abc
import json
import math
import operator
import os
import random
import re
import ssl
import time

import grpc

from turbine_client import values
from turbine_client.errors import (FunctionError, Result, TurbineError, handshake_failure,
                                   status_code)
from turbine_client.v1 import turbine_pb2 as pb
from turbine_client.v1 import turbine_pb2_grpc as pb_grpc

DEFAULT_DATA_DIR = ".turbine"
DEFAULT_TIMEOUT = 30.0  # seconds, for each call but watch (the C++ client's default too)
MAX_MESSAGE_BYTES = 64 << 20  # gRPC Python's own default (4 MiB) would refuse a large file

# A call that meets a connection the daemon closed (it restarted) fails with UNAVAILABLE
# before the daemon saw it: gRPC Python notices a closed connection only when it next
# writes to it. Every RPC of the protocol can be repeated safely (calls are memoized, an
# input batch sets the same values again: only its count of changed inputs can differ, if
# the first attempt was applied and its reply lost), so they are retried, a few times at
# short intervals: a daemon that is really down still fails fast (within half a second).
# gRPC retries the unary ones. Not the streams: a stream gRPC retried whose daemon died
# before its first reply waited for ever, its deadline too; the client retries those
# itself (_STREAM_BACKOFF), before their first reply only.
_UNARY_METHODS = ("Call", "SetInputs", "Stats", "ListFunctions", "Flush", "Shutdown", "Graph",
                  "Trace", "DeleteInputs", "CollectGarbage", "Why")
_SERVICE_CONFIG = json.dumps({"methodConfig": [{
    "name": [{"service": "turbine.v1.Turbine", "method": method} for method in _UNARY_METHODS],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
}]})
_STREAM_BACKOFF = (0.05, 0.1, 0.2)  # seconds before each retry of a stream
_WATCH_ACCEPTED = "turbine-watch-accepted"  # initial metadata of a watch the daemon has
# Trailing metadata of a watch the daemon ended because other clients' unread replies fill
# its memory for them: milliseconds to wait before watching again (turbine.proto, Watch).
_RETRY_AFTER = "turbine-retry-after-ms"
_MOST_RETRY_AFTER = 30.0  # seconds: the wait doubles while the watch is refused again
# After a failed connection gRPC waits before the next attempt, up to 120 s by default, and
# meanwhile fails calls at once: a daemon back after a restart would stay unreachable that
# long. Reconnecting to a local daemon costs little, so try at least every second.
_RECONNECT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                      ("grpc.max_reconnect_backoff_ms", 1000)]

_SOURCES = {pb.SOURCE_MEMORY: "memory", pb.SOURCE_DISK: "disk", pb.SOURCE_EXECUTED: "executed",
            pb.SOURCE_SHARED: "shared"}
_CLIENT_TIMEOUT = object()  # "the Client's timeout", where None means "no deadline"
_MOST_PEM_BYTES = 16 << 20  # a TLS file read beyond this is no PEM file
# Why a connection neither failed nor answered (the C++ client says the same).
_ACCEPTED_BUT_NOT_ANSWERED = (
    "the connection was taken but not answered (a turbined at its --max-connections bound "
    "holds new connections until one closes; so does a stopped process)")


_MAX_UNIX_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


def _check_port(address):
    """Refuses a numeric TCP port that is not a number from 0 to 65535. gRPC would take one
    past 65535 modulo 65536 (99999 is 34463), a negative one too, and the digits before
    anything else ("7878x" is 7878): each connects to another port without a word. What is
    not a port is left to gRPC: a unix: address, an IPv6 literal without a port ("[::1]"),
    a URI path ("dns://8.8.8.8:53/host"), a service name ("host:http")."""
    if address.startswith("unix:"):
        # Longer than a socket address holds: gRPC would fail as UNKNOWN, "Failed to create
        # secure client channel", which reads as a TLS problem.
        path = address[len("unix:"):]
        path = path[2:] if path.startswith("//") else path
        if not path:  # gRPC: "empty address list", as if no daemon were there
            raise ValueError(f"the address {address} names no socket path")
        if len(os.fsencode(path)) > _MAX_UNIX_PATH:
            raise ValueError(f"the socket path {path} is {len(os.fsencode(path))} bytes, more "
                             f"than a unix socket address holds ({_MAX_UNIX_PATH}): use a "
                             f"shorter data_dir, or a TCP address")
        return
    if address.startswith("unix-abstract:"):
        return
    host, colon, port = address.rpartition(":")
    # A path is a URI's ("dns://8.8.8.8:53/host"); without a scheme, "host:47100/x" is a
    # port with junk after it, which gRPC would send to DNS whole.
    if not colon or "]" in port or ("://" in address and "/" in port):
        return
    if not host:  # ":47100": gRPC would ask DNS for a host named ""
        raise ValueError(f"address {address} names no host before the port "
                         f"(127.0.0.1{address}, say)")
    if port and not (port[0].isascii() and port[0].isdigit()) and port[0] not in "-+":
        return
    if not (port.isascii() and port.isdigit()):
        raise ValueError(f"address {address}: the port '{port}' is not a number from 0 to 65535")
    if int(port) > 65535:
        raise ValueError(f"address {address}: port {port} is out of range (0 to 65535)")


def default_address(data_dir=DEFAULT_DATA_DIR):
    """Where turbined listens by default for `data_dir`: unix:<absolute data_dir>/turbined.sock.
    A relative data_dir in a working directory that was removed is a ValueError."""
    try:
        absolute = os.path.abspath(data_dir)
    except OSError as error:  # os.getcwd() of a removed directory
        raise ValueError(f"cannot use data directory {data_dir}: the working directory it is "
                         f"relative to cannot be read ({error.strerror})") from None
    return "unix:" + os.path.join(absolute, "turbined.sock")


class Call:
    """One call of call_many: Call("demo.fib", 30), Call("Path.parent", this=ref)."""

    __slots__ = ("function", "args", "this", "version")

    def __init__(self, function, *args, this=None, version=0):
        self.function, self.args, self.this, self.version = function, args, this, version

    def __repr__(self):
        return f"Call({self.function!r}, *{self.args!r}, this={self.this!r})"


def _retry_after(error):
    """The seconds a daemon asked a watch it ended to wait before watching again (it ended it
    for other clients' unread replies), or None."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    for key, value in error.trailing_metadata() or ():
        if key == _RETRY_AFTER:
            try:
                return min(max(int(value), 10) / 1000, _MOST_RETRY_AFTER)
            except ValueError:
                return None
    return None


def _result_key(reply):
    """What makes a watched result new: its value or its error, as the daemon decides."""
    if reply.HasField("error"):
        return b"e" + reply.error.SerializeToString()
    return b"v" + reply.value.SerializeToString()


class Watch:
    """The results of a watched call: the current one, then one each time it changes (an
    equal result is not sent again). Iterating blocks until the next change. cancel() (or
    leaving a `with` block, or the Client's close()) ends the watch: the iteration then
    stops. The daemon ending it
    (shutting down, the connection lost) raises TurbineError. A daemon whose memory for
    unread replies is full (other clients not reading theirs) ends the watch of a large
    value asking it to come back later: the watch waits as asked (1 s, doubling while it is
    refused again, up to 30 s, each wait times a random 0.5 to 1.5, and never past the
    watch's deadline) and goes on, delivering a result only if it is new."""

    def __init__(self, start, deadline, error_of, client_closed):
        self._start = start  # opens the stream, given its timeout
        self._deadline = deadline  # time.monotonic() at which the watch ends, or None
        self._replies = start(_remaining(deadline))
        self._error_of = error_of  # the Client's: a grpc.RpcError as a TurbineError
        self._client_closed = client_closed  # the Client's close() ends the watch too
        self._cancelled = False
        self._received = False
        self._retries = iter(_STREAM_BACKOFF)
        self._last_key = None  # _result_key of the last result delivered
        self._refusals = 0  # in a row, for other clients' unread replies

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                reply = next(self._replies)
            except grpc.RpcError as error:
                if ((self._cancelled or self._client_closed())
                        and error.code() == grpc.StatusCode.CANCELLED):
                    raise StopIteration from None
                wait = _retry_after(error)
                if wait is not None:
                    wait = min(wait * 2 ** min(self._refusals, 5), _MOST_RETRY_AFTER)
                    self._refusals += 1
                    # Refused watches do not all come back at once to fill the budget again.
                    self._sleep(wait * random.uniform(0.5, 1.5))
                elif self._received or not _retry_stream(error, self._retries,
                                                         self._deadline):
                    raise self._error_of(error) from None
                if self._cancelled or self._client_closed():
                    raise StopIteration from None
                self._replies = self._start(_remaining(self._deadline))
                if self._cancelled:  # cancel() ran meanwhile, on the stream before this one
                    self._replies.cancel()
                continue
            self._refusals = 0
            key = _result_key(reply)
            if key != self._last_key:  # after a refusal, the result it had may come again
                break
        self._received = True
        self._last_key = key
        return _result(reply)

    def _sleep(self, seconds):
        """Waits `seconds`, or less if cancel() is called or the watch's deadline comes first
        (the watch opened then fails with DEADLINE_EXCEEDED)."""
        until = time.monotonic() + seconds
        if self._deadline is not None:
            until = min(until, self._deadline)
        while not self._cancelled and not self._client_closed() and time.monotonic() < until:
            time.sleep(max(0, min(0.1, until - time.monotonic())))

    def cancel(self):
        self._cancelled = True
        self._replies.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.cancel()


def _check_key(key):
    """Raises ValueError naming `key` unless it is an input key the daemon can take."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"an input key is a non-empty str, not {key!r}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as os.fsdecode makes of undecodable bytes
        raise ValueError(
            f"input key {key!r} is not UTF-8 text (it holds a lone surrogate)") from None


class _ClosedStub:
    """The stub of a closed Client: every call says so, before gRPC's own words ("Cannot
    invoke RPC on closed channel!")."""

    def __getattr__(self, method):
        raise ValueError(f"this Client is closed: {method} cannot be sent (make a new Client)")


class Client:
    """A connection to turbined.

    address: "unix:PATH", "HOST:PORT", or None for the default socket of `data_dir`
      (unix:<data_dir>/turbined.sock, data_dir defaulting to ./.turbine, as the CLI does).
    token: sent as "authorization: Bearer <token>" with every call (turbined
      --auth-token-file); over plain TCP it travels in clear, so use TLS off loopback.
    tls_ca, tls_cert, tls_key: PEM, each a file path or the PEM bytes themselves. Any of them
      turns TLS on: tls_ca the CA to verify the daemon's certificate with (default: the
      system's roots), tls_cert and tls_key (together) a client certificate for mutual TLS.
      tls=True turns TLS on with the system's roots alone. TLS is for TCP addresses.
    server_name: the name the daemon's certificate must carry when it is not the address's
      host (connecting to an IP address with a certificate for a DNS name); it turns TLS on
      too.
    timeout: the deadline, in seconds, of each call, call_many and set_inputs (None: no
      deadline); each of them also takes its own. A watch has none unless given one.
    wait_for_ready: False (the default): a call while the daemon cannot be reached fails at
      once with UNAVAILABLE. True: it waits for the daemon, up to its deadline, and then
      fails with DEADLINE_EXCEEDED.

    Errors: ValueError (bad options, or a value that cannot be sent, before anything is
    sent; OSError for an unreadable PEM file); TurbineError for a call that failed;
    FunctionError for an error the function returned.
    """

    def __init__(self, address=None, *, token=None, tls=None, tls_ca=None, tls_cert=None,
                 tls_key=None, server_name=None, timeout=DEFAULT_TIMEOUT, wait_for_ready=False,
                 data_dir=DEFAULT_DATA_DIR, max_message_bytes=MAX_MESSAGE_BYTES):
        if address is not None and not isinstance(address, str):
            raise ValueError(f"an address is a str, \"unix:PATH\" or \"HOST:PORT\", not "
                             f"{address!r}")
        if not isinstance(wait_for_ready, bool):
            raise ValueError(f"wait_for_ready is True or False, not {wait_for_ready!r}")
        # "" too, as the CLI's --connect '': gRPC would fail to make a channel to it.
        self.address = address if address else default_address(data_dir)
        _check_port(self.address)
        self.timeout = _checked_timeout(timeout)
        self._metadata = _auth_metadata(token)
        self._wait_for_ready = wait_for_ready
        _check_message_bytes(max_message_bytes)
        self._max_message_bytes = max_message_bytes
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.service_config", _SERVICE_CONFIG), *_RECONNECT_OPTIONS]
        if tls is None:  # as the CLI: any TLS option, server_name too, turns it on
            tls = (tls_ca is not None or tls_cert is not None or tls_key is not None
                   or server_name is not None)
        # What explains a failed handshake (handshake_failure).
        self._tls = bool(tls)
        self._ca_file = (None if tls_ca is None else "the CA given as bytes"
                         if isinstance(tls_ca, bytes) else os.fspath(tls_ca))
        self._client_cert = tls_cert is not None
        if tls:
            credentials = tls_credentials(self.address, tls_ca, tls_cert, tls_key)
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.secure_channel(self.address, credentials, options)
        else:
            if server_name or tls_ca is not None or tls_cert is not None or tls_key is not None:
                raise ValueError("server_name and tls_* are for TLS, which tls=False turns off")
            self._channel = grpc.insecure_channel(self.address, options)
        self._stub = pb_grpc.TurbineStub(self._channel)

    def call(self, function, *args, this=None, version=0, timeout=_CLIENT_TIMEOUT):
        """Calls `function` with `args` (on `this`, a Ref, for a method; `version` 0 is the
        highest). Returns its Result; raises FunctionError if the function returned an
        error, TurbineError if the call failed."""
        request = _request(function, args, this, version)
        try:
            reply = self._stub.Call(request, **self._call_options(timeout))
        except grpc.RpcError as error:
            raise self._error(error) from None
        result = _result(reply)
        if result.error is not None:
            raise result.error
        return result

    def call_many(self, calls, timeout=_CLIENT_TIMEOUT):
        """Makes many calls pipelined on one CallBatches stream, many calls per message,
        and returns their Results in the order of `calls`. Each call is a Call or a tuple
        (function, *args). A call that fails has its error in its Result (a refused one:
        TurbineError with source None; a function's error: FunctionError) and does not stop
        the others (a call larger than a message may be, the client's max_message_bytes or
        the daemon's --max-message-bytes, is refused with RESOURCE_EXHAUSTED, alone). Raises
        TurbineError only when the stream itself fails (no daemon, a
        wrong token, the deadline, which covers all the calls, a daemon stopping before it
        answered them all, or refusing some of them because it stops)."""
        # Iterated, a str would be calls of its letters.
        if isinstance(calls, (str, bytes, bytearray)) or not isinstance(calls, collections.abc.Iterable):
            raise ValueError(f"calls is a list of calls, each a Call or a tuple (function, "
                             f"*args), not {calls!r}")
        requests = [_request_of(call, index) for index, call in enumerate(calls)]
        if not requests:
            return []
        results = [None] * len(requests)
        options = self._call_options(timeout)
        deadline = _deadline(options["timeout"])
        retries = iter(_STREAM_BACKOFF)
        # A call larger than a message may be (this client's, or the daemon's once it said)
        # is refused here, alone: sent, it would end the stream and every call on it.
        own_limit = self._max_message_bytes - _BATCH_FRAMING
        daemon_limit = None
        batch_bytes = max(1, min(_BATCH_BYTES, own_limit))
        pending = requests
        while True:
            pending = _refuse_oversized(pending, results, own_limit, daemon_limit)
            if not pending:
                break
            options["timeout"] = _remaining(deadline)
            batches = self._stub.CallBatches(_batches_of(pending, batch_bytes), **options)
            answered = received = False
            try:
                for batch in batches:
                    received = True
                    for reply in batch.replies:
                        if reply.id >= len(results) or results[reply.id] is not None:
                            raise TurbineError(grpc.StatusCode.INTERNAL,
                                               f"the daemon answered call id {reply.id}, which "
                                               "is not waiting for an answer")
                        results[reply.id] = _result(reply)
                answered = True
                break
            except grpc.RpcError as error:
                smaller = _daemon_message_limit(error)
                if smaller is not None and smaller == own_limit:
                    # This client's own limit, on what it receives (it sends nothing larger):
                    # a reply batch the daemon made larger than it, which no resend helps.
                    raise TurbineError(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"a reply from the daemon is larger than this client takes "
                        f"(max_message_bytes {self._max_message_bytes}): raise it "
                        f"({error.details()})") from None
                if smaller is not None and (daemon_limit is None or smaller < daemon_limit):
                    # A daemon whose limit is below a batch (its first batches may have fit
                    # and been answered): the calls not answered go again, in smaller ones.
                    daemon_limit = smaller
                    batch_bytes = max(1, min(batch_bytes, smaller))
                    pending = [request for request in requests if results[request.id] is None]
                    continue
                if received or not _retry_stream(error, retries, deadline):
                    raise self._error(error) from None
            finally:
                # Whatever ends the loop early (an exception from a signal handler, say)
                # ends the stream: the daemon stops computing for it, even while the
                # exception, which holds this frame, is kept.
                if not answered:
                    batches.cancel()
        unanswered = results.count(None)
        if unanswered:
            raise TurbineError(grpc.StatusCode.INTERNAL,
                               f"the daemon ended the stream with {unanswered} calls unanswered")
        return results

    def set_inputs(self, inputs, timeout=_CLIENT_TIMEOUT):
        """Sets the inputs of the dict `inputs` (key: value) in one atomic, durable batch;
        returns how many changed (an equal value changes nothing)."""
        if not isinstance(inputs, collections.abc.Mapping):  # items() of a list: AttributeError
            raise ValueError(f"inputs is a dict of key: value, not {type(inputs).__name__}")
        request = pb.SetInputsRequest()
        for key, value in inputs.items():
            _check_key(key)
            entry = request.inputs.add()
            entry.key = key
            try:
                values.to_proto(value, entry.value, values.INPUT_LEVELS)
            except ValueError as error:
                raise ValueError(f"input {key!r}: {error}") from None
        try:
            reply = self._stub.SetInputs(request, **self._call_options(timeout))
        except grpc.RpcError as error:
            raise self._error(error) from None
        return reply.changed

    def unset(self, keys, timeout=_CLIENT_TIMEOUT):
        """Unsets the inputs named in `keys` (an iterable of str, or one str) in one durable
        batch; their readers see them as never set. Returns how many were set."""
        # One str is one key: iterated, "uv" would unset the inputs "u" and "v".
        if isinstance(keys, (bytes, bytearray)) or not isinstance(keys, (str, collections.abc.Iterable)):
            raise ValueError(f"keys is one str or an iterable of str, not {keys!r}")
        keys = [keys] if isinstance(keys, str) else list(keys)
        for key in keys:
            _check_key(key)
        return self._unary("DeleteInputs", pb.DeleteInputsRequest(keys=keys), timeout).deleted

    def collect_garbage(self, timeout=None):
        """Runs a garbage collection pass of the daemon's store now (as `turbine gc`) and
        returns its turbine.v1.CollectGarbageReply (removed_tasks, bytes_before,
        bytes_after, ...). No deadline by default: a pass over a large store takes a while."""
        return self._unary("CollectGarbage", pb.CollectGarbageRequest(), timeout)

    def stats(self, timeout=_CLIENT_TIMEOUT):
        """The daemon's figures (as `turbine stats`): a turbine.v1.StatsReply."""
        return self._unary("Stats", pb.StatsRequest(), timeout)

    def _unary(self, method, request, timeout):
        try:
            return getattr(self._stub, method)(request, **self._call_options(timeout))
        except grpc.RpcError as error:
            raise self._error(error) from None

    def watch(self, function, *args, this=None, version=0, timeout=None):
        """Watches a call: returns a Watch, an iterator of its Results (the current one, then
        one per change). A result that is an error does not end the watch. Failures of the
        watch itself (no daemon, a wrong token) raise TurbineError from the iteration."""
        request = _request(function, args, this, version)
        options = self._call_options(timeout)
        deadline = _deadline(options["timeout"])

        def start(remaining):
            return self._stub.Watch(request, **{**options, "timeout": remaining})
        return Watch(start, deadline, self._error,
                     lambda: isinstance(self._stub, _ClosedStub))

    def functions(self, timeout=_CLIENT_TIMEOUT):
        """The functions the daemon serves: turbine.v1.FunctionInfo messages (name, version,
        description, params, result_type, receiver_type)."""
        try:
            reply = self._stub.ListFunctions(pb.ListFunctionsRequest(),
                                             **self._call_options(timeout))
        except grpc.RpcError as error:
            raise self._error(error) from None
        return list(reply.functions)

    def close(self):
        """Closes the channel; watches still open end (their iteration stops). A call after
        it raises ValueError."""
        self._stub = _ClosedStub()
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _error(self, error):
        """The TurbineError of a failed RPC, with the cause of a failed TLS handshake in
        words. A call that waited for the daemon (wait_for_ready) until its deadline with no
        connection up makes one attempt that does not wait (up to a second more: a reconnect
        waits that long at most), to say why."""
        code, details = error.code(), error.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            failure = self._handshake_failure(details)
            if failure:
                return TurbineError(code, f"{failure} ({details})")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and self._wait_for_ready:
            try:  # connected: the daemon was slow, there is nothing to add
                grpc.channel_ready_future(self._channel).result(timeout=0)
                return TurbineError.from_rpc_error(error)
            except grpc.FutureTimeoutError:
                pass
            try:
                self._stub.Stats(pb.StatsRequest(), timeout=1, metadata=self._metadata,
                                 wait_for_ready=False)
            except grpc.RpcError as attempt:
                if attempt.code() == grpc.StatusCode.UNAVAILABLE:
                    why = attempt.details() or ""
                    return TurbineError(code, f"no connection to {self.address} before the "
                                              f"deadline: {self._handshake_failure(why) or why}")
                if attempt.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return TurbineError(code, f"no connection to {self.address} before the "
                                              f"deadline: {_ACCEPTED_BUT_NOT_ANSWERED}")
        return TurbineError.from_rpc_error(error)

    def _handshake_failure(self, details):
        return handshake_failure(self.address, details, self._tls, self._ca_file,
                                 self._client_cert)

    def _call_options(self, timeout):
        chosen = self.timeout if timeout is _CLIENT_TIMEOUT else _checked_timeout(timeout)
        return {"timeout": chosen, "metadata": self._metadata,
                "wait_for_ready": self._wait_for_ready}


def _check_message_bytes(size):
    """Refuses a max_message_bytes gRPC cannot use: not an int (1.5 and "x" were taken as no
    limit), 0 (every call failed: "Sent message larger than max (14 vs. 0)"), or past what a
    C int holds (an OverflowError at the first call)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size < 1 << 31:
        raise ValueError(f"max_message_bytes must be a whole number of bytes from 1 to "
                         f"{(1 << 31) - 1}, not {size!r}")


def _checked_timeout(timeout):
    """A deadline in seconds, or None for none. Anything else failed every call at once with
    DEADLINE_EXCEEDED (0, -1, nan, inf), as if the daemon were slow."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ValueError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive, finite number of seconds or None (no "
                         f"deadline), not {timeout!r}")
    return timeout


def tls_credentials(address, ca=None, cert=None, key=None):
    """The grpc.ChannelCredentials of Client's TLS options (see Client). A file that cannot
    be read, holds no PEM block, a CA or certificate that holds no certificate, a key file
    without a private key, or a key that is not the certificate's (or has a passphrase) is
    a ValueError naming it: gRPC would only fail to make the channel, as "empty address
    list", which reads as a daemon not running."""
    if address.startswith("unix:"):
        raise ValueError(f"TLS is for TCP addresses, not {address}: turbined serves its unix "
                         "sockets without TLS (file permissions protect them)")
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs both tls_cert and tls_key")
    ca_pem, cert_pem, key_pem = _pem(ca, "CA"), _pem(cert, "certificate"), _pem(key, "key")
    # A certificate signing request, or a key, is no certificate (and "CERTIFICATE
    # REQUEST-----" does not end as a certificate's block does).
    if cert_pem is not None and b"CERTIFICATE-----" not in cert_pem:
        raise ValueError(f"the TLS certificate {_name(cert)} holds no certificate")
    if key_pem is not None and b"PRIVATE KEY-----" not in key_pem:
        raise ValueError(f"the TLS key {_name(key)} holds no private key")
    if key_pem is not None and b"ENCRYPTED" in key_pem:
        raise ValueError(f"the TLS key {_name(key)} has a passphrase, which cannot be used")
    if ca_pem is not None:
        _check_ca(ca, ca_pem)
    if cert is not None:
        _check_key_pair(cert, key)
    return grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=key_pem,
                                        certificate_chain=cert_pem)


def _name(source):
    return "given as bytes" if isinstance(source, bytes) else f"file {source}"


def _pem(source, what):
    """PEM bytes given as themselves, or as the path of a file holding them."""
    if source is None:
        return None
    if isinstance(source, bytes):
        content = source
    else:
        try:
            # Up to a bound, as the CLI and turbined read them: /dev/zero never ends.
            with open(source, "rb") as f:
                content = f.read(_MOST_PEM_BYTES + 1)
        except OSError as error:
            raise ValueError(f"cannot read the TLS {what} file {source}: "
                             f"{error.strerror}") from None
        if len(content) > _MOST_PEM_BYTES:
            raise ValueError(f"the TLS {what} file {source} is larger than 16 MiB: no PEM file")
    if b"-----BEGIN " not in content:
        raise ValueError(f"the TLS {what} {_name(source)} holds no PEM block (-----BEGIN ...)")
    return content


def _check_ca(ca, ca_pem):
    """Raises ValueError if the CA PEM holds no certificate (a key given by mistake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=ca_pem.decode("ascii", errors="replace"))
    except ssl.SSLError:
        raise ValueError(f"the TLS CA {_name(ca)} holds no certificate") from None


def _check_key_pair(cert, key):
    """Raises ValueError if the key is not the certificate's (or cannot be read without a
    passphrase). Each is a path or PEM bytes. PEM bytes are checked through a file in
    memory (the ssl module reads files only, and a key is not to be copied to a disk):
    where there is none (no memfd_create or no /proc), they are not checked here."""
    fds = []
    try:
        paths = []
        for source in (cert, key):
            if not isinstance(source, bytes):
                paths.append(os.fspath(source))
                continue
            if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
                return
            fds.append(os.memfd_create("turbine-tls"))  # close-on-exec: no child gets it
            view = memoryview(source)
            while view:
                view = view[os.write(fds[-1], view):]
            paths.append(f"/proc/self/fd/{fds[-1]}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_cert_chain(paths[0], paths[1], password=lambda: b"")
        except ssl.SSLError as error:
            raise ValueError(f"the TLS key {_name(key)} does not hold the key of the "
                             f"certificate {_name(cert)} ({error.reason or error})") from None
    finally:
        for fd in fds:
            os.close(fd)


def _auth_metadata(token):
    if token is None:
        return None
    if not isinstance(token, str) or not token or not token.isascii() or not token.isprintable():
        raise ValueError("a token is a non-empty str of printable ASCII characters")
    return (("authorization", f"Bearer {token}"),)


def _request(function, args, this, version, call_id=0):
    if not isinstance(function, str) or not function:
        raise ValueError(f"a function name is a non-empty str, not {function!r}")
    try:
        function.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no function is named so
        raise ValueError(f"function name {function!r} is not UTF-8 text (it holds a lone "
                         f"surrogate)") from None
    try:
        # Any integer (numpy's too, through __index__), as protobuf takes; not a bool.
        number = None if isinstance(version, bool) else operator.index(version)
    except TypeError:
        number = None
    if number is None or not 0 <= number < 2**32:
        raise ValueError(f"{function}: version is an int from 0 (the one served) to 2**32 - 1, "
                         f"not {version!r}")
    version = number
    request = pb.CallRequest(function=function, version=version, id=call_id)
    for index, arg in enumerate(args):
        try:
            values.to_proto(arg, request.args.add())
        except ValueError as error:
            raise ValueError(f"{function}: argument {index + 1}: {error}") from None
    if this is not None:
        _receiver(this).to_proto(request.this_ref)
    return request


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline):
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _retry_stream(error, retries, deadline):
    """Whether a stream that failed with `error` before its first reply is opened again:
    on UNAVAILABLE (a connection the daemon closed, or no daemon), while `retries` (the
    waits before each attempt) last and the deadline is not reached. Waits first."""
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    # Not a connection closed before the daemon saw the stream: the daemon had it (a watch
    # it accepted says so at once) or says not to retry (a stream its stop cut short). A
    # stream opened again on a stopping daemon's closing connection waited for ever, past
    # its deadline.
    if any(key == _WATCH_ACCEPTED for key, _ in error.initial_metadata() or ()):
        return False
    if any(key == "grpc-retry-pushback-ms" for key, _ in error.trailing_metadata() or ()):
        return False
    wait = next(retries, None)
    if wait is None or (deadline is not None and time.monotonic() + wait >= deadline):
        return False
    time.sleep(wait)
    return True


# A CallBatch carries at most 10,000 calls (the daemon's limit), and must fit the daemon's
# --max-message-bytes, which the client does not know: 64 KiB fits a daemon set that low
# and still carries thousands of small calls; a daemon set lower says its limit when it
# refuses a batch, and the calls go again in batches that fit (_daemon_message_limit). A
# call larger than a batch goes alone; one larger than a message may be is not sent at all
# (_refuse_oversized).
_BATCH_CALLS = 4096
_BATCH_BYTES = 64 << 10


_BATCH_FRAMING = 64  # bytes a message holds besides its calls


def _daemon_message_limit(error):
    """The batch size that fits a daemon that refused a batch as larger than its
    --max-message-bytes (gRPC says "Received message larger than max (N vs. M)"), or None
    if that is not why the stream failed."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    found = re.search(r"Received message larger than max \((\d+) vs\. (\d+)\)",
                      error.details() or "")
    if not found:
        return None
    fits = int(found.group(2)) - _BATCH_FRAMING
    return fits if fits > 0 else None


def _refuse_oversized(requests, results, own_limit, daemon_limit):
    """Puts a RESOURCE_EXHAUSTED result in `results` for each of `requests` larger than a
    message may be, and returns the others."""
    fitting = []
    for request in requests:
        size = request.ByteSize()
        if daemon_limit is not None and size > daemon_limit:
            why = (f"more than turbined takes in a message (its --max-message-bytes, "
                   f"{daemon_limit + _BATCH_FRAMING})")
        elif size > own_limit:
            why = (f"more than this client sends in a message (max_message_bytes "
                   f"{own_limit + _BATCH_FRAMING})")
        else:
            fitting.append(request)
            continue
        error = TurbineError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                             f"the call is {size} bytes, {why}; the other calls go on")
        results[request.id] = Result(None, error, None, None, 0)
    return fitting


def _batches_of(requests, batch_bytes=_BATCH_BYTES):
    """Yields CallBatch messages holding `requests` in order, each of at most `batch_bytes`
    (a call larger than that goes alone)."""
    batch = pb.CallBatch()
    size = 0
    for request in requests:
        call_bytes = request.ByteSize()
        # The call, its length (a varint) and its field's tag, as the batch holds it.
        request_size = call_bytes + 1 + (call_bytes.bit_length() + 6) // 7 if call_bytes else 2
        if batch.calls and (len(batch.calls) == _BATCH_CALLS or size + request_size > batch_bytes):
            yield batch
            batch = pb.CallBatch()
            size = 0
        batch.calls.append(request)
        size += request_size
    if batch.calls:
        yield batch


def _request_of(call, call_id):
    if isinstance(call, Call):
        return _request(call.function, call.args, call.this, call.version, call_id)
    if isinstance(call, (tuple, list)) and call:
        return _request(call[0], call[1:], None, 0, call_id)
    raise ValueError(f"call {call_id}: a call is a Call or a tuple (function, *args), "
                     f"not {call!r}")


def _receiver(this):
    """`this` as a Ref: a Ref, its text ("12/Type/3") or {"$ref": text}, as the CLI's --this."""
    if isinstance(this, values.Ref):
        return this
    if isinstance(this, dict) and set(this) == {"$ref"} and isinstance(this["$ref"], str):
        return values.Ref(this["$ref"])
    if isinstance(this, (str, int)) and not isinstance(this, bool):
        return values.Ref(this)
    raise ValueError(f"this is a Ref, its text or {{\"$ref\": text}}, not {this!r}")


def _result(reply):
    ref = values.Ref.from_proto(reply.ref) if reply.HasField("ref") else None
    source = _SOURCES.get(reply.source)
    kind = reply.WhichOneof("result")
    if kind == "value":
        return Result(values.from_proto(reply.value), None, source, ref, reply.micros)
    if kind == "error":
        code = status_code(reply.error.code)
        if code == grpc.StatusCode.OK:  # an error is an error, whatever its code says
            code = grpc.StatusCode.UNKNOWN
        if ref is None:  # refused before any task answered: a bad call on a stream
            error = TurbineError(code, reply.error.message)
        else:
            error = FunctionError(code, reply.error.message, source, ref, reply.micros)
        return Result(None, error, source, ref, reply.micros)
    error = TurbineError(grpc.StatusCode.INTERNAL,
                         "the daemon sent a reply with neither value nor error")
    return Result(None, error, source, ref, reply.micros)
