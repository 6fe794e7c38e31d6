#!/usr/bin/env python3
"""An interestingness scorer for selfplay that runs as a process (Python standard library only).

selfplay starts it once and keeps it. It writes one JSON object per line to its standard input:

    {"id": "12-3", "problem": "(2+3)*4", "answer": "20", "solve_rate": 0.5,
     "canonical": "(2+3)*4", "features": {"ops": 2, "add": 1, "mul": 1, ...}}

and reads one JSON line back per request, in the same order:

    {"id": "12-3", "score": 0.7, "reason": "two kinds of operation, nested"}

`score` is in [0, 1]; `reason` is optional. Anything written to standard error goes to selfplay's
log. Plug it in with, in the run's configuration:

    [[scorers]]
    kind = "process"
    name = "structure"
    command = ["python3", "examples/scorer_process.py"]

This one likes problems that mix kinds of operation and nest them, written without padding, that
the solver solves about half the time. Replace `score` with your own taste.
"""

import json
import sys


def score(request):
    """A score in [0, 1] and a reason, from the request's features and solve rate."""
    f = request.get("features") or {}
    kinds = sum(1 for op in ("add", "sub", "mul") if f.get(op, 0) > 0)
    nested = f.get("height", 0) >= 2
    padded = f.get("padding", 0) > 0
    p = request.get("solve_rate")
    s = 0.45 * kinds / 3 + (0.25 if nested else 0.0) + (0.0 if padded else 0.1)
    if p is not None:
        s += 0.2 * (1 - abs(p - 0.5) * 2)
    s = min(1.0, max(0.0, s))
    reason = "%d kind%s of operation%s%s" % (
        kinds,
        "" if kinds == 1 else "s",
        ", nested" if nested else "",
        ", padded" if padded else "",
    )
    return s, reason


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            value, reason = score(request)
            answer = {"id": request["id"], "score": value, "reason": reason}
        except (ValueError, KeyError) as e:
            # One answer per request, always: a problem we cannot read gets an honest error line.
            print("cannot score %r: %s" % (line[:80], e), file=sys.stderr)
            answer = {"id": None, "score": None}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
