#!/usr/bin/env python3
"""Zero-downtime benchmark: markdown rows per rollout, ferry beside Ansible.

Usage: scripts/bench-zero-downtime-report.py OUT TAG...
Reads OUT/zd-TAG-aws.json (ferry-lab run --aws-report) and, per tool, the
load report of its rollout (ferry-lab load --report): OUT/zd-TAG-load.json
for ferry, OUT/zd-TAG-ansible-load.json for Ansible (when it ran). Both
rollouts ran on the same lab, one after the other; each one's figures come
from its own load window. A host's out-of-service window runs from its first
deregistration (either load balancer) to the moment it is healthy again in
both; AWS calls per host count every call made while the load ran. When
both tools ran, a third row gives ferry's figures as a ratio of Ansible's
(below 1: ferry's is smaller).
"""
import json
import os
import re
import statistics
import sys
from datetime import datetime

TOOLS = [("ferry", "load"), ("Ansible", "ansible-load")]


def ts(s):
    """Go's RFC 3339 (nanoseconds) as a datetime (microseconds)."""
    m = re.match(r"^(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    frac = (m.group(2) or ".0")[1:]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + "." + (frac + "000000")[:6] + tz)


def figures(load, aws):
    """The figures of one rollout: its load report and the emulator's log in its window."""
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
    return {
        "hosts": hosts,
        "duration": load["Duration"] / 1e9,
        "requests": load["Requests"],
        "failed": load["Failures"],
        "p99": load["P99"] / 1e6,
        "oos_median": statistics.median(windows) if windows else float("nan"),
        "oos_max": max(windows) if windows else float("nan"),
        "calls": len(calls) / hosts if hosts else float("nan"),
    }


def row(tag, tool, f):
    return (f"| {tag} | {tool} | {f['hosts']} | {f['duration']:.1f} s | {f['requests']} | {f['failed']} "
            f"| {f['p99']:.0f} ms | {f['oos_median']:.2f} s / {f['oos_max']:.2f} s | {f['calls']:.1f} |")


def ratio(a, b):
    return f"{a / b:.2f}×" if b else "–"


def ratio_row(tag, a, b):
    return (f"| {tag} | ferry / Ansible | | {ratio(a['duration'], b['duration'])} | "
            f"{ratio(a['requests'], b['requests'])} | {a['failed']} / {b['failed']} | {ratio(a['p99'], b['p99'])} "
            f"| {ratio(a['oos_median'], b['oos_median'])} / {ratio(a['oos_max'], b['oos_max'])} "
            f"| {ratio(a['calls'], b['calls'])} |")


def main():
    out, tags = sys.argv[1], sys.argv[2:]
    print("| rollout | tool | hosts | duration | requests | failed | p99 | out of service per host (median / max) | AWS calls per host |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tag in tags:
        aws = json.load(open(f"{out}/zd-{tag}-aws.json"))
        got = {}
        for tool, suffix in TOOLS:
            path = f"{out}/zd-{tag}-{suffix}.json"
            if os.path.exists(path):
                got[tool] = figures(json.load(open(path)), aws)
                print(row(tag, tool, got[tool]))
        if len(got) == 2:
            print(ratio_row(tag, got["ferry"], got["Ansible"]))


if __name__ == "__main__":
    main()
