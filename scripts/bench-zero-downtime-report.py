#!/usr/bin/env python3
"""Zero-downtime benchmark: one markdown row per rollout.

Usage: scripts/bench-zero-downtime-report.py OUT TAG...
Reads OUT/zd-TAG-load.json (ferry-lab load --report) and OUT/zd-TAG-aws.json
(ferry-lab run --aws-report). A host's out-of-service window runs from its
first deregistration (either load balancer) to the moment it is healthy again
in both; AWS calls per host count every call made while the load ran.
"""
import json
import re
import statistics
import sys
from datetime import datetime


def ts(s):
    """Go's RFC 3339 (nanoseconds) as a datetime (microseconds)."""
    m = re.match(r"^(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    frac = (m.group(2) or ".0")[1:]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + "." + (frac + "000000")[:6] + tz)


def row(out, tag):
    load = json.load(open(f"{out}/zd-{tag}-load.json"))
    aws = json.load(open(f"{out}/zd-{tag}-aws.json"))
    start, end = ts(load["Start"]), ts(load["End"])
    calls = [c for c in aws.get("calls") or [] if start <= ts(c["time"]) <= end]
    out_since, back = {}, {}
    for c in aws.get("changes") or []:
        t = ts(c["time"])
        if not (start <= t <= end) or not c["host"]:
            continue
        h = c["host"]
        if c["to"] == "draining" and h not in out_since:
            out_since[h] = t
        if c["to"] == "healthy" and h in out_since:
            back.setdefault(h, {})[c["load_balancer"]] = t
    windows = [(max(back[h].values()) - out_since[h]).total_seconds() for h in out_since if h in back]
    hosts = len(out_since)
    med = statistics.median(windows) if windows else float("nan")
    worst = max(windows) if windows else float("nan")
    p99 = load["P99"] / 1e6
    per_host = len(calls) / hosts if hosts else float("nan")
    return (f"| {tag} | {hosts} | {load['Duration'] / 1e9:.1f} s | {load['Requests']} | {load['Failures']} "
            f"| {p99:.0f} ms | {med:.2f} s / {worst:.2f} s | {per_host:.1f} |")


def main():
    out, tags = sys.argv[1], sys.argv[2:]
    print("| rollout | hosts | duration | requests | failed | p99 | out of service per host (median / max) | AWS calls per host |")
    print("|---|---|---|---|---|---|---|---|")
    for tag in tags:
        print(row(out, tag))


if __name__ == "__main__":
    main()
