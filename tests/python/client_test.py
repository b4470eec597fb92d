#!/usr/bin/env python3
"""client_test.py — turbine_client (client/python) against real turbined processes.

Each test class starts its daemons on temporary data dirs and talks to them only through
the package: calls from each source, pipelined calls with errors among them, inputs,
watches, the CLI's JSON conventions (checked against the real `turbine` CLI), tokens, TLS
with certificates openssl makes here, and a daemon that is not there.

Run by ctest (tests/python/CMakeLists.txt), which sets TURBINED, TURBINE_CLI and
PYTHONPATH (the package in the build tree, and tests/examples for harness.py).
"""
import concurrent.futures
import json
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

try:
    import grpc
    import turbine_client
except ImportError as missing:
    sys.exit(f"{sys.executable} cannot import {missing.name}: install python3-grpcio and "
             "python3-protobuf (scripts/setup), build the turbine_python target, and run "
             "through ctest, which sets PYTHONPATH")

from harness import Daemon
from turbine_client import Call, Client, FunctionError, Ref, TurbineError, to_json
from turbine_client import values

TURBINED = os.environ.get("TURBINED", "")
TURBINE_CLI = os.environ.get("TURBINE_CLI", "")
TIMEOUT = 60.0  # seconds: a deadline on everything, so a hang fails instead of waiting
LOG_DIR = tempfile.mkdtemp(prefix="turbine-py-logs-")  # printed if a test fails


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class Turbined:
    """A turbined on a data dir of its own under `scratch`, with extra `flags`."""

    def __init__(self, scratch, name, *flags):
        self.data_dir = os.path.join(scratch, name)
        log = os.path.join(LOG_DIR, name + ".log")
        self.daemon = Daemon([TURBINED, "--data-dir", self.data_dir, *flags], log,
                             "turbined ready on ")

    def start(self):
        self.daemon.start()
        return self

    def stop(self):
        self.daemon.expect_clean_exit()

    def kill(self):
        self.daemon.kill()

    def tcp_address(self):
        """The HOST:PORT it logged last (started with --listen HOST:0)."""
        return re.findall(r"turbined ready on (\S+:\d+)", self.daemon.log())[-1]


class DaemonTestCase(unittest.TestCase):
    """A scratch directory per class, removed with everything the class started."""

    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="turbine-py-")  # short: sockets have a limit
        cls.daemons = []

    @classmethod
    def tearDownClass(cls):
        for daemon in cls.daemons:
            daemon.kill()
        shutil.rmtree(cls.scratch, ignore_errors=True)

    @classmethod
    def start_daemon(cls, name, *flags):
        daemon = Turbined(cls.scratch, name, *flags)
        cls.daemons.append(daemon)
        return daemon.start()

    def assertFailsWith(self, code, call, *args, **kwargs):
        """Runs call(*args, **kwargs), expecting a TurbineError with `code`; returns it."""
        with self.assertRaises(TurbineError) as raised:
            call(*args, **kwargs)
        self.assertEqual(raised.exception.code, code, raised.exception)
        return raised.exception


class ValuesTest(unittest.TestCase):
    """Python values <-> turbine.v1.Value, without a daemon."""

    def round_trip(self, value):
        return values.from_proto(values.to_proto(value))

    def test_every_kind_comes_back_as_it_was_sent(self):
        # Above int64's range, an integer goes as uint_value: before, it was refused.
        sent = {"none": None, "yes": True, "int": -(1 << 63), "big": (1 << 63) - 1,
                "bigger": 1 << 63, "biggest": (1 << 64) - 1,
                "float": 2.5, "text": "héllo", "bytes": b"\x00\xff", "list": [1, [2, []]],
                "map": {"b": 1, "a": {}}, "ref": Ref(12), "cell": Ref("7/File/0")}
        self.assertEqual(self.round_trip(sent), sent)
        self.assertEqual(self.round_trip((1, 2)), [1, 2])
        self.assertTrue(math.isnan(self.round_trip(float("nan"))))
        wire = values.to_proto({"b": 1, "a": 2})
        self.assertEqual([e.key for e in wire.map_value.entries], ["a", "b"], "sorted keys")

    def test_the_cli_json_forms_mean_what_they_mean_to_the_cli(self):
        self.assertEqual(self.round_trip({"$ref": "12"}), Ref(12))
        self.assertEqual(self.round_trip({"$ref": "12/a/b/3"}), Ref(12, "a/b", 3))
        self.assertEqual(self.round_trip({"$bytes": "AP8="}), b"\x00\xff")
        self.assertEqual(self.round_trip({"$map": {"$ref": 1}}), {"$ref": 1})
        self.assertEqual(self.round_trip({"$ref": "1", "other": 2}), {"$ref": "1", "other": 2})
        self.assertEqual(to_json([b"\x00\xff", Ref("7/File/0"), {"$ref": 1}, {"$map": {}},
                                  float("inf"), -math.inf, math.nan, {"a": 1}]),
                         [{"$bytes": "AP8="}, {"$ref": "7/File/0"}, {"$map": {"$ref": 1}},
                          {"$map": {"$map": {}}}, {"$double": "Infinity"},
                          {"$double": "-Infinity"}, {"$double": "NaN"}, {"a": 1}])
        # JSON has no NaN or infinities: their form reads back as them (null did not).
        self.assertEqual(self.round_trip({"$double": "-Infinity"}), -math.inf)
        self.assertTrue(math.isnan(self.round_trip({"$double": "NaN"})))
        self.assertEqual(self.round_trip({"$map": {"$double": "NaN"}}), {"$double": "NaN"})
        with self.assertRaisesRegex(ValueError, r'at /\$double: \$double takes "NaN"'):
            values.to_proto({"$double": "1.5"})

    def test_refs_read_and_print_like_the_cli(self):
        self.assertEqual(str(Ref("12")), "12")
        self.assertEqual(str(Ref("12/Type/3")), "12/Type/3")
        self.assertEqual(Ref("12/Type/3"), Ref(12, "Type", 3))
        for bad in ["", "x", "-1", "1/T", "1//3", "1/T/x", "1/T/-3", "١٢"]:
            with self.assertRaises(ValueError, msg=bad):
                Ref(bad)
        with self.assertRaisesRegex(ValueError, "a cell type is UTF-8 text"):
            Ref(1, "\udcff", 0)

    def test_a_value_that_cannot_be_sent_is_refused_naming_where(self):
        cases = [({"a": [1, object()]}, "at /a/1: cannot send a value of type object"),
                 (1 << 64, "at /: 18446744073709551616 does not fit"),
                 (-(1 << 63) - 1, "at /: -9223372036854775809 does not fit"),
                 ({"$ref": 5}, "at /$ref: $ref takes a string"),
                 ({"$bytes": "!!"}, "at /$bytes: not valid base64"),
                 ({"$map": [1]}, "at /$map: $map takes an object"),
                 ({"x/y": {1: 2}}, "at /x~1y: map keys are strings, not int"),
                 ({"$ref": "1/x"}, 'at /$ref: task reference "1/x" is neither'),
                 # Text no protocol string can carry: before, a bare error with no place.
                 ([{"k": {"\udcffz": 2}}], "at /0/k/\\udcffz: map key '\\udcffz' is not UTF-8"),
                 ({"a": "x\ud800"}, "at /a: 'x\\ud800' holds '\\ud800' at 1, a lone surrogate"),
                 ({"caf\u00e9\udcff": 1}, "at /caf\u00e9\\udcff: map key 'caf\u00e9\\udcff' is not")]
        for value, message in cases:
            with self.assertRaises(ValueError, msg=message) as raised:
                values.to_proto(value)
            self.assertTrue(str(raised.exception).startswith(message), raised.exception)
        deep = []
        for _ in range(values.MAX_LISTS - 1):
            deep = [deep]
        values.to_proto(deep)  # 48 lists: as deep as the daemon parses
        with self.assertRaisesRegex(ValueError, "nest too deeply: at most 48 lists or 32 maps"):
            values.to_proto([deep])
        deep_map = {}
        for _ in range(values.MAX_MAPS - 1):
            deep_map = {"k": deep_map}
        values.to_proto(deep_map)
        with self.assertRaisesRegex(ValueError, "nest too deeply"):
            values.to_proto({"k": deep_map})
        loop = []
        loop.append(loop)
        with self.assertRaisesRegex(ValueError, "nest too deeply"):
            values.to_proto(loop)

    def test_options_of_the_wrong_type_are_value_errors(self):
        # Before: AttributeError for an int address, TypeError for bytes, and any truthy
        # wait_for_ready ("no" too) taken for True.
        for address in (5, b"unix:/tmp/x.sock"):
            with self.assertRaisesRegex(ValueError, "an address is a str", msg=repr(address)):
                turbine_client.Client(address)
        for wait in ("yes", "no", 1, None):
            with self.assertRaisesRegex(ValueError, "wait_for_ready is True or False",
                                        msg=repr(wait)):
                turbine_client.Client("unix:/tmp/x.sock", wait_for_ready=wait)

    def test_a_port_out_of_range_is_refused_not_wrapped(self):
        # gRPC would take it modulo 65536 and connect to another port without a word.
        for address in ("127.0.0.1:112986", "[::1]:65536", "localhost:99999"):
            with self.assertRaisesRegex(ValueError, "out of range", msg=address):
                Client(address)
        Client("127.0.0.1:65535").close()
        Client("127.0.0.1:065535").close()  # leading zeros: still 65535

    def test_an_empty_address_is_the_default_socket_as_for_the_cli(self):
        # It was a channel gRPC could not make: UNKNOWN "Failed to create secure client channel".
        self.assertEqual(Client("").address, Client().address)

    def test_a_port_that_is_not_a_number_is_refused(self):
        # gRPC would wrap "-18433" to 47103 and read "47103junk" as 47103.
        for address in ("127.0.0.1:-18433", "127.0.0.1:47103junk", "localhost:+1",
                        "localhost:", "127.0.0.1:47103/x"):
            with self.assertRaisesRegex(ValueError, "not a number from 0 to 65535", msg=address):
                Client(address)
        # Before: a DNS error at the first call (UNAVAILABLE, as if the daemon were down).
        with self.assertRaisesRegex(ValueError, "names no host before the port"):
            Client(":47103")
        with self.assertRaisesRegex(ValueError, "names no socket path"):
            Client("unix:")  # it was UNAVAILABLE "empty address list"
        # What is not a port is gRPC's to read, as before.
        for address in ("[::1]", "dns:///[::1]", "ipv6:[::1]", "dns://8.8.8.8:53/localhost",
                        "localhost:http", "dns:localhost", "ipv4:127.0.0.1:80", "[::1]:80"):
            Client(address).close()

    def test_a_max_message_size_grpc_cannot_use_is_refused(self):
        # Before: 0 failed every call, 1.5 and "x" were no limit, 2**40 an OverflowError at
        # the first call.
        for size in (0, -1, True, 1.5, "x", 1 << 40):
            with self.assertRaisesRegex(ValueError, "max_message_bytes must be", msg=size):
                Client("127.0.0.1:1", max_message_bytes=size)
        Client("127.0.0.1:1", max_message_bytes=(1 << 31) - 1).close()

    def test_a_socket_path_longer_than_an_address_holds_is_refused(self):
        # Before: TurbineError UNKNOWN "Failed to create secure client channel" at the call.
        with self.assertRaisesRegex(ValueError, r"more than a unix socket address holds \(107\)"):
            Client(data_dir="/tmp/" + "l" * 110)
        Client(data_dir="/tmp/" + "l" * 80).close()  # fits

    def test_text_that_is_not_utf8_is_sent_as_its_bytes(self):
        name = os.fsdecode(b"bad\xff\xfename")  # as os.listdir gives such a name
        self.assertEqual(values.to_proto(name).bytes_value, b"bad\xff\xfename")


class CallTest(DaemonTestCase):
    """One daemon on its default socket, reached through Client(data_dir=...)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.turbined = cls.start_daemon("calls")
        cls.client = Client(data_dir=cls.turbined.data_dir, timeout=TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        super().tearDownClass()

    def test_the_default_address_is_the_data_dirs_socket(self):
        self.assertEqual(self.client.address,
                         "unix:" + os.path.abspath(self.turbined.data_dir) + "/turbined.sock")
        relative = os.path.relpath(self.turbined.data_dir)
        self.assertEqual(turbine_client.default_address(relative), self.client.address)

    def test_a_call_says_where_its_result_came_from(self):
        first = self.client.call("demo.busy", 40, 1000)  # a key no other test calls
        self.assertEqual((first.value, first.source), (40, "executed"))
        again = self.client.call("demo.busy", 40, 1000)
        self.assertEqual((again.value, again.source, again.ref), (40, "memory", first.ref))
        self.assertTrue(again.ok)
        self.assertIsNone(again.error)

    def test_a_functions_error_raises_function_error_and_is_cached(self):
        with self.assertRaises(FunctionError) as raised:
            self.client.call("demo.fib", -1)
        error = raised.exception
        self.assertEqual(error.code, grpc.StatusCode.UNKNOWN)
        self.assertIn("n must be >= 0, got -1", error.message)
        self.assertEqual(error.source, "executed")
        with self.assertRaises(FunctionError) as raised:
            self.client.call("demo.fib", -1)
        self.assertEqual((raised.exception.source, raised.exception.ref), ("memory", error.ref))

    def test_a_bad_call_raises_the_status_code(self):
        missing = self.assertFailsWith(grpc.StatusCode.NOT_FOUND, self.client.call, "no.such")
        self.assertIn("no function named 'no.such'", missing.message)
        self.assertNotIsInstance(missing, FunctionError)
        wrong = self.assertFailsWith(grpc.StatusCode.INVALID_ARGUMENT, self.client.call,
                                     "demo.fib", "x")
        self.assertIn("argument 1 (n: i64): expected an integer, got a string", wrong.message)
        self.assertIn("INVALID_ARGUMENT: ", str(wrong))
        self.assertFailsWith(grpc.StatusCode.INVALID_ARGUMENT, self.client.call, "demo.fib")
        self.assertFailsWith(grpc.StatusCode.INVALID_ARGUMENT, self.client.call, "Path.parent")
        self.assertFailsWith(grpc.StatusCode.NOT_FOUND, self.client.call, "demo.fib", 1,
                             version=99)

    def test_a_value_that_cannot_be_sent_is_refused_before_sending(self):
        with self.assertRaisesRegex(ValueError, r"demo.fib: argument 1: at /: cannot send"):
            self.client.call("demo.fib", {1, 2})
        with self.assertRaisesRegex(ValueError, "a function name is a non-empty str"):
            self.client.call("")
        # Before: a bare UnicodeEncodeError from protobuf, naming nothing.
        with self.assertRaisesRegex(ValueError, "function name 'demo.\\\\udcff' is not UTF-8"):
            self.client.call("demo.\udcff", 1)
        with self.assertRaisesRegex(ValueError, "this is a Ref"):
            self.client.call("Path.parent", this=1.5)
        # Before: protobuf's "Value out of range: -1", naming neither.
        class Index:  # an integer of another kind (numpy's), through __index__
            def __index__(self):
                return 0
        self.assertEqual(self.client.call("demo.fib", 10, version=Index()).value, 55)
        for version in (-1, 2**32, "1", True, 1.0):
            with self.assertRaisesRegex(ValueError, "demo.fib: version is an int from 0"):
                self.client.call("demo.fib", 1, version=version)
            with self.assertRaisesRegex(ValueError, "demo.fib: version is an int from 0"):
                self.client.call_many([Call("demo.fib", 1, version=version)])

    def test_methods_take_their_receiver_as_this(self):
        path = os.path.join(self.scratch, "hello.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("hello\n")
        made = self.client.call("fs.path", path)
        asset = self.client.call("Path.asset", this=made.ref).value
        self.assertIsInstance(asset, Ref)
        self.assertEqual(asset.cell_type, "File")
        self.assertEqual(self.client.call("Asset.content", this=asset).value, b"hello\n")
        self.assertEqual(self.client.call("Asset.content", this=str(asset)).value, b"hello\n")
        self.assertEqual(self.client.call("Asset.content", this=to_json(asset)).value,
                         b"hello\n")

    def test_call_many_answers_in_order_with_errors_and_sources(self):
        self.client.call("demo.fib", 20)
        results = self.client.call_many([
            Call("demo.busy", 7, 300_000),  # slow: its reply comes after those below
            ("demo.fib", 20),
            ("demo.fib", -2),
            ("no.such", 1),
            ("demo.fib", "x"),
            Call("Path.parent"),  # a method without its receiver
            ["demo.busy", 8, 0],
        ])
        self.assertEqual(len(results), 7)
        self.assertEqual((results[0].value, results[0].source), (7, "executed"))
        self.assertEqual((results[1].value, results[1].source), (fib(20), "memory"))
        self.assertIsInstance(results[2].error, FunctionError)
        self.assertEqual((results[2].error.code, results[2].source),
                         (grpc.StatusCode.UNKNOWN, "executed"))
        self.assertIn("n must be >= 0, got -2", results[2].error.message)
        with self.assertRaises(FunctionError):
            results[2].value
        for refused, code in [(results[3], grpc.StatusCode.NOT_FOUND),
                              (results[4], grpc.StatusCode.INVALID_ARGUMENT),
                              (results[5], grpc.StatusCode.INVALID_ARGUMENT)]:
            self.assertFalse(refused.ok)
            self.assertNotIsInstance(refused.error, FunctionError)
            self.assertEqual((refused.error.code, refused.source, refused.ref),
                             (code, None, None))
        self.assertEqual((results[6].value, results[6].source), (8, "executed"))

    def test_call_many_pipelines_many_calls(self):
        results = self.client.call_many([("demo.fib", n % 90) for n in range(3000)])
        self.assertEqual([r.value for r in results], [fib(n % 90) for n in range(3000)])
        self.assertEqual(self.client.call_many([]), [])
        with self.assertRaisesRegex(ValueError, "call 1: a call is a Call or a tuple"):
            self.client.call_many([("demo.fib", 1), "demo.fib"])
        # Before: "call 0: ... not 'd'" (the letters of the str), and TypeError for None.
        for bad in ("demo.fib", b"demo.fib", None, 5):
            with self.assertRaisesRegex(ValueError, "calls is a list of calls", msg=repr(bad)):
                self.client.call_many(bad)

    def test_set_inputs_then_read_them_back(self):
        inputs = {"price": 12, "name": "widget", "blob": b"\x00\xff",
                  "nested": {"a": [1, 2.5, None, True], "$ref": {"$map": {}}},
                  "escaped": {"$map": {"$bytes": "not base64 here"}}}
        self.assertEqual(self.client.set_inputs(inputs), 5)
        expected = dict(inputs, escaped={"$bytes": "not base64 here"}, nested={
            "a": [1, 2.5, None, True], "$ref": {}})
        for key, value in expected.items():
            self.assertEqual(self.client.call("input.get", key).value, value, key)
        self.assertEqual(self.client.set_inputs({"price": 12, "name": "gadget"}), 1)
        self.assertEqual(self.client.call("input.get", "name").value, "gadget")
        self.assertEqual(self.client.set_inputs({}), 0)
        with self.assertRaisesRegex(ValueError, "an input key is a non-empty str"):
            self.client.set_inputs({"": 1})
        # Before: a bare UnicodeEncodeError "surrogates not allowed", naming no key.
        with self.assertRaisesRegex(ValueError, "input key 'a\\\\udcff' is not UTF-8 text"):
            self.client.set_inputs({"a\udcff": 1})
        with self.assertRaisesRegex(ValueError, "is not UTF-8 text"):
            self.client.unset(["b\udcff"])
        with self.assertRaisesRegex(ValueError, "input 'k': at /0: cannot send"):
            self.client.set_inputs({"k": [object()]})
        # Before: AttributeError "'list' object has no attribute 'items'".
        with self.assertRaisesRegex(ValueError, "inputs is a dict of key: value, not list"):
            self.client.set_inputs([("k", 1)])

    def test_unset_removes_inputs_and_readers_see_it(self):
        self.client.set_inputs({"unset.gone": 1, "unset.kept": 2})
        self.assertEqual(self.client.call("input.get", "unset.gone").value, 1)
        self.assertEqual(self.client.unset(["unset.gone", "unset.never"]), 1)
        with self.assertRaisesRegex(FunctionError, "input 'unset.gone' is not set"):
            self.client.call("input.get", "unset.gone")
        self.assertEqual(self.client.call("input.get", "unset.kept").value, 2)
        with self.assertRaisesRegex(ValueError, "an input key is a non-empty str"):
            self.client.unset([""])
        # Before: "... not 97" (the first byte) for bytes, and TypeError for None.
        for bad in (b"unset.kept", None, 5):
            with self.assertRaisesRegex(ValueError, "keys is one str or an iterable of str",
                                        msg=repr(bad)):
                self.client.unset(bad)
        self.assertEqual(self.client.call("input.get", "unset.kept").value, 2)

    def test_unset_of_one_str_is_that_key_not_its_letters(self):
        self.client.set_inputs({"u": 1, "v": 2, "uv": 3})
        self.assertEqual(self.client.unset("uv"), 1)
        self.assertEqual(self.client.call("input.get", "u").value, 1)
        self.assertEqual(self.client.call("input.get", "v").value, 2)
        with self.assertRaisesRegex(FunctionError, "input 'uv' is not set"):
            self.client.call("input.get", "uv")

    def test_stats_and_collect_garbage(self):
        self.client.call("demo.fib", 12)
        stats = self.client.stats()
        self.assertGreater(stats.tasks, 0)
        self.assertGreater(stats.memory_limit_bytes, 0)
        report = self.client.collect_garbage()
        self.assertGreater(report.bytes_before, 0)
        self.assertEqual(self.client.stats().gc_passes, stats.gc_passes + 1)

    def test_a_watch_sees_an_input_change(self):
        self.client.set_inputs({"watched": 1})
        with self.client.watch("input.get", "watched", timeout=TIMEOUT) as watch:
            self.assertEqual(next(watch).value, 1)
            self.client.set_inputs({"watched": 1})  # equal: nothing to see
            self.client.set_inputs({"watched": {"now": "a map"}})
            self.assertEqual(next(watch).value, {"now": "a map"})
            self.client.set_inputs({"watched": 3})
            changed = next(watch)
            self.assertEqual((changed.value, changed.source), (3, "executed"))
        self.assertEqual(list(watch), [], "a cancelled watch stops")

    def test_a_watch_goes_on_after_an_error_result(self):
        with self.client.watch("input.get", "set-later", timeout=TIMEOUT) as watch:
            unset = next(watch)
            self.assertIsInstance(unset.error, FunctionError)
            self.assertIn("set-later", unset.error.message)
            self.client.set_inputs({"set-later": "now"})
            self.assertEqual(next(watch).value, "now")

    def test_close_ends_open_watches_and_later_calls_say_the_client_is_closed(self):
        # Before, the watch raised TurbineError CANCELLED ("Channel closed!"), and a call
        # raised gRPC's "Cannot invoke RPC on closed channel!".
        client = Client(data_dir=self.turbined.data_dir, timeout=TIMEOUT)
        client.set_inputs({"closing": 1})
        watch = client.watch("input.get", "closing", timeout=TIMEOUT)
        self.assertEqual(next(watch).value, 1)
        client.close()
        self.assertEqual(list(watch), [], "the client's close ends its watches")
        with self.assertRaisesRegex(ValueError, "this Client is closed"):
            client.call("input.get", "closing")
        with self.assertRaisesRegex(ValueError, "this Client is closed"):
            client.call_many([("input.get", "closing")])

    def test_a_watch_of_a_bad_call_raises_when_iterated(self):
        watch = self.client.watch("no.such", timeout=TIMEOUT)
        self.assertFailsWith(grpc.StatusCode.NOT_FOUND, next, watch)

    def test_values_read_back_print_as_the_cli_prints_them(self):
        path = os.path.join(self.scratch, "shown.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("shown\n")
        cell = self.client.call("Path.asset", this=self.client.call("fs.path", path).ref).value
        self.assertEqual(cell.cell_type, "File")  # a cell that exists: set_inputs takes no other
        value = {"bytes": b"\x00\xff", "ref": cell, "only": {"$ref": 1},
                 "list": [1, -2.5, None, False, "text", math.inf, -math.inf]}
        self.client.set_inputs({"shown": dict(value, only={"$map": {"$ref": 1}})})
        result = self.client.call("input.get", "shown")
        printed = self.cli_json("call", "input.get", "shown")
        self.assertEqual(printed["value"], to_json(result.value))
        self.assertEqual(printed["ref"], {"$ref": str(result.ref)})
        # And what the CLI prints goes back in as the same value.
        self.client.set_inputs({"copied": printed["value"]})
        self.assertEqual(self.client.call("input.get", "copied").value, value)
        # NaN too (which no assertEqual compares): it printed as null before.
        self.client.set_inputs({"nan": math.nan})
        printed = self.cli_json("call", "input.get", "nan")
        self.assertEqual(printed["value"], {"$double": "NaN"})
        self.client.set_inputs({"nan copied": printed["value"]})
        self.assertTrue(math.isnan(self.client.call("input.get", "nan copied").value))

    def test_an_input_as_deep_as_the_daemon_stores_one_can_be_set_again(self):
        # SetInputs takes 49 lists inside one another. Before, the clients refused the value
        # read back ("at most 48 lists"), from Python and from what the CLI printed.
        deep = 1
        for _ in range(49):
            deep = [deep]
        self.client.set_inputs({"deep": deep})
        read = self.client.call("input.get", "deep").value
        self.assertEqual(self.client.set_inputs({"deep copy": read}), 1)
        printed = self.cli_json("call", "input.get", "deep")["value"]
        done = subprocess.run([TURBINE_CLI, "--connect", self.client.address, "set",
                               "deep cli copy", json.dumps(printed)],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.client.call("input.get", "deep cli copy").value, deep)
        with self.assertRaisesRegex(ValueError, "at most 49 lists or 32 maps"):
            self.client.set_inputs({"deeper": [deep]})

    def test_functions_lists_what_the_daemon_serves(self):
        by_name = {f.name: f for f in self.client.functions()}
        self.assertEqual([(p.name, p.type) for p in by_name["demo.fib"].params], [("n", "i64")])
        self.assertEqual(by_name["Path.parent"].receiver_type, "Path")

    def cli_json(self, *args):
        command = [TURBINE_CLI, "--connect", self.client.address, "--json", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)


class RestartTest(DaemonTestCase):
    def test_streams_on_a_connection_the_daemon_closed_are_opened_again(self):
        turbined = self.start_daemon("streams-restart")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            self.assertEqual(client.call("demo.fib", 12).value, fib(12))
            turbined.stop()
            turbined.start()
            # The first use of the old connection fails before the daemon sees it; the
            # client opens the stream again.
            self.assertEqual([r.value for r in client.call_many([("demo.fib", 13)])], [fib(13)])
            turbined.stop()
            turbined.start()
            with client.watch("demo.fib", 14, timeout=TIMEOUT) as watch:
                self.assertEqual(next(watch).value, fib(14))

    def test_streams_whose_daemon_dies_before_answering_fail_within_their_deadline(self):
        # gRPC's own retry of a stream whose daemon died before its first reply waited for
        # ever, past the deadline too.
        turbined = self.start_daemon("streams-killed")
        self.check_streams_end_with_their_daemon(turbined, turbined.kill)

    def test_streams_whose_daemon_stops_before_answering_fail_within_their_deadline(self):
        # Opened again on the stopping daemon's closing connection, a watch waited for ever.
        turbined = self.start_daemon("streams-stopped", "--listen", "127.0.0.1:0")
        self.check_streams_end_with_their_daemon(turbined, turbined.stop, turbined.tcp_address(),
                                                 names=("watch",))

    def check_streams_end_with_their_daemon(self, turbined, stop, address=None,
                                            names=("watch", "call_many")):
        # Daemon threads: a hang fails the test, not the run.
        raised = {}
        with Client(address, data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            def watch_first():
                with client.watch("demo.busy", 1, 9_000_000, timeout=5) as watch:
                    next(watch)
            def call_many():
                client.call_many([("demo.busy", 2, 9_000_000)], timeout=5)
            def run(name, body):
                try:
                    body()
                except TurbineError as error:
                    raised[name] = error.code
            bodies = {"watch": watch_first, "call_many": call_many}
            threads = [threading.Thread(target=run, args=(name, bodies[name]), daemon=True)
                       for name in names]
            for thread in threads:
                thread.start()
            time.sleep(1)  # both started their bodies
            stop()
            for thread in threads:
                thread.join(15)
                self.assertFalse(thread.is_alive(), "a stream outlived its deadline")
        for name in names:
            self.assertIn(raised.get(name), (grpc.StatusCode.UNAVAILABLE,
                                             grpc.StatusCode.DEADLINE_EXCEEDED), name)

    def test_after_a_restart_results_come_from_disk(self):
        turbined = self.start_daemon("restart")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            first = client.call("demo.fib", 30)
            self.assertEqual(first.source, "executed")
            turbined.stop()  # flushes the cache
            turbined.start()
            restored = client.call("demo.fib", 30)  # the same Client reconnects
            self.assertEqual((restored.value, restored.source, restored.ref),
                             (fib(30), "disk", first.ref))
            self.assertEqual(client.call("demo.fib", 30).source, "memory")


    def test_wait_for_ready_waits_for_the_daemon(self):
        turbined = Turbined(self.scratch, "late")  # not started yet
        self.daemons.append(turbined)
        with Client(data_dir=turbined.data_dir, wait_for_ready=True, timeout=TIMEOUT) as client:
            # Failing fast would be UNAVAILABLE: this one waited for its whole deadline.
            self.assertFailsWith(grpc.StatusCode.DEADLINE_EXCEEDED, client.call, "demo.fib", 3,
                                 timeout=0.2)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(client.call, "demo.fib", 3)
                turbined.start()
                self.assertEqual(waiting.result(timeout=TIMEOUT).value, 2)


class TimeoutTest(unittest.TestCase):
    # Before: accepted, and every call failed at once with DEADLINE_EXCEEDED.
    def test_a_timeout_that_is_no_deadline_is_a_value_error(self):
        for bad in (0, -1, float("nan"), float("inf"), "5", True):
            with self.assertRaises(ValueError, msg=repr(bad)):
                Client("127.0.0.1:1", timeout=bad)
        client = Client("127.0.0.1:1", timeout=None)
        with self.assertRaisesRegex(ValueError, "positive, finite"):
            client.call("demo.fib", 5, timeout=float("nan"))
        client.close()


class DataDirTest(unittest.TestCase):
    # Before: os.getcwd()'s FileNotFoundError, from inside Client().
    def test_a_relative_data_dir_in_a_removed_directory_is_a_value_error(self):
        before = os.getcwd()
        gone = tempfile.mkdtemp()
        os.chdir(gone)
        os.rmdir(gone)
        try:
            with self.assertRaisesRegex(ValueError, "the working directory it is relative to"):
                Client()
        finally:
            os.chdir(before)


class AddressTest(DaemonTestCase):
    def test_unix_paths_and_tcp_addresses(self):
        sock = os.path.join(self.scratch, "t.sock")
        turbined = self.start_daemon("addresses", "--listen", f"unix:{sock}",
                                     "--listen", "127.0.0.1:0")
        for address in [f"unix:{sock}", turbined.tcp_address()]:
            with Client(address, timeout=TIMEOUT) as client:
                self.assertEqual(client.call("demo.fib", 12).value, 144, address)


class UnavailableTest(DaemonTestCase):
    def test_no_daemon_at_a_socket_is_unavailable(self):
        missing = os.path.join(self.scratch, "nobody", "turbined.sock")
        with Client(f"unix:{missing}", timeout=TIMEOUT) as client:
            error = self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call, "demo.fib", 1)
            self.assertIn(missing, error.message)
            self.assertIn("No such file or directory", error.message)
            self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call_many,
                                 [("demo.fib", 1)])
            self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.set_inputs, {"a": 1})
            self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, next,
                                 client.watch("input.get", "a", timeout=TIMEOUT))
            self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.functions)

    def test_no_daemon_at_a_port_is_unavailable(self):
        with socket.socket() as probe:  # a port nothing listens on once this closes
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with Client(f"127.0.0.1:{port}", timeout=TIMEOUT) as client:
            error = self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call, "demo.fib", 1)
            self.assertIn("Connection refused", error.message)

    def test_a_call_that_waits_on_a_connection_never_answered_says_so(self):
        # What a turbined at its --max-connections bound does: the kernel takes the
        # connection, nobody answers. Before: only "Deadline Exceeded".
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        with Client(address, wait_for_ready=True, timeout=1) as client:
            error = self.assertFailsWith(grpc.StatusCode.DEADLINE_EXCEEDED, client.call,
                                         "demo.fib", 1)
            self.assertIn(f"no connection to {address} before the deadline: the connection "
                          "was taken but not answered", error.message)

    def test_a_daemon_that_stopped_is_unavailable(self):
        turbined = self.start_daemon("stops")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            self.assertEqual(client.call("demo.fib", 5).value, 5)
            turbined.stop()
            self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call, "demo.fib", 5)


class LargeResultTest(DaemonTestCase):
    def test_a_result_too_large_to_send_fails_alone(self):
        # Before, the reply broke gRPC's message limit and ended the stream: the other calls
        # of the call_many lost their answers, and a watch ended.
        turbined = self.start_daemon("large", "--max-message-bytes", str(1 << 20))
        big = os.path.join(self.scratch, "big.bin")
        with open(big, "wb") as f:
            f.write(b"x" * (2 << 20))
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            results = client.call_many([("demo.fib", 5), ("fs.read", big), ("demo.fib", 6)])
            self.assertEqual([results[0].value, results[2].value], [5, 8])
            too_large = results[1].error
            self.assertEqual(too_large.code, grpc.StatusCode.RESOURCE_EXHAUSTED, too_large)
            self.assertIn("--max-message-bytes", too_large.message)
            self.assertIsNotNone(results[1].ref)  # to pass on meanwhile
            self.assertFailsWith(grpc.StatusCode.RESOURCE_EXHAUSTED, client.call, "fs.read", big)
            with client.watch("fs.read", big) as watch:
                self.assertEqual(next(watch).error.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
                with open(big, "wb") as f:
                    f.write(b"small")
                self.assertEqual(next(watch).value, b"small")


class SmallMessageLimitTest(DaemonTestCase):
    def test_many_small_calls_fit_a_daemon_with_a_small_message_limit(self):
        # Before, call_many packed 1 MiB of calls per message: 4,000 calls of a 50-byte key
        # (255,870 bytes) failed whole against --max-message-bytes 65536.
        turbined = self.start_daemon("small-messages", "--max-message-bytes", "65536")
        key = "k" * 50
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            client.set_inputs({key: 1})
            results = client.call_many([("input.get", key)] * 4000)
            self.assertEqual([r.value for r in results], [1] * 4000)

    def test_a_daemon_limit_below_a_batch_gets_smaller_batches(self):
        # Before: RESOURCE_EXHAUSTED "Received message larger than max (18870 vs. 4096)",
        # the whole call_many failed for calls of twenty bytes each.
        turbined = self.start_daemon("tiny-messages", "--max-message-bytes", "4096")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            results = client.call_many([("demo.fib", n % 90) for n in range(1000)])
            self.assertEqual(results[89].value, 1779979416004714189)
            self.assertEqual(len(results), 1000)

    def test_batches_refused_after_others_were_answered_go_again_smaller(self):
        # The first batch (2,000 small calls, cut short by a 35,000-byte call that does not
        # fit after them) is answered before the second (that call and small ones up to
        # 64 KiB) is refused. Before, only a refusal before any answer made batches smaller:
        # RESOURCE_EXHAUSTED "Received message larger than max (65521 vs. 40000)".
        turbined = self.start_daemon("limit-after-answers", "--max-message-bytes", "40000")
        key = "k" * 35000
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            client.set_inputs({key: 7})
            calls = ([("demo.fib", n % 50) for n in range(2000)] + [("input.get", key)] +
                     [("demo.fib", 5)] * 3000)
            results = client.call_many(calls)
            self.assertEqual(len(results), 5001)
            self.assertEqual(results[10].value, 55)
            self.assertEqual(results[2000].value, 7)
            self.assertEqual([r.value for r in results[2001:]], [5] * 3000)


    def test_a_call_larger_than_a_message_is_refused_alone(self):
        # Before: RESOURCE_EXHAUSTED "Received message larger than max (20072 vs. 16384)"
        # for the whole call_many, which says a call that fails does not stop the others.
        turbined = self.start_daemon("oversized-call", "--max-message-bytes", "16384")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            results = client.call_many([("input.get", "x" * 20000), ("demo.fib", 3)])
            self.assertEqual(results[0].error.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertRegex(results[0].error.message, r"the call is \d+ bytes, more than "
                             r"turbined takes in a message \(its --max-message-bytes, 16384\)")
            self.assertEqual(results[1].value, 2)
            client.set_inputs({"large": "z" * 5000})  # for the reply below
        # The client's own limit: before, "Sent message larger than max", the whole call_many.
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT,
                    max_message_bytes=4000) as client:
            results = client.call_many([("input.get", "y" * 5000), ("demo.fib", 4)])
            self.assertRegex(results[0].error.message,
                             r"more than this client sends in a message \(max_message_bytes "
                             r"4000\)")
            self.assertEqual(results[1].value, 3)
            # A reply larger than the client takes: before, read as the daemon's limit (the
            # calls went again, to fail the same way) and "Received message larger than max".
            with self.assertRaisesRegex(TurbineError, r"a reply from the daemon is larger than "
                                                      r"this client takes \(max_message_bytes "
                                                      r"4000\): raise it"):
                client.call_many([("input.get", "large")])


class AbandonedCallManyTest(DaemonTestCase):
    def test_an_exception_out_of_call_many_cancels_its_calls(self):
        # Six calls of a second on the daemon's two workers; an exception from a signal
        # handler ends call_many after 0.3 s, and is kept (it holds call_many's frame).
        # Before, the stream stayed open and the daemon ran all six.
        turbined = self.start_daemon("abandoned", "--workers", "2")

        class Interrupted(Exception):
            pass

        def interrupt(signum, frame):
            raise Interrupted()

        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            previous = signal.signal(signal.SIGALRM, interrupt)
            kept = None  # with its traceback, which assertRaises would clear
            try:
                signal.setitimer(signal.ITIMER_REAL, 0.3)
                client.call_many([("demo.busy", 7000 + i, 1_000_000) for i in range(6)])
            except Interrupted as error:
                kept = error
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            self.assertIsNotNone(kept)
            self.assertIsNotNone(kept.__traceback__)
            time.sleep(2.5)  # the first two end at 1 s; without the cancel two more at 2 s
            busy = {f.name: f for f in client.stats().functions}.get("demo.busy")
            self.assertLessEqual(busy.executions if busy else 0, 2)


def wait_for_executions(client, count):
    """Waits, 30 s at most, until the daemon has run `count` task bodies."""
    deadline = time.monotonic() + 30
    while client.stats().executions < count and time.monotonic() < deadline:
        time.sleep(0.05)


class ShutdownTest(DaemonTestCase):
    def test_a_call_cut_by_a_shutdown_says_so(self):
        # 100 tasks of 200 ms: far past the 5 s a stopping daemon gives accepted calls.
        turbined = self.start_daemon("cut")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                call = pool.submit(client.call, "demo.steps", 100, 200000)
                wait_for_executions(client, 1)  # accepted once one of its tasks finished
                turbined.stop()
                with self.assertRaises(TurbineError) as raised:
                    call.result(timeout=TIMEOUT)
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE, raised.exception)
        self.assertIn("shutting down", raised.exception.message)

    def test_a_call_many_cut_by_a_shutdown_says_so(self):
        # Before, the stream was cancelled by gRPC: UNAVAILABLE "Cancelling all calls".
        turbined = self.start_daemon("cut-many")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                calls = pool.submit(client.call_many,
                                    [("demo.busy", 1, 0), ("demo.steps", 100, 200000)])
                wait_for_executions(client, 2)  # both accepted: one answered, one running
                turbined.stop()
                with self.assertRaises(TurbineError) as raised:
                    calls.result(timeout=TIMEOUT)
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE, raised.exception)
        self.assertIn("shutting down", raised.exception.message)

    def test_a_call_many_begun_while_the_daemon_stops_raises(self):
        # Refused whole, as a unary call is. Before, each of its calls came back with
        # UNAVAILABLE in its Result, as if the calls alone had failed.
        turbined = self.start_daemon("late-many")
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                running = pool.submit(client.call, "demo.steps", 100, 200000)
                wait_for_executions(client, 1)  # accepted: the stop waits for it
                turbined.daemon.process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 30
                refused = None
                while refused is None and time.monotonic() < deadline:
                    try:
                        client.call("demo.fib", 12)
                        time.sleep(0.05)
                    except TurbineError as error:
                        refused = error  # stopping now
                self.assertIsNotNone(refused, "the daemon never began to stop")
                with self.assertRaises(TurbineError) as raised:
                    client.call_many([("demo.fib", 12), ("demo.fib", 13)])
                self.assertRaises(TurbineError, running.result, timeout=TIMEOUT)
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE, raised.exception)
        self.assertIn("shutting down", raised.exception.message)
        self.assertEqual(turbined.daemon.process.wait(timeout=TIMEOUT), 0)


class TokenTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        token_file = os.path.join(cls.scratch, "token.txt")
        with open(token_file, "w", encoding="utf-8") as f:
            f.write("s3cret-token\n")
        os.chmod(token_file, 0o600)
        cls.turbined = cls.start_daemon("token", "--auth-token-file", token_file)

    def client(self, token):
        client = Client(data_dir=self.turbined.data_dir, token=token, timeout=TIMEOUT)
        self.addCleanup(client.close)
        return client

    def test_the_token_is_required(self):
        for token in [None, "wrong-token"]:
            client = self.client(token)
            error = self.assertFailsWith(grpc.StatusCode.UNAUTHENTICATED, client.call,
                                         "demo.fib", 1)
            self.assertIn("token", error.message)
            self.assertFailsWith(grpc.StatusCode.UNAUTHENTICATED, client.call_many,
                                 [("demo.fib", 1)])
            self.assertFailsWith(grpc.StatusCode.UNAUTHENTICATED, client.set_inputs, {"a": 1})
            self.assertFailsWith(grpc.StatusCode.UNAUTHENTICATED, next,
                                 client.watch("demo.fib", 1, timeout=TIMEOUT))
            self.assertFailsWith(grpc.StatusCode.UNAUTHENTICATED, client.functions)

    def test_the_right_token_is_served(self):
        client = self.client("s3cret-token")
        self.assertEqual(client.call("demo.fib", 10).value, 55)
        self.assertEqual([r.value for r in client.call_many([("demo.fib", 11)])], [89])
        self.assertEqual(client.set_inputs({"a": 1}), 1)
        self.assertEqual(next(client.watch("input.get", "a", timeout=TIMEOUT)).value, 1)

    def test_a_token_that_cannot_be_a_header_is_refused(self):
        for token in ["", "two\nlines", "naïve", 12]:
            with self.assertRaisesRegex(ValueError, "a token is a non-empty str", msg=token):
                Client(data_dir=self.turbined.data_dir, token=token)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=TIMEOUT)


class Certificates:
    """A throwaway CA and certificates it signs, made with the openssl CLI."""

    def __init__(self, directory, name):
        self.directory = directory
        self.ca = self.path(f"{name}-ca.pem")
        self.ca_key = self.path(f"{name}-ca.key")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN={name} test CA", "-keyout", self.ca_key, "-out", self.ca)

    def path(self, name):
        return os.path.join(self.directory, name)

    def issue(self, name, *extensions):
        """Returns (cert, key) files of a certificate for `name` signed by this CA."""
        key, request, cert = (self.path(f"{name}.{ext}") for ext in ("key", "csr", "pem"))
        extfile = self.path(f"{name}.ext")
        with open(extfile, "w", encoding="utf-8") as f:
            f.write("\n".join(extensions) + "\n")
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", key, "-out", request)
        openssl("x509", "-req", "-in", request, "-CA", self.ca, "-CAkey", self.ca_key,
                "-CAcreateserial", "-days", "2", "-out", cert, "-extfile", extfile)
        return cert, key


class TlsTest(DaemonTestCase):
    """A daemon on loopback TCP with a certificate for the name turbine.test only, so that
    reaching it at 127.0.0.1 needs server_name."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = Certificates(cls.scratch, "good")
        cls.other_certs = Certificates(cls.scratch, "other")
        cert, key = cls.certs.issue("server", "subjectAltName=DNS:turbine.test",
                                    "extendedKeyUsage=serverAuth")
        cls.turbined = cls.start_daemon("tls", "--listen", "127.0.0.1:0",
                                        "--tls-cert", cert, "--tls-key", key)
        cls.address = cls.turbined.tcp_address()

    def client(self, **options):
        client = Client(self.address, timeout=TIMEOUT, **options)
        self.addCleanup(client.close)
        return client

    def test_tls_with_the_daemons_ca(self):
        client = self.client(tls_ca=self.certs.ca, server_name="turbine.test")
        self.assertEqual(client.call("demo.fib", 13).value, 233)
        self.assertEqual([r.value for r in client.call_many([("demo.fib", 14)] * 3)],
                         [377] * 3)
        self.assertEqual(client.set_inputs({"over": "tls"}), 1)
        with client.watch("input.get", "over", timeout=TIMEOUT) as watch:
            self.assertEqual(next(watch).value, "tls")
        pem = read_bytes(self.certs.ca)  # PEM bytes work as well as a path
        self.assertEqual(self.client(tls_ca=pem, server_name="turbine.test")
                         .call("demo.fib", 13).value, 233)

    def test_a_certificate_from_another_ca_is_refused(self):
        client = self.client(tls_ca=self.other_certs.ca, server_name="turbine.test")
        error = self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call, "demo.fib", 1)
        self.assertIn("certificate verify failed", error.message)
        # The cause in words, as the C++ client and the CLI say it (gRPC's words after).
        self.assertTrue(error.message.startswith(
            f"TLS handshake with {self.address} failed: the daemon's certificate did not "
            f"verify against {self.other_certs.ca}"), error.message)

    def test_a_call_that_waits_says_why_it_could_not_connect(self):
        # Before: only "Deadline Exceeded".
        client = Client(self.address, tls_ca=self.other_certs.ca, server_name="turbine.test",
                        wait_for_ready=True, timeout=1)
        self.addCleanup(client.close)
        error = self.assertFailsWith(grpc.StatusCode.DEADLINE_EXCEEDED, client.call, "demo.fib", 1)
        self.assertIn(f"no connection to {self.address} before the deadline: TLS handshake with "
                      f"{self.address} failed: the daemon's certificate did not verify",
                      error.message)

    def test_the_certificate_must_name_the_server(self):
        for options in [{}, {"server_name": "elsewhere.test"}]:
            client = self.client(tls_ca=self.certs.ca, **options)
            self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call, "demo.fib", 1)

    def test_server_name_alone_turns_tls_on(self):
        # With the system's roots, which did not sign the test CA's certificate: the
        # handshake is tried (it was refused as "tls=False turns off", as if tls=False).
        client = self.client(server_name="turbine.test")
        error = self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, client.call, "demo.fib", 1)
        self.assertIn("certificate verify failed", error.message)

    def test_plain_text_to_the_tls_port_fails(self):
        error = self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, self.client().call,
                                     "demo.fib", 1)
        self.assertIn("closed the connection at once, as a TLS listener does", error.message)

    def test_tls_options_are_checked_before_connecting(self):
        cases = [(dict(address="unix:/tmp/x.sock", tls_ca=self.certs.ca), "TLS is for TCP"),
                 (dict(tls_cert=self.certs.ca), "needs both tls_cert and tls_key"),
                 (dict(tls_key=self.certs.ca_key), "needs both tls_cert and tls_key"),
                 (dict(tls=False, server_name="a"), "which tls=False turns off")]
        for options, message in cases:
            options.setdefault("address", self.address)
            with self.assertRaisesRegex(ValueError, message, msg=options):
                Client(**options)
        missing = os.path.join(self.scratch, "missing.pem")
        with self.assertRaisesRegex(ValueError, "cannot read the TLS CA file " + missing):
            Client(self.address, tls_ca=missing)

    def test_tls_files_that_cannot_be_used_are_named(self):
        # Before, gRPC failed to make the channel and the first call said UNAVAILABLE "empty
        # address list", as if no daemon ran.
        cert_a, key_a = self.certs.issue("client-a", "extendedKeyUsage=clientAuth")
        _, key_b = self.certs.issue("client-b", "extendedKeyUsage=clientAuth")
        locked = os.path.join(self.scratch, "locked.key")
        subprocess.run(["openssl", "ec", "-in", key_a, "-aes256", "-passout", "pass:abc",
                        "-out", locked], check=True, capture_output=True)
        cases = [(dict(tls_ca=b"not pem"), "holds no PEM block"),
                 # A key given as the CA: before, UNAVAILABLE "empty address list" at the call.
                 (dict(tls_ca=key_b), "the TLS CA file " + key_b + " holds no certificate"),
                 (dict(tls_ca=self.certs.ca, tls_cert=cert_a, tls_key=key_b),
                  "file " + key_b + " does not hold the key of the certificate file " + cert_a),
                 (dict(tls_ca=self.certs.ca, tls_cert=cert_a, tls_key=locked),
                  "file " + locked + " has a passphrase"),
                 # Given as bytes or as pathlib.Paths: before, not checked, and each call
                 # failed UNAVAILABLE "empty address list".
                 (dict(tls_ca=self.certs.ca, tls_cert=read_bytes(cert_a),
                       tls_key=read_bytes(key_b)),
                  "the TLS key given as bytes does not hold the key of the certificate given "
                  "as bytes"),
                 (dict(tls_ca=self.certs.ca, tls_cert=pathlib.Path(cert_a),
                       tls_key=pathlib.Path(key_b)),
                  "file " + key_b + " does not hold the key of the certificate file " + cert_a),
                 # A key as the certificate, the certificate as the key: before, each was
                 # "does not hold the key of the certificate", whatever the file held.
                 (dict(tls_ca=self.certs.ca, tls_cert=key_a, tls_key=key_a),
                  "the TLS certificate file " + key_a + " holds no certificate"),
                 (dict(tls_ca=self.certs.ca, tls_cert=cert_a, tls_key=cert_a),
                  "the TLS key file " + cert_a + " holds no private key"),
                 # Before: read until memory ran out.
                 (dict(tls_ca="/dev/zero"), "the TLS CA file /dev/zero is larger than 16 MiB")]
        open_fds = len(os.listdir("/proc/self/fd"))
        for options, message in cases:
            with self.assertRaisesRegex(ValueError, re.escape(message), msg=options):
                Client(self.address, **options)
        # The in-memory files that held PEM bytes for the check are closed again.
        self.assertEqual(len(os.listdir("/proc/self/fd")), open_fds)


class MutualTlsTest(DaemonTestCase):
    """A daemon that requires a client certificate from the test CA (--tls-client-ca)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = Certificates(cls.scratch, "mtls")
        cls.stranger = Certificates(cls.scratch, "stranger")
        server_cert, server_key = cls.certs.issue("server", "subjectAltName=DNS:turbine.test",
                                                  "extendedKeyUsage=serverAuth")
        cls.client_cert = cls.certs.issue("client-a", "extendedKeyUsage=clientAuth")
        cls.stranger_cert = cls.stranger.issue("client-b", "extendedKeyUsage=clientAuth")
        cls.turbined = cls.start_daemon("mtls", "--listen", "127.0.0.1:0",
                                        "--tls-cert", server_cert, "--tls-key", server_key,
                                        "--tls-client-ca", cls.certs.ca)
        cls.address = cls.turbined.tcp_address()

    def call(self, cert=None):
        cert, key = cert or (None, None)
        with Client(self.address, tls_ca=self.certs.ca, tls_cert=cert, tls_key=key,
                    server_name="turbine.test", timeout=TIMEOUT) as client:
            return client.call("demo.fib", 12).value

    def test_the_client_certificate_is_accepted(self):
        self.assertEqual(self.call(self.client_cert), 144)
        cert, key = self.client_cert
        self.assertEqual(self.call((read_bytes(cert), read_bytes(key))), 144)  # PEM bytes
        self.assertEqual(self.call((pathlib.Path(cert), pathlib.Path(key))), 144)

    def test_without_an_accepted_certificate_the_handshake_fails(self):
        for cert, cause in [(None, "it likely requires a client certificate (mutual TLS), and "
                                   "none was given"),
                            (self.stranger_cert, "it likely did not accept the client "
                                                 "certificate")]:
            error = self.assertFailsWith(grpc.StatusCode.UNAVAILABLE, self.call, cert)
            self.assertIn(f"TLS handshake with {self.address} failed: the daemon closed the "
                          f"connection: {cause}", error.message)


# UNREAD_CLIENT makes calls or watches of input `big` on a raw stub, then stops itself
# (SIGSTOP) before reading any reply; continued, it prints what each call came back with.
UNREAD_CLIENT = """
import collections, grpc, json, os, signal, sys, time
from turbine_client.v1 import turbine_pb2 as pb, turbine_pb2_grpc as pbg
address, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
stub = pbg.TurbineStub(channel)
request = pb.CallRequest(function="input.get", args=[pb.Value(string_value="big")])
if kind == "call":
    pending = [stub.Call.future(request) for _ in range(count)]
elif kind == "watch":
    pending = [stub.Watch(request) for _ in range(count)]
else:  # "stream": one CallStream, whose replies wait in the daemon, as many as it holds
    pending = stub.CallStream(iter([request] * count))
time.sleep(0.2)  # the requests are sent; of 1 GiB of replies it reads a fraction by then
os.kill(os.getpid(), signal.SIGSTOP)
outcomes = collections.Counter()
if kind == "stream":
    for reply in pending:
        outcomes["ok" if len(reply.value.bytes_value) == 1 << 20 else "wrong"] += 1
    pending = []
for call in pending:
    try:
        reply = call.result() if kind == "call" else next(call)
        outcomes["ok" if len(reply.value.bytes_value) == 1 << 20 else "wrong"] += 1
    except grpc.RpcError as error:
        outcomes[error.code().name] += 1
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error.details().startswith(
                "replies their clients have not read hold "):
            outcomes["said why"] += 1
print(json.dumps(outcomes), flush=True)
"""


def wait_until_stopped(child):
    """Whether `child` stopped itself (SIGSTOP) within 15 seconds."""
    for _ in range(300):
        with open(f"/proc/{child.pid}/stat", encoding="ascii") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                return True
        time.sleep(0.05)
    return False


class UnreadRepliesTest(DaemonTestCase):
    """A client that makes calls and reads none of their replies (a unary Call or a Watch:
    each holds its reply in the daemon until written) cannot take the daemon's memory.
    Before, 400 unread calls of a 1 MiB value took turbined's heap to 851 MB."""

    def test_unread_calls_and_watches_are_bounded(self):
        budget = 8 << 20  # --reply-buffer-bytes
        turbined = self.start_daemon("unread", "--reply-buffer-bytes", str(budget))
        address = "unix:" + os.path.abspath(turbined.data_dir) + "/turbined.sock"
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            client.set_inputs({"big": b"x" * (1 << 20)})
            for kind in ("call", "watch"):
                child = subprocess.Popen([sys.executable, "-c", UNREAD_CLIENT, address, kind,
                                          "1000"], stdout=subprocess.PIPE, text=True)
                try:
                    self.assertTrue(wait_until_stopped(child), kind)
                    # What the daemon answers meanwhile waits for the client: the largest
                    # resident set over two seconds.
                    resident = 0
                    for _ in range(20):
                        resident = max(resident, client.stats().resident_bytes)
                        time.sleep(0.1)
                    self.assertLess(resident, 200 << 20, kind)
                    # Small replies still go while the budget is full.
                    self.assertEqual(client.call("demo.fib", 20).value, 6765)
                finally:
                    child.send_signal(signal.SIGCONT)
                    out, _ = child.communicate(timeout=TIMEOUT)
                outcomes = json.loads(out)
                self.assertGreater(outcomes.get("RESOURCE_EXHAUSTED", 0), 0, (kind, outcomes))
                self.assertEqual(outcomes.get("said why"), outcomes["RESOURCE_EXHAUSTED"],
                                 (kind, outcomes))
                self.assertNotIn("wrong", outcomes, (kind, outcomes))
                # The budget empties once the replies are read: a large reply goes again
                # (once the daemon heard that the last of them was written).
                for attempt in range(50):
                    try:
                        self.assertEqual(len(client.call("input.get", "big").value), 1 << 20)
                        break
                    except TurbineError as error:
                        if error.code != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == 49:
                            raise
                        time.sleep(0.1)


    def test_a_watch_refused_for_other_clients_unread_replies_watches_again(self):
        # The watcher is not at fault: the daemon asks it to come back, and the clients do.
        budget = 4 << 20  # below one CallStream's bound (16 MiB): one stream fills it
        turbined = self.start_daemon("refused", "--reply-buffer-bytes", str(budget),
                                     "--metrics-listen", "127.0.0.1:0")
        address = "unix:" + os.path.abspath(turbined.data_dir) + "/turbined.sock"
        with Client(data_dir=turbined.data_dir, timeout=TIMEOUT) as client:
            client.set_inputs({"big": b"x" * (1 << 20)})
            child = subprocess.Popen([sys.executable, "-c", UNREAD_CLIENT, address, "stream",
                                      "64"], stdout=subprocess.PIPE, text=True)
            try:
                # Stopped, the child takes nothing more: the replies its stream has not read
                # fill the budget and stay.
                self.assertTrue(wait_until_stopped(child))
                for _ in range(300):
                    if client.stats().reply_bytes_queued >= budget:
                        break
                    time.sleep(0.05)
                self.assertGreaterEqual(client.stats().reply_bytes_queued, budget)
                watchers = self.start_well_behaved_watchers(turbined)
            finally:
                child.send_signal(signal.SIGCONT)
                out, _ = child.communicate(timeout=TIMEOUT)
            self.assertEqual(json.loads(out), {"ok": 64})
            self.check_well_behaved_watchers(client, *watchers)

    def start_well_behaved_watchers(self, turbined):
        """Watches of the large value, by the Python client and the CLI, made while other
        clients' unread replies fill the budget: refused for now (before, each ended with
        RESOURCE_EXHAUSTED), they wait and watch again."""
        got = []  # the first byte of each value the Python watch delivers, or its error

        def two_values():
            try:
                with Client(data_dir=turbined.data_dir) as watching:
                    with watching.watch("input.get", "big") as watch:
                        for result in watch:
                            got.append(result.value[:1] if len(result.value) == 1 << 20
                                       else result.value)
                            if len(got) == 2:
                                break
            except Exception as error:  # pylint: disable=broad-except
                got.append(error)
        thread = threading.Thread(target=two_values)
        thread.start()
        cli = subprocess.Popen([TURBINE_CLI, "--data-dir", turbined.data_dir, "watch",
                                "input.get", "big"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        refused_before = refused = self.refusals(turbined)
        for _ in range(300):  # refused, the watchers try again: at least twice in all
            refused = self.refusals(turbined)
            if refused >= refused_before + 2:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(refused, refused_before + 2)
        self.assertEqual(got, [], "a watch answered or ended while the budget was full")
        self.assertIsNone(cli.poll(), "the CLI's watch ended while the budget was full")
        return thread, got, cli

    @staticmethod
    def refusals(turbined):
        """The RESOURCE_EXHAUSTED answers of a turbined started with --metrics-listen."""
        address = re.findall(r"turbined metrics on (http://\S+/metrics)", turbined.daemon.log())[-1]
        with urllib.request.urlopen(address, timeout=TIMEOUT) as page:
            text = page.read().decode()
        return int(float(re.search(r'^turbine_errors_total\{code="RESOURCE_EXHAUSTED"\} (\S+)$',
                                   text, re.M).group(1)))

    def check_well_behaved_watchers(self, client, thread, got, cli):
        """Once the budget empties, the watches of start_well_behaved_watchers deliver, and
        go on: a change comes as on any watch."""
        try:
            for _ in range(600):
                if got:
                    break
                time.sleep(0.1)
            self.assertEqual(got, [b"x"])
            line = []
            reader = threading.Thread(target=lambda: line.append(cli.stdout.readline()))
            reader.start()
            reader.join(timeout=60)
            self.assertTrue(line and len(line[0]) > 1 << 20, cli.poll())
            client.set_inputs({"big": b"y" * (1 << 20)})
            thread.join(timeout=60)
            self.assertEqual(got, [b"x", b"y"])
        finally:
            cli.kill()
            _, err = cli.communicate(timeout=TIMEOUT)
        self.assertEqual(err, b"")


def main():
    if not TURBINED or not TURBINE_CLI:
        sys.exit("client_test.py: set TURBINED and TURBINE_CLI (ctest does)")
    try:
        program = unittest.main(exit=False, verbosity=2)
        if not program.result.wasSuccessful():
            for name in sorted(os.listdir(LOG_DIR)):
                with open(os.path.join(LOG_DIR, name), encoding="utf-8", errors="replace") as f:
                    print(f"--- {name}\n{f.read()}", file=sys.stderr)
            sys.exit(1)
    finally:
        shutil.rmtree(LOG_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
