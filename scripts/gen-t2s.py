#!/usr/bin/env python3
"""Regenerate data/opencc-t2s-chars.txt from OpenCC's t2s configuration.

Usage: pip install OpenCC==1.4.2 && python3 scripts/gen-t2s.py > data/opencc-t2s-chars.txt
Each CJK code point is converted on its own, so phrase tables do not apply: the
matcher folds text one character at a time, and the same table is applied to
both rule phrases and scanned text, so many-to-one mappings (發/髮 -> 发) stay consistent.
"""
import opencc

RANGES = [(0x2E80, 0x2FDF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F)]

conv = opencc.OpenCC("t2s.json")
print("# Traditional -> Simplified, one character per line (traditional<TAB>simplified).")
print("# Derived from OpenCC 1.4.2 (Apache-2.0, https://github.com/BYVoid/OpenCC): each CJK code point")
print("# converted alone with the t2s configuration; only single-character results are kept.")
print("# See data/LICENSE-OpenCC. Regenerate with scripts/gen-t2s.py.")
for lo, hi in RANGES:
    for cp in range(lo, hi + 1):
        ch = chr(cp)
        out = conv.convert(ch)
        if out != ch and len(out) == 1:
            print(f"{ch}\t{out}")
