#!/usr/bin/env python3
"""Where composition starves: for the valid problems no attempt solved, by their operations, how
many have a first step among their attempts that holds and takes one operation (what
`round.compose` needs to start a chain), and how often an attempt's first step folds more.

    python3 bench/experiments/selfplay/first_steps.py RUN_DIR/valid.jsonl

valid.jsonl is what run.sh exports (`selfplay archive export --format jsonl --valid`).
"""
import json
import re
import sys
import warnings

warnings.filterwarnings("ignore")
EXPR = re.compile(r"[0-9+\-*() ]+")


def operations(text):
    """Binary operators of an arithmetic step (a '-' at the start or after '(' is a sign)."""
    text = text.replace(" ", "")
    if not text or not EXPR.fullmatch(text):
        return None
    n, prev = 0, ""
    for ch in text:
        if ch in "+*" or (ch == "-" and prev not in ("", "(")):
            n += 1
        prev = ch
    return n


def value(text):
    """The exact integer value of a step (only digits, + - * and parentheses reach here)."""
    try:
        return eval(text.replace(" ", ""), {"__builtins__": {}})
    except Exception:
        return None


def main():
    by_ops = {}
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            if r.get("solve_rate") != 0 or not r.get("attempts"):
                continue
            n = operations(r["text"])
            if n is None or n < 2:
                continue
            answer = int(r["answer"])
            one_step, folded = 0, 0
            for a in r["attempts"]:
                first = a["output"].split("=")[0]
                k = operations(first)
                if k is None:
                    continue
                one_step += k == n - 1 and value(first) == answer
                folded += k < n - 1
            slot = by_ops.setdefault(n, [0, 0, 0.0])
            slot[0] += 1
            slot[1] += one_step > 0
            slot[2] += folded / len(r["attempts"])
    print("| operations | unsolved problems | with a one-operation first step that holds | attempts folding more in their first step |")
    print("|---|---|---|---|")
    for n, (count, startable, folded) in sorted(by_ops.items()):
        print(f"| {n} | {count} | {startable / count:.2f} | {folded / count:.2f} |")


if __name__ == "__main__":
    main()
