#!/usr/bin/env python3
"""Strict checks of a Prometheus text-format (0.0.4) page, and of the
numbers in it against `nvmfctl stats --json`.

Usage: metrics_check.py METRICS_FILE STATS_JSON_FILE
Prints what it checked; exit 0 when everything holds, 1 otherwise.
"""
import json
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse(text):
    """{(name, frozenset(labels)): value}, {family: type}; raises on any
    line the format does not allow."""
    samples, types, helped = {}, {}, set()
    if not text.endswith("\n"):
        raise ValueError("the page does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if not NAME.match(name) or name in helped:
                raise ValueError(f"line {n}: bad or repeated HELP")
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in TYPES or parts[2] in types:
                raise ValueError(f"line {n}: bad TYPE line: {line}")
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#") or not line:
            raise ValueError(f"line {n}: stray line: {line!r}")
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m:
            raise ValueError(f"line {n}: not a sample: {line!r}")
        name, body, value = m.group(1), m.group(3), m.group(4)
        labels = []
        if body:
            pos = 0
            while pos < len(body):
                lm = LABEL.match(body, pos)
                if not lm:
                    raise ValueError(f"line {n}: bad labels: {body!r}")
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
                if pos < len(body):
                    if body[pos] != ",":
                        raise ValueError(f"line {n}: bad labels: {body!r}")
                    pos += 1
        fam = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and fam not in types:
            raise ValueError(f"line {n}: {name} has no TYPE before it")
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"line {n}: NaN")
        key = (name, frozenset(labels))
        if key in samples:
            raise ValueError(f"line {n}: repeated series {line!r}")
        samples[key] = v
    return samples, types


def main():
    text = open(sys.argv[1]).read()
    stats = json.load(open(sys.argv[2]))
    samples, types = parse(text)
    print(f"ok: {len(samples)} samples in {len(types)} families parse")

    def get(name, **labels):
        key = (name, frozenset(labels.items()))
        if key not in samples:
            raise SystemExit(f"FAIL: no series {name}{labels}")
        return samples[key]

    bad = 0
    for ns in stats["namespaces"]:
        lab = {"subsystem": ns["subsys"], "nsid": str(ns["nsid"])}
        for metric, field in (("reads_total", "reads"),
                              ("writes_total", "writes"),
                              ("errors_total", "errors"),
                              ("media_errors_total", "media_errors"),
                              ("read_bytes_total", "bytes_read"),
                              ("written_bytes_total", "bytes_written")):
            got = get("nvmfd_namespace_" + metric, **lab)
            if got != ns[field]:
                print(f"FAIL: {metric} of {lab}: {got} != stats {ns[field]}")
                bad += 1
        # Cumulative buckets, +Inf equal to _count.
        h = "nvmfd_namespace_command_latency_seconds"
        buckets = sorted((float(dict(k[1])["le"]), v)
                         for k, v in samples.items()
                         if k[0] == h + "_bucket" and
                         dict(k[1])["subsystem"] == lab["subsystem"] and
                         dict(k[1])["nsid"] == lab["nsid"])
        if any(a[1] > b[1] for a, b in zip(buckets, buckets[1:])):
            print(f"FAIL: histogram buckets of {lab} not cumulative")
            bad += 1
        if not buckets or buckets[-1][0] != math.inf or \
                buckets[-1][1] != get(h + "_count", **lab):
            print(f"FAIL: histogram of {lab}: +Inf bucket != _count")
            bad += 1
    print(f"ok: {len(stats['namespaces'])} namespaces agree with nvmfctl "
          "stats" if not bad else f"{bad} disagreements")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
