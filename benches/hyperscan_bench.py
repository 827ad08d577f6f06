#!/usr/bin/env python3
"""Hyperscan (PyPI `hyperscan`) all-matches baseline for the matcher benchmark.

    python3 benches/hyperscan_bench.py --corpus FILE --dict FILE [--dict FILE ...]
        [--runs N] [--chunk BYTES]

Block mode, pure-literal compiler (HS 5.2+), no flags: every end position of
every phrase is reported, i.e. all overlapping matches, counted by a Python
callback. The corpus is held in memory and scanned in the same chunks as the
Rust benchmark (about BYTES each, cut at line breaks). Compile time is measured
once; scan time is the median of N runs. Prints one tab-separated line per
dictionary on stdout:

    RESULT hyperscan <dict> <phrases> <compile s> <database bytes> <matches> <MB/s>
"""

import argparse
import statistics
import sys
import time

import hyperscan


def chunks(data: bytes, size: int):
    """Same split as benches/matcher.rs: last newline at or before `size` bytes,
    else the first one after."""
    out, start, n = [], 0, len(data)
    while start < n:
        limit = min(start + size, n)
        if limit == n:
            end = n
        else:
            p = data.rfind(b"\n", start, limit)
            if p >= 0:
                end = p + 1
            else:
                p = data.find(b"\n", limit)
                end = n if p < 0 else p + 1
        out.append(data[start:end])
        start = end
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--dict", action="append", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=64 * 1024)
    a = ap.parse_args()

    with open(a.corpus, "rb") as fh:
        data = fh.read()
    pieces = chunks(data, a.chunk)
    mb = len(data) / 1e6
    for path in a.dict:
        with open(path, encoding="utf-8") as fh:
            phrases = [l.strip() for l in fh if l.strip()]
        exprs = [p.encode("utf-8") for p in phrases]
        t = time.perf_counter()
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=0, literal=True)
        compile_s = time.perf_counter() - t

        count = 0

        def on_match(id, start, end, flags, ctx):
            nonlocal count
            count += 1

        def scan():
            nonlocal count
            count = 0
            for p in pieces:
                db.scan(p, match_event_handler=on_match)
            return count

        matches = scan()  # warm-up
        times = []
        for _ in range(max(1, a.runs)):
            t = time.perf_counter()
            if scan() != matches:
                sys.exit(f"{path}: runs disagree")
            times.append(time.perf_counter() - t)
        s = statistics.median(times)
        print(
            f"hyperscan {path}: {len(phrases)} phrases, compile {compile_s:.3f} s, database {db.size() / 1e6:.2f} MB, "
            f"{matches} matches, scan {s:.3f} s (min {min(times):.3f}, max {max(times):.3f}) = {mb / s:.1f} MB/s",
            file=sys.stderr, flush=True,
        )
        print(f"RESULT\thyperscan\t{path}\t{len(phrases)}\t{compile_s:.4f}\t{db.size()}\t{matches}\t{mb / s:.2f}", flush=True)


if __name__ == "__main__":
    main()
