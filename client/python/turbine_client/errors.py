"""errors.py — what a failed call raises, and what a call's result is."""
import grpc

# grpc.StatusCode by number: the protocol's CallError carries the number.
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def status_code(number):
    """The grpc.StatusCode numbered `number`; UNKNOWN for a number gRPC does not have."""
    return _CODES.get(number, grpc.StatusCode.UNKNOWN)


class TurbineError(Exception):
    """A call that failed. `code` is a grpc.StatusCode, `message` the daemon's (or gRPC's)
    text: UNAVAILABLE when no daemon answers at the address, UNAUTHENTICATED for a missing
    or wrong token, NOT_FOUND for an unknown function, INVALID_ARGUMENT for arguments the
    function does not take, DEADLINE_EXCEEDED, ..."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error):
        return cls(error.code(), error.details() or "")


def handshake_failure(address, message, tls, ca_file=None, client_cert=False):
    """Explains a connection that failed in its TLS handshake or (plain text) was closed by
    the daemon at once, as a TLS listener does: "TLS handshake with ADDR failed: <cause>",
    from gRPC's `message`; "" for any other failure. The same words as the C++ client's.
    `ca_file` names the CA file given, if one was; `client_cert` says whether one was."""
    if not message.startswith("failed to connect to all addresses"):
        return ""
    closed = "Socket closed" in message or "reset by peer" in message
    if not tls:
        if not closed or address.startswith("unix"):
            return ""
        return (f"the daemon at {address} closed the connection at once, as a TLS listener "
                "does when spoken to in plain text: if it serves TLS, connect with TLS (its "
                "CA file)")
    if "certificate verify failed" in message:
        # OpenSSL says only that verification failed: the likeliest cause first.
        cause = (f"the daemon's certificate did not verify against {ca_file}: not signed by a "
                 "CA in it (wrong CA file?), expired, or not for a server" if ca_file else
                 "the daemon's certificate did not verify: not signed by a CA this system "
                 "trusts (give the CA file that signed it), expired, or not for a server")
    elif "not in peer certificate" in message:
        cause = ("the daemon's certificate does not carry the name connected to (give the "
                 "name it carries as server_name)")
    elif "wrong version number" in message:
        cause = "the daemon does not serve TLS on this address (it answered in plain text)"
    elif closed:
        cause = ("the daemon closed the connection: it likely did not accept the client "
                 "certificate (not signed by the CA it trusts for clients? expired?)"
                 if client_cert else
                 "the daemon closed the connection: it likely requires a client certificate "
                 "(mutual TLS), and none was given")
    elif "handshake" in message.lower():
        cause = "gRPC's reason follows"
    else:
        return ""
    return f"TLS handshake with {address} failed: {cause}"


class FunctionError(TurbineError):
    """The function ran and returned an error (UNKNOWN with its message, FAILED_PRECONDITION
    for a dependency cycle, ...). It is a result like a value, cached and invalidated like
    one, so it has a `source`, a `ref` and `micros` too."""

    def __init__(self, code, message, source, ref, micros):
        super().__init__(code, message)
        self.source = source
        self.ref = ref
        self.micros = micros


class Result:
    """One call's result. `value` is the value (reading it raises `error` if the call failed),
    `source` says where it came from: "memory" (the daemon's in-memory cache), "disk" (its
    on-disk cache, restored and not executed), "shared" (adopted from the shared cache tier
    after verifying its dependencies here) or "executed" (the function, or something it
    depends on, ran for this call); None for a call the daemon refused. `ref` is the task
    that answered (a Ref, to pass on as an argument or as `this`), `micros` the daemon's
    time on the call."""

    __slots__ = ("_value", "error", "source", "ref", "micros")

    def __init__(self, value, error, source, ref, micros):
        self._value = value
        self.error = error
        self.source = source
        self.ref = ref
        self.micros = micros

    @property
    def value(self):
        if self.error is not None:
            raise self.error
        return self._value

    @property
    def ok(self):
        return self.error is None

    def __repr__(self):
        outcome = f"error={self.error!r}" if self.error is not None else f"value={self._value!r}"
        return f"Result({outcome}, source={self.source!r}, ref={self.ref!r})"
