#!/usr/bin/env python3
"""Builds the matcher benchmark's inputs (see BENCHMARKS.md).

    python3 benches/prepare.py DATA_DIR

Expects in DATA_DIR (benches/run.sh downloads them):
  chinese-poetry-2.0.1.tgz   npm package chinese-poetry 2.0.1 (`npm pack`)
  debs/*.deb                 Debian packages with Simplified Chinese documentation
                             (`apt-get download`, unpacked here, never installed)
and the PyPI packages jieba==0.42.1 and OpenCC==1.4.2 installed.

Writes into DATA_DIR:
  corpus.txt                 Simplified Chinese, one text line per line, shuffled (seed 42):
                             every string of chinese-poetry (poems, ci, qu, classics,
                             biographies; not the tone-pattern "strains" or "rank" data)
                             converted Traditional->Simplified with OpenCC t2s, plus every
                             distinct line with Han characters of the Debian documentation
                             (HTML/XML markup and man-page requests stripped)
  modern.txt                 the Debian documentation part alone
  empty.txt                  an empty file (start-up cost of the command-line tools)
  dict-1k.txt dict-10k.txt dict-100k.txt
                             entries of jieba's dict.txt with >= 2 characters, in file
                             order, shuffled with random.Random(42); nested prefixes
  inputs.txt                 sizes and counts, for BENCHMARKS.md
Nothing is rebuilt if corpus.txt and the dictionaries already exist (delete them to redo).
"""

import gzip
import html
import json
import os
import random
import re
import subprocess
import sys
import tarfile

MIN_CORPUS_BYTES = 50_000_000
SIZES = [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)]
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
TAG = re.compile(r"<[^>]*>")
SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
ROFF_ESC = re.compile(r"\\f[BIRP1-4]|\\f\(..|\\\(..|\\[&|^%e-]|\\s[+-]?\d")


def log(*a):
    print("prepare:", *a, file=sys.stderr, flush=True)


def poetry_lines(tgz):
    """Every string value with Han characters, one line per line of text."""
    out = []
    skip_dirs = ("/rank/", "/strains/")

    def walk(v, key=None):
        if isinstance(v, str):
            if key in ("strains", "id"):
                return
            for line in v.splitlines():
                line = line.strip()
                if HAN.search(line):
                    out.append(line)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)

    with tarfile.open(tgz) as tar:
        names = sorted(
            m.name
            for m in tar.getmembers()
            if m.isfile() and m.name.endswith(".json") and "/dist/" in m.name
            and not any(s in m.name for s in skip_dirs)
        )
        for name in names:
            data = tar.extractfile(name).read().decode("utf-8-sig")
            try:
                walk(json.loads(data))
            except json.JSONDecodeError as e:
                log(f"skipping {name}: {e}")
    return out


def strip_roff(text):
    lines = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            # Requests; keep the text argument of the common font/heading macros.
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0] in (".B", ".I", ".BI", ".BR", ".IR", ".RB", ".SH", ".SS", ".TP", ".IP"):
                line = parts[1].replace('"', " ")
            else:
                continue
        lines.append(ROFF_ESC.sub("", line))
    return "\n".join(lines)


def doc_lines(debs_dir):
    """Distinct lines with Han characters from the unpacked documentation packages."""
    seen = set()
    out = []
    root = os.path.join(debs_dir, "unpacked")
    for deb in sorted(f for f in os.listdir(debs_dir) if f.endswith(".deb")):
        dest = os.path.join(root, deb[:-4])
        if not os.path.isdir(dest):
            os.makedirs(dest)
            subprocess.run(["dpkg-deb", "-x", os.path.join(debs_dir, deb), dest], check=True)
    for dirpath, _, files in sorted(os.walk(root)):
        for fn in sorted(files):
            path = os.path.join(dirpath, fn)
            name = fn
            try:
                with open(path, "rb") as fh:
                    raw = fh.read()
                if name.endswith(".gz"):
                    raw = gzip.decompress(raw)
                    name = name[:-3]
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
                continue  # images, fonts, PDFs, other encodings
            low = name.lower()
            if low.endswith((".css", ".js", ".svg", ".json", ".map")):
                continue
            if low.endswith((".html", ".htm", ".xhtml", ".xml", ".xhp", ".xlf", ".opf", ".ncx")) or "<html" in text[:2000].lower():
                text = html.unescape(TAG.sub(" ", SCRIPT.sub(" ", text)))
            elif "/man/" in dirpath or re.search(r"\.\d\w*$", low):
                text = strip_roff(text)
            for line in text.splitlines():
                line = " ".join(line.split())
                if HAN.search(line) and line not in seen:
                    seen.add(line)
                    out.append(line)
    return out


def main():
    data = sys.argv[1]
    corpus_path = os.path.join(data, "corpus.txt")
    dict_paths = [os.path.join(data, f"dict-{n}.txt") for n, _ in SIZES]
    open(os.path.join(data, "empty.txt"), "w").close()

    if os.path.exists(corpus_path) and all(map(os.path.exists, dict_paths)):
        log(f"inputs exist in {data}; delete corpus.txt to rebuild")
        return

    import jieba  # noqa: F401  (for dict.txt's location)
    import opencc

    # Dictionaries.
    jieba_dict = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    words = []
    with open(jieba_dict, encoding="utf-8") as fh:
        for line in fh:
            w = line.split(" ", 1)[0].strip()
            if len(w) >= 2:
                words.append(w)
    random.Random(42).shuffle(words)
    for (name, n), path in zip(SIZES, dict_paths):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(words[:n]) + "\n")
    log(f"jieba dict.txt: {len(words)} entries of >= 2 characters; wrote {', '.join(n for n, _ in SIZES)}")

    # Corpus.
    cc = opencc.OpenCC("t2s")
    poems = poetry_lines(os.path.join(data, "chinese-poetry-2.0.1.tgz"))
    # Convert in blocks: one call per line would be dominated by call overhead.
    converted = []
    for i in range(0, len(poems), 20_000):
        converted.extend(cc.convert("\n".join(poems[i : i + 20_000])).split("\n"))
    assert len(converted) == len(poems)
    poems = converted
    docs = doc_lines(os.path.join(data, "debs"))
    docs = cc.convert("\n".join(docs)).split("\n")
    with open(os.path.join(data, "modern.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(docs) + "\n")

    lines = poems + docs
    random.Random(42).shuffle(lines)
    text = "\n".join(lines) + "\n"
    size = len(text.encode("utf-8"))
    if size < MIN_CORPUS_BYTES:
        sys.exit(f"prepare: corpus is only {size} bytes (< {MIN_CORPUS_BYTES})")
    with open(corpus_path, "w", encoding="utf-8") as fh:
        fh.write(text)

    pb = sum(len(l.encode()) + 1 for l in poems)
    db = sum(len(l.encode()) + 1 for l in docs)
    summary = (
        f"corpus.txt: {size} bytes ({size / 1e6:.1f} MB), {len(lines)} lines: "
        f"chinese-poetry 2.0.1 (OpenCC t2s) {pb / 1e6:.1f} MB in {len(poems)} lines + "
        f"Debian documentation {db / 1e6:.1f} MB in {len(docs)} distinct lines\n"
        f"dictionaries: jieba 0.42.1 dict.txt, {len(words)} entries of >= 2 characters, "
        f"shuffled (seed 42), prefixes of {', '.join(str(n) for _, n in SIZES)}\n"
    )
    with open(os.path.join(data, "inputs.txt"), "w", encoding="utf-8") as fh:
        fh.write(summary)
    log(summary.strip())


if __name__ == "__main__":
    main()
