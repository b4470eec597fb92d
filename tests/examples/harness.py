"""harness.py — steps, daemons and checks for the example tests.

A failing step raises Failure with everything needed to see why: the command, its exit
code and its output, or the daemon's log. main() turns that into a loud message and exit 1.
"""
import json
import os
import signal
import subprocess
import sys
import time
import traceback


class Failure(Exception):
    pass


def run(command, what, expect_code=0, timeout=300, **kwargs):
    """Runs `command`; returns its CompletedProcess. Fails unless it exits `expect_code`."""
    print(f"--- {what}: {' '.join(command)}", flush=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                **kwargs)
    except subprocess.TimeoutExpired as error:
        raise Failure(f"{what}: no exit after {timeout} s\nstdout:\n{error.stdout}\n"
                      f"stderr:\n{error.stderr}") from None
    if result.returncode != expect_code:
        raise Failure(f"{what}: exit code {result.returncode}, expected {expect_code}\n"
                      f"command: {' '.join(command)}\nstdout:\n{result.stdout}\n"
                      f"stderr:\n{result.stderr}")
    return result


def run_json(command, what, **kwargs):
    """Runs a command that prints one JSON document; returns it parsed."""
    result = run(command, what, **kwargs)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise Failure(f"{what}: not JSON: {result.stdout!r}") from None


def expect_equal(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: got {actual!r}, expected {expected!r}")


class Daemon:
    """A daemon process whose stderr goes to a log file, ready once it logs `marker`."""

    def __init__(self, command, log_path, marker):
        self.command = command
        self.log_path = log_path
        self.marker = marker
        self.process = None

    def start(self, timeout=60):
        print(f"--- start: {' '.join(self.command)}", flush=True)
        logged_before = len(self.log())  # a restart appends: look for a new marker only
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marker in self.log()[logged_before:]:
                return
            if self.process.poll() is not None:
                raise Failure(f"{self.command[0]} exited with {self.process.returncode} "
                              f"before it was ready\nlog:\n{self.log()}")
            time.sleep(0.05)  # polling the log file, with a deadline
        raise Failure(f"{self.command[0]} not ready after {timeout} s\nlog:\n{self.log()}")

    def stop(self, how=signal.SIGTERM, timeout=60):
        """Sends `how` (None: just waits, after a Shutdown RPC); returns the exit code."""
        if how is not None:
            self.process.send_signal(how)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"{self.command[0]} did not exit within {timeout} s\n"
                          f"log:\n{self.log()}") from None
        self.process = None
        return code

    def expect_clean_exit(self, how=signal.SIGTERM):
        code = self.stop(how)
        if code != 0:
            raise Failure(f"{self.command[0]} exited with {code}\nlog:\n{self.log()}")

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def main(test):
    """Runs test(); a Failure or any exception prints loudly and exits 1."""
    try:
        test()
    except Failure as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:  # a bug in the test itself is a failure too, with its traceback
        traceback.print_exc()
        sys.exit(1)
    print("PASSED", flush=True)
