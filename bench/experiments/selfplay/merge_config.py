#!/usr/bin/env python3
"""Merges TOML run configurations, later files over earlier ones, table by table, and prints the
result: an arm's `[round]` keys join a base configuration's `[round]` table instead of repeating
it (TOML forbids a table twice).

    python3 merge_config.py BASE.toml ARM.toml > experiment.toml
"""
import json
import sys
import tomllib


def merge(into, other):
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string for what configurations hold
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise SystemExit(f"merge_config.py: cannot write {v!r} ({type(v).__name__})")


def write(table, path, out):
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and scalars:
        out.append(f"\n[{'.'.join(path)}]")
    for k, v in scalars.items():
        out.append(f"{k} = {value(v)}")
    for k, v in tables.items():
        write(v, path + [k], out)


def main():
    merged = {}
    for name in sys.argv[1:]:
        with open(name, "rb") as f:
            try:
                merge(merged, tomllib.load(f))
            except tomllib.TOMLDecodeError as e:
                raise SystemExit(f"merge_config.py: {name}: {e}")
    out = []
    write(merged, [], out)
    print("\n".join(out).lstrip("\n"))


if __name__ == "__main__":
    main()
