#!/usr/bin/env python3
"""turbine_client.py — a Python client of turbined, over gRPC.

It uses stubs generated from proto/turbine/v1/turbine.proto (generate_stubs.sh) and
Debian's python3-grpcio and python3-protobuf:

  ./generate_stubs.sh /tmp/stubs
  ./turbine_client.py --stubs /tmp/stubs call demo.fib 30        # 832040
  ./turbine_client.py --stubs /tmp/stubs set price 12 name widget
  ./turbine_client.py --stubs /tmp/stubs get price               # 12
  ./turbine_client.py --stubs /tmp/stubs watch --count 2 input.get price

Arguments and values are JSON, like the turbine CLI's: a bare word that is not JSON is a
string, {"$ref": "12"} is a task reference, {"$bytes": "<base64>"} is bytes.
Exit codes (as the turbine CLI): 0 ok, 1 the function returned an error, 2 usage, 3 the
daemon cannot be reached, 4 the daemon refused the request.
"""
import argparse
import base64
import json
import sys

import grpc

EXIT_FUNCTION_ERROR = 1
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4

SOURCES = {1: "memory", 2: "disk", 3: "executed"}


def load_stubs(directory):
    """Imports the generated modules, from `directory` if given, else from sys.path."""
    if directory:
        sys.path.insert(0, directory)
    try:
        from turbine.v1 import turbine_pb2, turbine_pb2_grpc
    except ImportError as error:
        sys.exit(f"turbine_client: cannot import the generated stubs ({error}); "
                 "run generate_stubs.sh DIR and pass --stubs DIR")
    return turbine_pb2, turbine_pb2_grpc


class Converter:
    """Converts between JSON-shaped Python values and the protocol's Value."""

    def __init__(self, pb):
        self.pb = pb

    def to_value(self, obj):
        pb = self.pb
        if obj is None:
            return pb.Value(null_value=pb.NULL_VALUE)
        if isinstance(obj, bool):  # before int: a bool is an int in Python
            return pb.Value(bool_value=obj)
        if isinstance(obj, int):
            return pb.Value(int_value=obj)
        if isinstance(obj, float):
            return pb.Value(double_value=obj)
        if isinstance(obj, str):
            return pb.Value(string_value=obj)
        if isinstance(obj, list):
            return pb.Value(list_value=pb.ValueList(items=[self.to_value(x) for x in obj]))
        if isinstance(obj, dict):
            if set(obj) == {"$ref"}:
                return pb.Value(ref_value=self.parse_ref(obj["$ref"]))
            if set(obj) == {"$bytes"}:
                return pb.Value(bytes_value=base64.b64decode(obj["$bytes"], validate=True))
            # The protocol keeps map entries sorted by key.
            entries = [pb.MapEntry(key=k, value=self.to_value(v)) for k, v in sorted(obj.items())]
            return pb.Value(map_value=pb.ValueMap(entries=entries))
        raise ValueError(f"cannot send a {type(obj).__name__}")

    def from_value(self, value):
        kind = value.WhichOneof("kind")
        if kind in (None, "null_value"):
            return None
        if kind == "bytes_value":
            return {"$bytes": base64.b64encode(value.bytes_value).decode("ascii")}
        if kind == "list_value":
            return [self.from_value(x) for x in value.list_value.items]
        if kind == "map_value":
            return {e.key: self.from_value(e.value) for e in value.map_value.entries}
        if kind == "ref_value":
            return {"$ref": self.format_ref(value.ref_value)}
        return getattr(value, kind)

    def parse_ref(self, text):
        """"12" is task 12's output, "12/TYPE/3" the cell of type TYPE with index 3."""
        task, _, cell = str(text).partition("/")
        cell_type, _, index = cell.rpartition("/")
        if not task.isdigit() or (cell and (not cell_type or not index.isdigit())):
            raise ValueError(f"bad task reference {text!r}: expected TASK or TASK/TYPE/INDEX")
        return self.pb.TaskRef(task=int(task), cell_type=cell_type,
                               cell_index=int(index) if cell else 0)

    @staticmethod
    def format_ref(ref):
        if not ref.cell_type:
            return str(ref.task)
        return f"{ref.task}/{ref.cell_type}/{ref.cell_index}"


def parse_argument(text):
    """An argument is JSON; a bare word that is not JSON is a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class Client:
    """One channel to a daemon. Unary calls carry a deadline; a watch lasts until closed."""

    def __init__(self, address, pb, pb_grpc, timeout=30.0, token=None):
        self.pb = pb
        self.values = Converter(pb)
        self.timeout = timeout
        self.metadata = [("authorization", f"Bearer {token}")] if token else None
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.TurbineStub(self.channel)

    def close(self):
        self.channel.close()

    def request(self, function, args):
        return self.pb.CallRequest(function=function,
                                   args=[self.values.to_value(a) for a in args])

    def call(self, function, args):
        return self.stub.Call(self.request(function, args), timeout=self.timeout,
                              metadata=self.metadata)

    def set_inputs(self, inputs):
        """Sets the inputs (a dict) in one atomic batch; returns how many changed."""
        entries = [self.pb.InputEntry(key=k, value=self.values.to_value(v))
                   for k, v in inputs.items()]
        reply = self.stub.SetInputs(self.pb.SetInputsRequest(inputs=entries),
                                    timeout=self.timeout, metadata=self.metadata)
        return reply.changed

    def watch(self, function, args, timeout=None):
        """Yields the call's current reply, then one each time its result changes."""
        return self.stub.Watch(self.request(function, args), timeout=timeout,
                               metadata=self.metadata)

    def functions(self):
        return self.stub.ListFunctions(self.pb.ListFunctionsRequest(), timeout=self.timeout,
                                       metadata=self.metadata).functions


def print_reply(client, reply, as_json):
    """Prints a CallReply; returns the exit code (1 when the function raised an error)."""
    if reply.WhichOneof("result") == "error":
        print(f"error: {reply.error.message}", file=sys.stderr, flush=True)
        if as_json:
            print(json.dumps({"error": {"code": reply.error.code, "message": reply.error.message},
                              "source": SOURCES.get(reply.source, "unspecified")},
                             sort_keys=True), flush=True)
        return EXIT_FUNCTION_ERROR
    value = client.values.from_value(reply.value)
    if as_json:
        print(json.dumps({"value": value, "source": SOURCES.get(reply.source, "unspecified"),
                          "ref": {"$ref": Converter.format_ref(reply.ref)},
                          "micros": reply.micros}, sort_keys=True), flush=True)
    else:
        print(json.dumps(value), flush=True)
    return 0


def run_command(client, options):
    if options.command == "call":
        args = [parse_argument(a) for a in options.args]
        return print_reply(client, client.call(options.function, args), options.json)
    if options.command == "get":
        return print_reply(client, client.call("input.get", [options.key]), options.json)
    if options.command == "set":
        if not options.pairs or len(options.pairs) % 2 != 0:
            raise ValueError("set takes KEY VALUE pairs")
        pairs = options.pairs
        inputs = {pairs[i]: parse_argument(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        changed = client.set_inputs(inputs)
        print(json.dumps({"changed": changed}) if options.json else f"{changed} changed")
        return 0
    if options.command == "watch":
        args = [parse_argument(a) for a in options.args]
        seen = 0
        for reply in client.watch(options.function, args, timeout=options.watch_timeout):
            print_reply(client, reply, options.json)
            seen += 1
            if options.count and seen >= options.count:
                break
        return 0
    if options.command == "functions":
        for f in client.functions():
            params = ", ".join(f"{p.type} {p.name}" for p in f.params)
            print(f"{f.name}({params}) -> {f.result_type}  {f.description}")
        return 0
    raise AssertionError(options.command)


def parse_options(argv):
    parser = argparse.ArgumentParser(description="A Python client of turbined.")
    parser.add_argument("--connect", default="unix:.turbine/turbined.sock",
                        help="daemon address: unix:PATH or HOST:PORT (default %(default)s)")
    parser.add_argument("--stubs", help="directory of the stubs generate_stubs.sh made")
    parser.add_argument("--json", action="store_true", help="print replies as JSON objects")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="deadline of each unary call, in seconds (default %(default)s)")
    parser.add_argument("--token-file", help="file holding the daemon's auth token")
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", help="call a function: call demo.fib 30")
    call.add_argument("function")
    call.add_argument("args", nargs="*")
    get = commands.add_parser("get", help="read an input (calls input.get)")
    get.add_argument("key")
    set_ = commands.add_parser("set", help="set inputs atomically: set KEY VALUE [KEY VALUE]...")
    set_.add_argument("pairs", nargs="*", metavar="KEY VALUE")
    watch = commands.add_parser("watch", help="print a call's result, then each change")
    watch.add_argument("--count", type=int, default=0, help="stop after this many results")
    watch.add_argument("--watch-timeout", type=float, default=None,
                       help="give up after this many seconds (default: never)")
    watch.add_argument("function")
    watch.add_argument("args", nargs="*")
    commands.add_parser("functions", help="list the functions the daemon serves")
    return parser.parse_args(argv)


def main(argv):
    options = parse_options(argv)
    pb, pb_grpc = load_stubs(options.stubs)
    token = None
    if options.token_file:
        with open(options.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    client = Client(options.connect, pb, pb_grpc, timeout=options.timeout, token=token)
    try:
        return run_command(client, options)
    except ValueError as error:  # a bad argument, before anything was sent
        print(f"turbine_client: {error}", file=sys.stderr)
        return 2
    except grpc.RpcError as error:
        print(f"turbine_client: {error.code().name}: {error.details()}", file=sys.stderr)
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return EXIT_UNREACHABLE
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
