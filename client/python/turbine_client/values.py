"""values.py — Python values <-> turbine.v1.Value, with the turbine CLI's JSON conventions.

  sent                               Value                read back
  None, True/False                   null, bool           None, True/False
  int (64-bit signed)                int                  int
  int (2^63 to 2^64 - 1)             uint                 int
  float                              double               float
    {"$double": "NaN"}, "Infinity",                        (to_json: NaN and the
    "-Infinity"                                             infinities in that form)
  str                                string               str
  bytes, bytearray,                  bytes                bytes
    {"$bytes": "<base64>"}
  list, tuple                        list                 list
  Ref("12"), {"$ref": "12"},         task reference       Ref
    {"$ref": "12/TypeName/3"}
  dict with str keys                 map (sorted keys)    dict
  {"$map": {...}}                    map: the way to send a map whose only key is "$ref",
                                     "$bytes", "$double" or "$map" (else it means the above)

So any JSON the CLI takes as an argument means the same here (json.loads it), and to_json()
turns a value read back into what `turbine --json` prints. A str holding surrogate escapes
(os.fsdecode of a file name that is not UTF-8) is sent as the bytes it stands for: the
daemon takes bytes wherever it takes a string.

Thread-safety: pure functions and immutable values.
"""
import base64
import binascii
import math

from turbine_client.v1 import turbine_pb2 as pb

# The CLI's limit: lists and maps nest at most as deep as the daemon can parse (protobuf
# reads 100 levels of messages; the request and the argument take up to three, a list two
# more, a map three): deeper is refused before anything is sent (and a list that contains
# itself fails here instead of recursing without end).
MAX_LEVELS = 97
_LIST_LEVELS, _MAP_LEVELS, _REF_LEVELS = 2, 3, 1
_SPECIAL_LEVELS = {"$map": _MAP_LEVELS, "$ref": _REF_LEVELS}
MAX_LISTS, MAX_MAPS = MAX_LEVELS // _LIST_LEVELS, MAX_LEVELS // _MAP_LEVELS
# An input's value (SetInputs) may take one level more than an argument, whose bound leaves
# room for the deepest request a call goes in: 49 lists or 32 maps, as deep as the daemon
# stores one, so that any input read back can be set again.
INPUT_LEVELS = 98
_SPECIAL_KEYS = ("$ref", "$bytes", "$double", "$map")
# JSON has no NaN or infinities: {"$double": ...} stands for them, as in the CLI.
# "-NaN": the engine tells a NaN by its bits, sign included.
_NON_FINITE = {"NaN": math.nan, "-NaN": -math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


class Ref:
    """A task's output ("12") or one of its cells ("12/TypeName/3"): pass it as an argument
    or as `this`. Task ids are stable across daemon restarts."""

    __slots__ = ("task", "cell_type", "cell_index")

    def __init__(self, task, cell_type="", cell_index=0):
        if isinstance(task, str):
            if cell_type or cell_index:
                raise ValueError("Ref(text) takes no cell_type or cell_index")
            task, cell_type, cell_index = _parse_ref(task)
        if not isinstance(task, int) or isinstance(task, bool) or not 0 <= task < 1 << 64:
            raise ValueError(f"a task id is an integer in [0, 2^64), not {task!r}")
        if not isinstance(cell_index, int) or not 0 <= cell_index < 1 << 32:
            raise ValueError(f"a cell index is an integer in [0, 2^32), not {cell_index!r}")
        cell_type = str(cell_type)
        try:
            cell_type.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"a cell type is UTF-8 text, not {cell_type!r}") from None
        self.task, self.cell_type, self.cell_index = task, cell_type, cell_index

    @classmethod
    def from_proto(cls, ref):
        return cls(ref.task, ref.cell_type, ref.cell_index)

    def to_proto(self, out):
        out.task, out.cell_type, out.cell_index = self.task, self.cell_type, self.cell_index

    def __str__(self):
        if not self.cell_type:
            return str(self.task)
        return f"{self.task}/{self.cell_type}/{self.cell_index}"

    def __repr__(self):
        return f"Ref({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, Ref) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def _key(self):
        return (self.task, self.cell_type, self.cell_index)


def _parse_ref(text):
    """"12" or "12/TypeName/3"; the type sits between the first and the last slash."""
    def bad():
        return ValueError(f'task reference "{text}" is neither "<task>" nor '
                          '"<task>/<type>/<index>"')

    def decimal(digits):
        if not digits or not digits.isascii() or not digits.isdigit():
            raise bad()
        return int(digits)

    task, slash, rest = text.partition("/")
    if not slash:
        return decimal(task), "", 0
    cell_type, slash, index = rest.rpartition("/")
    if not slash or not cell_type:
        raise bad()
    return decimal(task), cell_type, decimal(index)


class _BadValue(Exception):
    """A value that cannot be sent; `path` collects the JSON pointer on the way up."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message
        self.path = []


def to_proto(obj, out=None, levels=MAX_LEVELS):
    """Converts a Python value to a turbine.v1.Value (filling `out` if given), nesting at
    most `levels` levels of messages (MAX_LEVELS for an argument, INPUT_LEVELS for an input).
    Raises ValueError naming the JSON pointer of the part that cannot be sent."""
    if out is None:
        out = pb.Value()
    try:
        _fill(out, obj, 0, levels)
    except _BadValue as error:
        pointer = "".join("/" + token for token in reversed(error.path)) or "/"
        raise ValueError(f"at {pointer}: {error.message}") from None
    return out


def _fill(out, obj, depth, limit):
    if obj is None:
        out.null_value = pb.NULL_VALUE
    elif isinstance(obj, bool):  # before int: a bool is an int in Python
        out.bool_value = obj
    elif isinstance(obj, int):
        if _INT64_MIN <= obj <= _INT64_MAX:
            out.int_value = obj
        elif _INT64_MAX < obj <= _UINT64_MAX:  # a uint64_t's upper half
            out.uint_value = obj
        else:
            raise _BadValue(f"{obj} does not fit in a 64-bit integer (from -2^63 to 2^64 - 1)")
    elif isinstance(obj, float):
        out.double_value = obj
    elif isinstance(obj, str):
        try:
            obj.encode("utf-8")
            out.string_value = obj
        except UnicodeEncodeError:  # surrogate escapes: send the bytes they stand for
            out.bytes_value = _escaped_bytes(obj)
    elif isinstance(obj, (bytes, bytearray)):
        out.bytes_value = bytes(obj)
    elif isinstance(obj, Ref):
        _check_depth(depth + _REF_LEVELS, limit)
        obj.to_proto(out.ref_value)
    elif isinstance(obj, (list, tuple)):
        _check_depth(depth + _LIST_LEVELS, limit)
        items = out.list_value.items
        out.list_value.SetInParent()  # an empty list is still a list
        for i, item in enumerate(obj):
            try:
                _fill(items.add(), item, depth + _LIST_LEVELS, limit)
            except _BadValue as error:
                error.path.append(str(i))
                raise
    elif isinstance(obj, dict):
        if len(obj) == 1:
            key = next(iter(obj))
            if key in _SPECIAL_KEYS:
                # A special form costs what it stands for (a NaN or bytes, nothing): charged a
                # map's levels, one printed at the deepest level did not read back.
                _check_depth(depth + _SPECIAL_LEVELS.get(key, 0), limit)
                try:
                    _fill_special(out, key, obj[key], depth, limit)
                except _BadValue as error:
                    error.path.append(_pointer_token(key))
                    raise
                return
        _check_depth(depth + _MAP_LEVELS, limit)
        _fill_map(out, obj, depth, limit)
    else:
        raise _BadValue(f"cannot send a value of type {type(obj).__name__}")


def _fill_special(out, key, body, depth, limit):
    if key == "$map":
        if not isinstance(body, dict):
            raise _BadValue("$map takes an object")
        _fill_map(out, body, depth, limit)
    elif not isinstance(body, str):
        raise _BadValue(f"{key} takes a string")
    elif key == "$double":
        if body not in _NON_FINITE:
            raise _BadValue('$double takes "NaN", "-NaN", "Infinity" or "-Infinity" '
                            "(a finite number is written as one)")
        out.double_value = _NON_FINITE[body]
    elif key == "$bytes":
        try:
            out.bytes_value = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise _BadValue("not valid base64") from None
    else:
        try:
            Ref(body).to_proto(out.ref_value)
        except ValueError as error:
            raise _BadValue(str(error)) from None


def _fill_map(out, obj, depth, limit):
    for key in obj:
        if not isinstance(key, str):
            raise _BadValue(f"map keys are strings, not {type(key).__name__} ({key!r})")
    entries = out.map_value.entries
    out.map_value.SetInParent()  # an empty map is still a map
    for key in sorted(obj):  # the protocol keeps map entries sorted by key
        entry = entries.add()
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            # A key is a protocol string, with no bytes form (a file name as a key, say).
            error = _BadValue(f"map key {key!r} is not UTF-8 text: a map key cannot carry "
                              "other bytes (send such names as a list)")
            error.path.append(_pointer_token(key.encode("utf-8", "backslashreplace")
                                             .decode("utf-8")))
            raise error from None
        entry.key = key
        try:
            _fill(entry.value, obj[key], depth + _MAP_LEVELS, limit)
        except _BadValue as error:
            error.path.append(_pointer_token(key))
            raise


def _escaped_bytes(text):
    """The bytes a str holding surrogate escapes (os.fsdecode's) stands for."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as error:  # a lone surrogate that escapes no byte
        raise _BadValue(f"{text!r} holds {text[error.start]!r} at {error.start}, a lone "
                        "surrogate that is neither UTF-8 text nor an escaped byte") from None


def _check_depth(levels, limit):
    if levels > limit:
        raise _BadValue(
            f"lists and maps nest too deeply: at most {limit // _LIST_LEVELS} lists or "
            f"{limit // _MAP_LEVELS} maps "
            "inside one another (protobuf reads at most 100 levels of messages)"
        )


def _pointer_token(key):
    return key.replace("~", "~0").replace("/", "~1")


def from_proto(value):
    """Converts a turbine.v1.Value to Python (see the table above)."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "list_value":
        return [from_proto(item) for item in value.list_value.items]
    if kind == "map_value":
        return {entry.key: from_proto(entry.value) for entry in value.map_value.entries}
    if kind == "ref_value":
        return Ref.from_proto(value.ref_value)
    return getattr(value, kind)


def to_json(obj):
    """What `turbine --json` prints for a value read back, in the form json.dumps takes:
    bytes as {"$bytes": base64}, Ref as {"$ref": "12"}, a map whose only key is special as
    {"$map": ...}, NaN and infinities as {"$double": "NaN"}, "Infinity", "-Infinity"."""
    if isinstance(obj, float) and not math.isfinite(obj):
        if math.isnan(obj):
            return {"$double": "-NaN" if math.copysign(1.0, obj) < 0 else "NaN"}
        return {"$double": "Infinity" if obj > 0 else "-Infinity"}
    if isinstance(obj, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, Ref):
        return {"$ref": str(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_json(item) for item in obj]
    if isinstance(obj, dict):
        mapped = {key: to_json(item) for key, item in obj.items()}
        if len(mapped) == 1 and next(iter(mapped)) in _SPECIAL_KEYS:
            return {"$map": mapped}
        return mapped
    return obj
