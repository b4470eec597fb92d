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
