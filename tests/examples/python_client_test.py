#!/usr/bin/env python3
"""python_client_test.py — examples/python_client against the real turbined.

Runs the example's pyturbine.py with the turbine_client package of the build tree (as a
user does with PYTHONPATH), against turbined on a temporary data dir, and checks what it
prints: a call, inputs set and read back, a watch that sees an input change, errors by
exit code.
"""
import argparse
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time

import harness
from harness import Daemon, Failure, expect_equal, run, run_json


def parse_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True, help="the Turbine source tree")
    parser.add_argument("--turbined", required=True)
    parser.add_argument("--python-path", required=True,
                        help="the directory holding the turbine_client package")
    return parser.parse_args()


def check_python_packages():
    try:
        import google.protobuf  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as error:
        raise Failure(f"{sys.executable} cannot import {error.name}: install python3-grpcio "
                      "and python3-protobuf (scripts/setup), or point TURBINE_TEST_PYTHON "
                      "at a python3 that has them") from None


class Watcher:
    """A `watch` command in the background, read line by line with a deadline."""

    def __init__(self, command):
        print(f"--- watch: {' '.join(command)}", flush=True)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.pending = b""  # read from the pipe, not yet returned as a line

    def next_line(self, what, timeout=60):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending and time.monotonic() < deadline:
            if not self.selector.select(timeout=deadline - time.monotonic()):
                continue
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                break  # end of output: the watcher exited
            self.pending += chunk
        if b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            return line.decode()
        self.process.kill()
        raise Failure(f"{what}: no line from the watcher (exit {self.process.wait()})\n"
                      f"stdout: {self.pending!r}\nstderr:\n{self.process.stderr.read().decode()}")

    def expect_exit(self, code, timeout=60):
        try:
            expect_equal(self.process.wait(timeout=timeout), code, "watcher exit code")
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise Failure(f"the watcher did not exit within {timeout} s") from None
        finally:
            self.selector.close()
            self.process.stdout.close()
            self.process.stderr.close()


def check_scenarios(client):
    fib = run_json(client + ["--json", "call", "demo.fib", "30"], "call demo.fib 30")
    expect_equal((fib["value"], fib["source"]), (832040, "executed"), "demo.fib 30, first call")
    fib = run_json(client + ["--json", "call", "demo.fib", "30"], "call demo.fib 30 again")
    expect_equal((fib["value"], fib["source"]), (832040, "memory"), "demo.fib 30, again")

    expect_equal(run(client + ["set", "price", "12", "name", "widget"], "set").stdout,
                 "2 changed\n", "set price and name")
    expect_equal(run(client + ["get", "price"], "get price").stdout, "12\n", "get price")
    expect_equal(run(client + ["get", "name"], "get name").stdout, '"widget"\n', "get name")
    expect_equal(run(client + ["set", "price", "12"], "set an equal value").stdout,
                 "0 changed\n", "an equal value changes nothing")

    watcher = Watcher(client + ["watch", "--count", "2", "--watch-timeout", "60",
                                "input.get", "price"])
    expect_equal(watcher.next_line("watch: current value"), "12", "watch: current value")
    run(client + ["set", "price", "13"], "set price while watched")
    expect_equal(watcher.next_line("watch: after the set"), "13", "watch: after the set")
    watcher.expect_exit(0)

    listed = run(client + ["functions"], "functions").stdout
    if "demo.fib(i64 n) -> i64" not in listed:
        raise Failure(f"functions: demo.fib not listed in\n{listed}")

    raised = run(client + ["call", "demo.fib", "-1"], "a function error", expect_code=1)
    if "n must be >= 0" not in raised.stderr:
        raise Failure(f"demo.fib -1: unexpected stderr {raised.stderr!r}")
    missing = run(client + ["call", "no.such"], "an unknown function", expect_code=4)
    if "NOT_FOUND" not in missing.stderr:
        raise Failure(f"no.such: unexpected stderr {missing.stderr!r}")
    wrong = run(client + ["call", "demo.fib", '"x"'], "a wrong argument", expect_code=4)
    if "INVALID_ARGUMENT" not in wrong.stderr:
        raise Failure(f"demo.fib \"x\": unexpected stderr {wrong.stderr!r}")


def test():
    options = parse_options()
    check_python_packages()
    scratch = tempfile.mkdtemp(prefix="turbine-python-")  # short: a socket path is limited
    os.environ["PYTHONPATH"] = options.python_path  # for the example's processes
    data_dir = os.path.join(scratch, "data")
    daemon = Daemon([options.turbined, "--data-dir", data_dir],
                    os.path.join(scratch, "turbined.log"), "turbined ready on ")
    client = [sys.executable, os.path.join(options.source_dir, "examples/python_client",
                                           "pyturbine.py"), "--data-dir", data_dir]
    try:
        run(client + ["call", "demo.fib", "1"], "no daemon yet", expect_code=3)
        daemon.start()
        check_scenarios(client)
        daemon.expect_clean_exit()
    except Failure as failure:
        raise Failure(f"{failure}\nturbined log:\n{daemon.log()}") from None
    finally:
        daemon.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    harness.main(test)
