#!/usr/bin/env python3
"""What a program-domain run's padded proposals pad with, by tenth of the run.

    padding_kinds.py VALID_JSONL [VALID_JSONL ...] [--windows 10]

Reads the valid problems an archive exports (`selfplay archive export --format jsonl --valid`)
and sorts each padded one (padding > 0) by the first of these its text shows: a loop of zero or
one pass (`#0{`, `#1{`), a condition of literals alone (`?3<7{`), an identity (`+0`, `-0`, `*1`,
`0+`, `1*`), a self-assignment (`a=a`); otherwise dead code — a statement, variable, copy or
conditional whose value nothing reads. Prints one JSON object per file: per window, the share
of valid problems that are padded and the shares of each kind among them.
"""

import argparse
import json
import re

KINDS = [
    ("loop of 0 or 1 pass", re.compile(r"#[01]\{")),
    ("literal condition", re.compile(r"\?\d+[<>=]\d+\{")),
    ("identity", re.compile(r"[+\-]0(?!\d)|\*1(?!\d)|(?<![\d)])0\+|(?<![\d)])1\*")),
    ("self-assignment", re.compile(r"(?:^|[;{])([a-ex])=\1(?=[;}]|$)")),
]


def kind(text):
    for name, pattern in KINDS:
        if pattern.search(text):
            return name
    return "dead code"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--windows", type=int, default=10)
    a = ap.parse_args()
    for path in a.files:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        rows.sort(key=lambda r: r["id"])
        out = []
        n = len(rows)
        for w in range(a.windows):
            span = rows[w * n // a.windows:(w + 1) * n // a.windows]
            padded = [r for r in span if (r.get("padding") or 0) > 0]
            kinds = {}
            for r in padded:
                k = kind(r["text"])
                kinds[k] = kinds.get(k, 0) + 1
            out.append({
                "problems": len(span),
                "padded": round(len(padded) / len(span), 4) if span else None,
                "kinds": {k: round(v / len(padded), 3) for k, v in sorted(kinds.items())},
            })
        print(json.dumps({"file": path, "windows": out}))


if __name__ == "__main__":
    main()
