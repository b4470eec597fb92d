#!/usr/bin/env python3
"""pyturbine.py — a small command line over turbine_client, the Python client of turbined.

  PYTHONPATH=build/client/python python3 pyturbine.py call demo.fib 30     # 832040
  pyturbine.py set price 12 name widget                                    # 2 changed
  pyturbine.py get price                                                   # 12
  pyturbine.py watch --count 2 input.get price

Arguments and values are JSON, like the turbine CLI's: a bare word that is not JSON is a
string, {"$ref": "12"} is a task reference, {"$bytes": "<base64>"} is bytes.
Exit codes (as the turbine CLI): 0 ok, 1 the function returned an error, 2 usage, 3 the
daemon cannot be reached, 4 the daemon refused the request.
"""
import argparse
import json
import os
import sys

import grpc

import turbine_client

EXIT_FUNCTION_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4


def parse_argument(text):
    """An argument is JSON; a bare word that is not JSON is a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def print_error(error, as_json):
    """Prints an error the function returned (a FunctionError)."""
    print(f"error: {error.message}", file=sys.stderr, flush=True)
    if as_json:
        print(json.dumps({"error": error.message, "code": error.code.name,
                          "source": error.source}, sort_keys=True), flush=True)


def print_result(result, as_json):
    if result.error is not None:
        print_error(result.error, as_json)
        return
    value = turbine_client.to_json(result.value)
    if as_json:
        print(json.dumps({"value": value, "source": result.source, "micros": result.micros,
                          "ref": turbine_client.to_json(result.ref)}, sort_keys=True),
              flush=True)
    else:
        print(json.dumps(value), flush=True)


def call(client, function, args, this, as_json):
    try:
        print_result(client.call(function, *args, this=this), as_json)
    except turbine_client.FunctionError as error:
        print_error(error, as_json)
        return EXIT_FUNCTION_ERROR
    return 0


def run_command(client, options):
    if options.command == "get":
        return call(client, "input.get", [options.key], None, options.json)
    if options.command == "set":
        pairs = options.pairs
        if not pairs or len(pairs) % 2 != 0:
            raise ValueError("set takes KEY VALUE pairs")
        changed = client.set_inputs({pairs[i]: parse_argument(pairs[i + 1])
                                     for i in range(0, len(pairs), 2)})
        print(json.dumps({"changed": changed}) if options.json else f"{changed} changed")
        return 0
    if options.command == "functions":
        for f in client.functions():
            params = ", ".join(f"{p.type} {p.name}" for p in f.params)
            print(f"{f.name}({params}) -> {f.result_type}  {f.description}")
        return 0
    args = [parse_argument(a) for a in options.args]
    this = parse_argument(options.this) if options.this is not None else None
    if options.command == "call":
        return call(client, options.function, args, this, options.json)
    with client.watch(options.function, *args, this=this,
                      timeout=options.watch_timeout) as watch:
        for seen, result in enumerate(watch, start=1):
            print_result(result, options.json)
            if seen == options.count:
                break
    return 0


def parse_options(argv):
    parser = argparse.ArgumentParser(description="A Python client of turbined.")
    parser.add_argument("--connect", help="daemon address: unix:PATH or HOST:PORT "
                        "(default: unix:<data-dir>/turbined.sock)")
    parser.add_argument("--data-dir", default=turbine_client.DEFAULT_DATA_DIR,
                        help="data directory of the daemon (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print results as JSON objects")
    parser.add_argument("--timeout", type=float, default=turbine_client.DEFAULT_TIMEOUT,
                        help="deadline of each request, in seconds (default %(default)s)")
    parser.add_argument("--token-file", default=os.environ.get("TURBINE_TOKEN_FILE"),
                        help="file holding the daemon's auth token "
                        "(default: $TURBINE_TOKEN_FILE)")
    parser.add_argument("--tls-ca", help="PEM file of the CA that signed the daemon's cert")
    parser.add_argument("--tls-cert", help="PEM client certificate, for mutual TLS")
    parser.add_argument("--tls-key", help="PEM key of --tls-cert")
    parser.add_argument("--server-name", help="name the daemon's certificate must carry")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [("call", "call a function: call demo.fib 30"),
                       ("watch", "print a call's result, then each change")]:
        command = commands.add_parser(name, help=text)
        command.add_argument("--this",
                             help='receiver of a method: 12, 12/Type/3 or {"$ref": "12"}')
        if name == "watch":
            command.add_argument("--count", type=int, default=0,
                                 help="stop after this many results")
            command.add_argument("--watch-timeout", type=float, default=None,
                                 help="give up after this many seconds (default: never)")
        command.add_argument("function")
        command.add_argument("args", nargs="*")
    commands.add_parser("get", help="read an input (calls input.get)").add_argument("key")
    commands.add_parser("set", help="set inputs atomically: set KEY VALUE [KEY VALUE]...") \
        .add_argument("pairs", nargs="*", metavar="KEY VALUE")
    commands.add_parser("functions", help="list the functions the daemon serves")
    return parser.parse_args(argv)


def connect(options):
    token = None
    if options.token_file:
        with open(options.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    return turbine_client.Client(options.connect, data_dir=options.data_dir, token=token,
                                 timeout=options.timeout, tls_ca=options.tls_ca,
                                 tls_cert=options.tls_cert, tls_key=options.tls_key,
                                 server_name=options.server_name)


def main(argv):
    options = parse_options(argv)
    try:
        with connect(options) as client:
            return run_command(client, options)
    except (ValueError, OSError) as error:  # bad arguments or files, before anything is sent
        print(f"pyturbine: {error}", file=sys.stderr)
        return EXIT_USAGE
    except turbine_client.TurbineError as error:
        print(f"pyturbine: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE if error.code == grpc.StatusCode.UNAVAILABLE else EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
