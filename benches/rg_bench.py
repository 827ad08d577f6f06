#!/usr/bin/env python3
"""ripgrep baseline for the matcher benchmark.

    python3 benches/rg_bench.py --corpus FILE --empty FILE --dict FILE [--dict FILE ...] [--runs N] [--rg PATH] [--label NAME]

Runs `rg -j1 -F -f DICT -c CORPUS` end to end N times, and the same command on
an empty file N times (start-up + reading and compiling the dictionary).
Scan throughput = corpus bytes / (median corpus time - median empty time).
`-c` prints the number of matching lines, not of matches. The corpus is read
through the page cache (a warm-up run comes first). Prints one tab-separated
line per dictionary on stdout:

    RESULT <label> <dict> <phrases> <start-up s> <matching lines> <MB/s> <end-to-end MB/s>
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode not in (0, 1):  # 1: no match
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr.decode(errors='replace')}")
    return dt, p.stdout.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--empty", required=True)
    ap.add_argument("--dict", action="append", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rg", default="rg")
    ap.add_argument("--label", default="rg")
    a = ap.parse_args()
    size = os.path.getsize(a.corpus)
    runs = max(1, a.runs)
    for path in a.dict:
        with open(path, encoding="utf-8") as fh:
            phrases = sum(1 for l in fh if l.strip())
        base = [a.rg, "-j1", "-F", "-f", path, "-c"]
        timed(base + [a.empty])
        empty = statistics.median(timed(base + [a.empty])[0] for _ in range(runs))
        _, lines = timed(base + [a.corpus])  # warm-up
        full = []
        for _ in range(runs):
            dt, out = timed(base + [a.corpus])
            if out != lines:
                sys.exit(f"{path}: runs disagree")
            full.append(dt)
        total = statistics.median(full)
        scan = total - empty
        mbps = size / 1e6 / scan if scan > 0 else float("inf")
        print(
            f"{a.label} {path}: {phrases} phrases, start-up+build {empty:.3f} s, {lines or 0} matching lines, "
            f"end-to-end {total:.3f} s (min {min(full):.3f}, max {max(full):.3f}), scan {scan:.3f} s = {mbps:.1f} MB/s",
            file=sys.stderr, flush=True,
        )
        print(f"RESULT\t{a.label}\t{path}\t{phrases}\t{empty:.4f}\t{lines or 0}\t{mbps:.2f}\t{size / 1e6 / total:.2f}", flush=True)


if __name__ == "__main__":
    main()
