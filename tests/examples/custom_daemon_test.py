#!/usr/bin/env python3
"""custom_daemon_test.py — examples/custom_daemon, built the way a user builds it.

Installs this build tree into a fresh prefix, configures and builds examples/custom_daemon
against that prefix only (find_package(turbine)), runs the daemon it makes, calls its
functions with the installed `turbine` CLI and the installed Python package, restarts it to
see results come from disk, and stops it with the Shutdown RPC.
"""
import argparse
import os
import shutil
import sys
import tempfile

import harness
from harness import Daemon, Failure, expect_equal, run, run_json


def parse_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cmake", required=True)
    parser.add_argument("--build-dir", required=True, help="the Turbine build tree to install")
    parser.add_argument("--source-dir", required=True, help="the Turbine source tree")
    parser.add_argument("--work-dir", required=True, help="emptied, then holds prefix and build")
    parser.add_argument("--make-program", required=True)
    parser.add_argument("--cxx-compiler", required=True)
    parser.add_argument("--build-type", default="")
    parser.add_argument("--launcher", default="")
    parser.add_argument("--sanitizer-flags", default="")
    return parser.parse_args()


def install_and_build(options):
    """Returns (prefix, path of the built wordcountd)."""
    shutil.rmtree(options.work_dir, ignore_errors=True)
    prefix = os.path.join(options.work_dir, "prefix")
    build = os.path.join(options.work_dir, "build")
    run([options.cmake, "--install", options.build_dir, "--prefix", prefix], "install")
    for installed in ["bin/turbined", "bin/turbine", "include/turbine/engine.h",
                      "include/turbine/server/server.h", "include/turbine/client/client.h",
                      "include/turbine/storage/store.h", "include/turbine/v1/turbine.pb.h",
                      "include/turbine/v1/turbine.grpc.pb.h", "include/turbine/v1/turbine.proto"]:
        if not os.path.exists(os.path.join(prefix, installed)):
            raise Failure(f"install: {installed} missing under {prefix}")
    expect_equal(sorted(os.listdir(os.path.join(prefix, "bin"))), ["turbine", "turbined"],
                 "install: bin/ holds the daemon and the CLI only (no tests, benchmarks, examples)")

    configure = [options.cmake, "-S", os.path.join(options.source_dir, "examples/custom_daemon"),
                 "-B", build, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={options.make_program}",
                 f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCMAKE_CXX_COMPILER={options.cxx_compiler}"]
    if options.build_type:
        configure.append(f"-DCMAKE_BUILD_TYPE={options.build_type}")
    if options.launcher:
        configure.append(f"-DCMAKE_CXX_COMPILER_LAUNCHER={options.launcher}")
    if options.sanitizer_flags:  # a sanitized Turbine links only into a sanitized program
        configure += [f"-DCMAKE_CXX_FLAGS={options.sanitizer_flags}",
                      f"-DCMAKE_EXE_LINKER_FLAGS={options.sanitizer_flags}"]
    run(configure, "configure examples/custom_daemon against the prefix")
    with open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8") as cache:
        found = [line.strip() for line in cache if line.startswith("turbine_DIR:")]
    expect_equal(found, [f"turbine_DIR:PATH={prefix}/lib/cmake/turbine"],
                 "the package found is the installed one")
    run([options.cmake, "--build", build], "build examples/custom_daemon", timeout=600)
    return prefix, os.path.join(build, "wordcountd")


def check_calls(cli):
    """Calls the example's functions (and a standard one) on a fresh daemon."""
    def call(*args):
        return run_json(cli + ["--json", "call", *args], f"call {' '.join(args)}")

    functions = run(cli + ["functions"], "list functions").stdout
    for name in ["words.count(string doc) -> i64", "words.total(list<string> docs) -> i64",
                 "demo.fib(i64 n)"]:
        if name not in functions:
            raise Failure(f"functions: {name!r} not in\n{functions}")

    run(cli + ["set", "a", "the quick brown fox", "b", "jumps over"], "set a and b")
    total = call("words.total", '["a","b"]')
    expect_equal((total["value"], total["source"]), (6, "executed"), "words.total, first call")
    total = call("words.total", '["a","b"]')
    expect_equal((total["value"], total["source"]), (6, "memory"), "words.total, again")
    count = call("words.count", "a")
    expect_equal((count["value"], count["source"]), (4, "memory"),
                 "words.count a, computed for words.total")
    expect_equal(call("demo.fib", "20")["value"], 6765, "demo.fib from turbine::stdlib")

    # b changes, its count does not: words.count b runs again, words.total does not.
    run(cli + ["set", "b", "jumps   over"], "set b, same count")
    total = call("words.total", '["a","b"]')
    # Executed: words.count b ran for this call, though words.total itself did not.
    expect_equal((total["value"], total["source"]), (6, "executed"), "words.total, cut off")
    stats = run_json(cli + ["--json", "stats"], "stats")
    executions = {f["name"]: f["executions"] for f in stats["functions"]}
    expect_equal((executions.get("words.count"), executions.get("words.total")), (3, 1),
                 "executions of words.count and words.total after the cutoff")

    run(cli + ["set", "b", "jumps over the lazy dog"], "set b")
    total = call("words.total", '["a","b"]')
    expect_equal((total["value"], total["source"]), (9, "executed"), "words.total after set b")

    run(cli + ["set", "n", "5"], "set n to a number")
    refused = run(cli + ["call", "words.count", "n"], "words.count of a number", expect_code=1)
    if "must be a string" not in refused.stderr:
        raise Failure(f"words.count n: unexpected error {refused.stderr!r}")


def check_python_package(prefix, socket):
    """Calls the daemon with the turbine_client package installed under the prefix."""
    python_dir = os.path.join(prefix, "lib/python3/dist-packages")
    program = ("import sys, turbine_client\n"
               "print(turbine_client.__file__)\n"
               "print(turbine_client.Client(sys.argv[1]).call('words.count', 'a').value)\n")
    printed = run([sys.executable, "-B", "-c", program, f"unix:{socket}"],
                  "words.count with the installed Python package",
                  env=dict(os.environ, PYTHONPATH=python_dir)).stdout.split()
    expect_equal(printed, [os.path.join(python_dir, "turbine_client/__init__.py"), "4"],
                 "the installed turbine_client, and what it got")


def test():
    options = parse_options()
    prefix, wordcountd = install_and_build(options)
    scratch = tempfile.mkdtemp(prefix="wordcountd-")  # short: a socket path has a length limit
    socket = os.path.join(scratch, "wordcount.sock")
    data_dir = os.path.join(scratch, "cache")
    daemon = Daemon([wordcountd, socket, data_dir], os.path.join(scratch, "wordcountd.log"),
                    "wordcountd ready on unix:")
    cli = [os.path.join(prefix, "bin/turbine"), "--connect", f"unix:{socket}"]
    try:
        daemon.start()
        check_calls(cli)
        daemon.expect_clean_exit()

        daemon.start()
        total = run_json(cli + ["--json", "call", "words.total", '["a","b"]'],
                         "words.total after a restart")
        expect_equal((total["value"], total["source"]), (9, "disk"),
                     "words.total after a restart")
        check_python_package(prefix, socket)
        run(cli + ["shutdown"], "shutdown RPC")
        daemon.expect_clean_exit(how=None)
    except Failure as failure:
        raise Failure(f"{failure}\nwordcountd log:\n{daemon.log()}") from None
    finally:
        daemon.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    harness.main(test)
