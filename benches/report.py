#!/usr/bin/env python3
"""Turns the RESULT lines of benches/run.sh into the markdown tables of BENCHMARKS.md.

    python3 benches/report.py RESULTS.tsv
"""

import os
import sys


def size_of(path):
    name = os.path.basename(path)
    return name[len("dict-"):-len(".txt")] if name.startswith("dict-") else name


def fmt_int(n):
    return f"{int(n):,}"


def main():
    rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8") if l.startswith("RESULT\t")]
    sizes, tools, mbps = [], [], {}
    corpus_note = None
    out = ["| tool | dictionary | MB/s (scan) | build s | matches | automaton / database |", "|---|---|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        tool, size = r[1], size_of(r[2])
        if size not in sizes:
            sizes.append(size)
        if tool not in tools:
            tools.append(tool)
        if tool == "complyd":
            phrases, distinct, rejected, build, auto, matches, rate = r[3:10]
            exact, folded, across = r[12:15]
            mbps[tool, size] = float(rate)
            out.append(
                f"| **complyd** (fold + match + map offsets) | {size} ({fmt_int(distinct)} distinct) | **{float(rate):.1f}** | "
                f"{float(build):.3f} | {fmt_int(matches)} | {int(auto) / 1e6:.2f} MB |"
            )
            notes.append(
                f"complyd {size}: {fmt_int(matches)} matches = {fmt_int(exact)} exact (span is literally a dictionary entry) "
                f"+ {fmt_int(across)} across skipped characters (space, punctuation, line break inside the span) "
                f"+ {fmt_int(folded)} found only after width/case/Traditional→Simplified folding; "
                f"{rejected} phrases rejected (empty after folding)."
            )
            corpus_note = f"corpus: {int(r[10]):,} bytes ({int(r[10]) / 1e6:.1f} MB) in {int(r[11]):,} chunks."
        elif tool == "hyperscan":
            phrases, build, db, matches, rate = r[3:8]
            mbps[tool, size] = float(rate)
            out.append(f"| hyperscan (Python, block mode, all matches) | {size} | {float(rate):.1f} | {float(build):.3f} | {fmt_int(matches)} | {int(db) / 1e6:.2f} MB |")
        elif tool == "hyperscan-unavailable":
            notes.append("hyperscan: " + r[2])
        else:  # ripgrep variants
            phrases, startup, lines, rate, e2e = r[3:8]
            mbps[tool, size] = float(rate)
            out.append(
                f"| {tool} `-j1 -F -f dict -c` | {size} | {float(rate):.1f} (end-to-end {float(e2e):.1f}) | "
                f"{float(startup):.3f} (start-up + build) | {fmt_int(lines)} lines | – |"
            )
    print("\n".join(out))
    print()
    tools = [t for t in tools if t != "hyperscan-unavailable"]
    print("| MB/s (1 MB = 10^6 bytes) | " + " | ".join(sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for t in tools:
        print(f"| {t} | " + " | ".join(f"{mbps[t, s]:.1f}" if (t, s) in mbps else "–" for s in sizes) + " |")
    for t in tools:
        if t == "complyd":
            continue
        cells = []
        for s in sizes:
            if ("complyd", s) in mbps and (t, s) in mbps:
                cells.append(f"{mbps['complyd', s] / mbps[t, s]:.2f}×")
            else:
                cells.append("–")
        print(f"| complyd ÷ {t} | " + " | ".join(cells) + " |")
    print()
    if corpus_note:
        notes.insert(0, corpus_note)
    for n in notes:
        print(f"* {n}")


if __name__ == "__main__":
    main()
