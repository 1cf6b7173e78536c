#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Time a command: the wall clock of --repeat direct runs (perf_counter around spawn and wait,
after --warmup runs), then one more run under GNU time for the command's peak RSS ("%M", the
"Maximum resident set size" of `time -v`; Debian package `time`). GNU time is a small C
program, so the RSS it reports is the command's own, not a copy of this interpreter's (a fork
from Python would start the child at Python's size); it is kept out of the timed runs because
it adds tens of milliseconds of its own. Prints one JSON object: median and min wall time in
ms, peak RSS in KiB. A run that exits non-zero aborts with its status.

  timeit.py [--repeat N] [--warmup N] -- CMD [ARGS...]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


GNU_TIME = "/usr/bin/time"


def run_once(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit("timeit: %s exited %d" % (" ".join(cmd), r.returncode))
    return wall * 1000.0


def peak_rss_kb(cmd):
    with tempfile.NamedTemporaryFile() as out:
        r = subprocess.run([GNU_TIME, "-f", "%M", "-o", out.name] + cmd, stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.exit("timeit: %s exited %d" % (" ".join(cmd), r.returncode))
        return int(open(out.name).read().split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit("timeit: %s missing (Debian package time)" % GNU_TIME)
    for _ in range(args.warmup):
        run_once(cmd)
    runs = [run_once(cmd) for _ in range(args.repeat)]
    print(json.dumps({
        "median_ms": round(statistics.median(runs), 2),
        "min_ms": round(min(runs), 2),
        "max_rss_kb": peak_rss_kb(cmd),
    }))


if __name__ == "__main__":
    main()
