"""What the experiment scripts share: reading JSON lines, and paired differences."""
import json
import math
import sys


def load_jsonl(path):
    """Every line of `path` as JSON; a line that is not ends the script, naming the file and line."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")
    return rows


def mean_and_se(diffs):
    """Mean of paired differences and its standard error (0 for a single difference)."""
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n)
