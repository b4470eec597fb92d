#!/usr/bin/env python3
"""print_table.py — print a Google Benchmark JSON file as a markdown table.

    python3 bench/print_table.py build-release/engine_bench.json
    python3 bench/print_table.py --columns=disk_bytes_per_task build-release/storage_bench.json

Time per op is wall time (`real_time`); the CPU column is the benchmark thread's CPU time,
which leaves out work done on engine workers. Standard library only.
"""

import json
import os
import sys

# Counters that get their own column, in this order; the rest go to "other counters".
# --columns=a,b replaces them (each binary has its own domain figures).
COLUMNS = ["allocs_per_op", "bytes_per_task"]
# Keys of a benchmark entry that are not user counters.
STANDARD_KEYS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type",
    "repetitions", "repetition_index", "threads", "iterations", "real_time", "cpu_time",
    "time_unit", "aggregate_name", "aggregate_unit", "error_occurred", "error_message",
    "label",
}
NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def format_time(ns):
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def format_number(value):
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.2f}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def print_machine(context):
    print("## Machine\n")
    print(f"- CPU: {cpu_model()}, nproc={len(os.sched_getaffinity(0))}, "
          f"{context.get('mhz_per_cpu', '?')} MHz")
    caches = ", ".join(
        f"L{c['level']} {c['type']} {c['size'] // 1024} KiB" for c in context.get("caches", []))
    if caches:
        print(f"- Caches: {caches}")
    load = context.get("load_avg")
    if load:
        print(f"- Load average at start: {', '.join(f'{x:.2f}' for x in load)}")
    if "absl_deadlock_detection" in context:
        print(f"- absl::Mutex deadlock detection: {context['absl_deadlock_detection']}")
    if "scratch_dir" in context:
        print(f"- Databases in: {context['scratch_dir']}")
    print(f"- Run: {context.get('date', '?')}, {context.get('executable', '?')}, "
          f"benchmark library build type: {context.get('library_build_type', '?')}")
    print()


def main(argv):
    columns = COLUMNS
    args = []
    for arg in argv[1:]:
        if arg.startswith("--columns="):
            columns = [c for c in arg[len("--columns="):].split(",") if c]
        else:
            args.append(arg)
    if len(args) != 1:
        sys.exit(f"usage: {argv[0]} [--columns=counter,...] <benchmark.json>")
    with open(args[0]) as f:
        data = json.load(f)
    print_machine(data.get("context", {}))

    print("| Benchmark | Iterations | Time/op (wall) | CPU/op | "
          + "".join(f"{c} | " for c in columns) + "Other counters |")
    print("|---|---:|---:|---:|" + "---:|" * len(columns) + "---|")
    benchmarks = data.get("benchmarks", [])
    # With --benchmark_repetitions, show each benchmark's median instead of every run.
    medians = {b["run_name"]: b for b in benchmarks
               if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"}
    for bench in benchmarks:
        run_name = bench.get("run_name", bench["name"])
        if bench.get("run_type") == "aggregate":
            continue
        if run_name in medians:
            if bench.get("repetition_index", 0) != 0:
                continue
            bench = dict(medians[run_name], name=f"{run_name} (median)",
                         iterations=bench["iterations"])
        print_row(bench, columns)


def print_row(bench, columns):
    name = bench["name"]
    if bench.get("error_occurred"):
        print(f"| {name} | | ERROR: {bench.get('error_message', '')} | |"
              + " |" * len(columns) + " |")
        return
    unit = NS_PER_UNIT[bench.get("time_unit", "ns")]
    counters = {k: v for k, v in bench.items()
                if k not in STANDARD_KEYS and isinstance(v, (int, float))}
    cells = [format_number(counters.pop(c)) if c in counters else "" for c in columns]
    other = ", ".join(f"{k}={format_number(v)}" for k, v in sorted(counters.items()))
    print(f"| {name} | {bench['iterations']} | {format_time(bench['real_time'] * unit)} | "
          f"{format_time(bench['cpu_time'] * unit)} | {''.join(c + ' | ' for c in cells)}"
          f"{other} |")


if __name__ == "__main__":
    main(sys.argv)
