#!/usr/bin/env python3
"""Benchmark (not a test): every node of a larger test bed at once (`kcap node/all`).

Brings up a test bed of NODES nodes with PODS web pods per node (default 8 x 8, i.e.
64 web pods plus the bed's other pods), then captures through helper pods
(`--via node`) for SECONDS:

- baseline: one node (`node/node-a`), and
- all:      `node/all` (every node, merged into one pcapng, one interface per node),

in the same run, each with kcap's own rusage (user+sys CPU, peak RSS) from wait4.
Printed: packets, kernel drops per node (from the summary), CPU seconds, the share of
one core, peak RSS, CPU per packet, and the ratio all/baseline of CPU per packet.

Needs root and a release build (`cargo build --release --workspace`).
Usage: bench/all-nodes.py [--nodes 8] [--pods 8] [--seconds 10]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
PREFIX = "kcap-bench-all"


def measure(bed, targets, seconds, scratch, name):
    out = os.path.join(scratch, re.sub(r"[^a-z0-9]+", "-", name) + ".pcapng")
    cmd = ["ip", "netns", "exec", f"{PREFIX}-client", os.path.join(BIN, "kcap"),
           "--kubeconfig", os.path.join(bed, "kubeconfig"),
           "--image", "kcap.test/capture:1", "--via", "node", "-d", f"{seconds}s", "-o", out] + targets
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        print(err, file=sys.stderr)
        sys.exit(f"{name}: kcap failed ({status})")
    cpu = usage.ru_utime + usage.ru_stime
    wrote = re.search(r"wrote (\d+) packets", err)
    packets = int(wrote.group(1)) if wrote else 0
    drops = [int(d) for d in re.findall(r"(\d+) dropped by kernel", err)]
    nodes = len(re.findall(r"^kcap: node/", err, re.M))
    return {
        "name": name, "nodes": nodes, "packets": packets, "drops": sum(drops),
        "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024, "wall": wall,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--pods", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    for tool in ("kcap", "kcap-agent", "kcap-testbed"):
        if not os.path.exists(os.path.join(BIN, tool)):
            sys.exit(f"build first: cargo build --release --workspace ({tool} missing)")
    scratch = tempfile.mkdtemp(prefix="kcap-bench-all-")
    bed = os.path.join(scratch, "bed")
    subprocess.run([os.path.join(BIN, "kcap-testbed"), "up", "--dir", bed, "--prefix", PREFIX,
                    "--nodes", str(args.nodes), "--pods-per-node", str(args.pods)],
                   check=True, capture_output=True)
    try:
        pods = subprocess.run(["ip", "netns", "exec", f"{PREFIX}-client", "kubectl",
                               "--kubeconfig", os.path.join(bed, "kubeconfig"), "get", "pods",
                               "-A", "--no-headers"], capture_output=True, text=True).stdout
        print(f"test bed: {args.nodes} nodes, {len(pods.splitlines())} pods; "
              f"{args.seconds} s per capture, --via node, release build")
        rows = [measure(bed, ["node/node-a"], args.seconds, scratch, "baseline (node/node-a)"),
                measure(bed, ["node/all"], args.seconds, scratch, "node/all")]
        print("| capture | nodes | packets | kernel drops | kcap CPU s | share of one core (over the run) | peak RSS MiB | CPU us/packet |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            per = r["cpu"] / r["packets"] * 1e6 if r["packets"] else float("nan")
            r["per"] = per
            print(f"| {r['name']} | {r['nodes']} | {r['packets']} | {r['drops']} | {r['cpu']:.2f} | "
                  f"{r['cpu'] / r['wall']:.2f} | {r['rss_mib']:.1f} | {per:.2f} |")
        print(f"CPU per packet, node/all / one node: {rows[1]['per'] / rows[0]['per']:.2f}")
    finally:
        subprocess.run([os.path.join(BIN, "kcap-testbed"), "down", "--dir", bed], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
