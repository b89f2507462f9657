#!/usr/bin/env python3
"""Merge throughput (issue 11): 8 pcap streams in, one time-ordered pcapng out, on one
core, kcap's merge (crates/pcap/examples/merge_bench.rs) against Wireshark's mergecap
measured in the same run.

Makes 8 synthetic "recorded" streams in a temporary directory under /tmp (deleted at
the end), each like one node's `tcpdump -i any -w -`: LINUX_SLL2, microsecond
timestamps, all 8 covering the same seconds with random gaps so the merge interleaves
packet by packet. Packet sizes follow SIZE_MIX below (about 710 bytes on average).
Then, after one unmeasured warm-up of each (the files are in the page cache), it runs
alternately, pinned with `taskset -c CORE`:

  mergecap -F pcapng -w /dev/null f1..f8
  merge_bench --out /dev/null f1..f8          (64 KiB reads, StreamDecoder, Merger, PcapngWriter)

and prints, per tool, GB/s (input bytes / wall), CPU GB/s (input bytes / user+sys),
CPU ns per packet (from wait4's rusage), and the ratio kcap/mergecap.
With --stages it also runs merge_bench stopping after read / decode / merge, so the
parts' CPU per packet can be told apart.

Run: bench/merge-throughput.py [--total 2000000000] [--runs 3] [--core 1] [--stages]
     [--also before=/path/to/older/merge_bench]
Needs: cargo build --release --example merge_bench -p kcap-pcap; mergecap
(apt-get install -y wireshark-common).
"""
import argparse
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "examples", "merge_bench")

# Captured frame length (LINUX_SLL2 header of 20 bytes included) -> share of packets.
# A TCP bulk-plus-requests mix as the test bed's web traffic seen on `-i any`: pure
# ACKs, small requests/responses, mid-size responses, full-MTU segments.
SIZE_MIX = [(72, 0.40), (150, 0.10), (610, 0.10), (1520, 0.40)]
SOURCES = 8
SLL2 = 276


def mean_size():
    return sum(n * p for n, p in SIZE_MIX)


def make_stream(path, size, seed):
    """One pcap file of about SIZE bytes, its packets spread over the same 10 s."""
    rng = random.Random(seed)
    record_mean = 16 + mean_size()
    count = int(size / record_mean)
    mean_gap_us = 10_000_000 / count
    sizes = [n for n, _ in SIZE_MIX]
    weights = [p for _, p in SIZE_MIX]
    pool = bytes(rng.randrange(256) for _ in range(4096))
    ts = 1_764_000_000 * 1_000_000
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, SLL2))
        out = bytearray()
        pack = struct.Struct("<IIII").pack
        picks = rng.choices(sizes, weights, k=count)
        for i, n in enumerate(picks):
            ts += 1 + int(rng.expovariate(1 / mean_gap_us))
            out += pack(ts // 1_000_000, ts % 1_000_000, n, n)
            off = (i * 61) & 2047
            out += pool[off : off + n]
            if len(out) > 8 << 20:
                f.write(out)
                out.clear()
        f.write(out)
    return count


def run(cmd, core):
    """Wall seconds, CPU seconds (user+sys) and stdout of CMD pinned to CORE."""
    start = time.perf_counter()
    p = subprocess.Popen(["taskset", "-c", str(core)] + cmd, stdout=subprocess.PIPE)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{cmd[0]} failed: status {status}")
    return wall, usage.ru_utime + usage.ru_stime, out.decode()


def summary(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--total", type=int, default=2_000_000_000, help="bytes of all 8 files")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--core", type=int, default=1)
    ap.add_argument("--stages", action="store_true")
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also measure another merge_bench build (e.g. before a change), in the same turns",
    )
    args = ap.parse_args()
    if not os.path.exists(BENCH):
        sys.exit(f"missing {BENCH}: cargo build --release --example merge_bench -p kcap-pcap")
    if not shutil.which("mergecap"):
        sys.exit("missing mergecap: apt-get install -y wireshark-common")
    free = shutil.disk_usage(args.dir).free
    if free < 2 * args.total:
        sys.exit(f"{args.dir}: {free} bytes free, want {2 * args.total}")

    work = tempfile.mkdtemp(prefix="kcap-merge-bench-", dir=args.dir)
    try:
        t = time.perf_counter()
        files, packets = [], 0
        for i in range(SOURCES):
            path = os.path.join(work, f"node{i}.pcap")
            packets += make_stream(path, args.total // SOURCES, seed=i)
            files.append(path)
        total = sum(os.path.getsize(f) for f in files)
        print(
            f"made {SOURCES} streams, {total / 1e9:.2f} GB, {packets} packets, "
            f"mean frame {mean_size():.0f} B, in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        print(f"load average {os.getloadavg()}", flush=True)
        tools = {
            "mergecap": ["mergecap", "-F", "pcapng", "-w", "/dev/null"] + files,
            "kcap": [BENCH, "--out", "/dev/null"] + files,
        }
        for also in args.also:
            name, path = also.split("=", 1)
            tools[name] = [path, "--out", "/dev/null"] + files
        for cmd in tools.values():
            run(cmd, args.core)  # warm-up: page cache, not measured
        results = {name: [] for name in tools}
        for i in range(args.runs):
            for name, cmd in tools.items():
                wall, cpu, out = run(cmd, args.core)
                results[name].append((wall, cpu))
                extra = f"  [{out.strip()}]" if name != "mergecap" else ""
                print(
                    f"run {i + 1} {name}: {total / wall / 1e9:.3f} GB/s wall, "
                    f"{total / cpu / 1e9:.3f} GB/s CPU, {cpu * 1e9 / packets:.0f} ns/packet{extra}",
                    flush=True,
                )
        print(f"load average {os.getloadavg()}")
        gbps = {n: [total / w / 1e9 for w, _ in r] for n, r in results.items()}
        cpu_gbps = {n: [total / c / 1e9 for _, c in r] for n, r in results.items()}
        ns = {n: [c * 1e9 / packets for _, c in r] for n, r in results.items()}
        for name in tools:
            print(
                f"{name}: GB/s wall {summary(gbps[name])}, GB/s CPU {summary(cpu_gbps[name])}, "
                f"CPU ns/packet {summary(ns[name])}"
            )
        for name in [n for n in tools if n != "mergecap"]:
            ratios = [k / m for k, m in zip(gbps[name], gbps["mergecap"])]
            cpu_ratios = [m / k for (_, k), (_, m) in zip(results[name], results["mergecap"])]
            print(f"ratio {name}/mergecap (wall GB/s, per pair): {summary(ratios)}")
            print(f"ratio {name}/mergecap (CPU GB/s, per pair): {summary(cpu_ratios)}")
        target = statistics.median(cpu_gbps["kcap"]) >= 3.0
        print(f"target 3 GB/s on one core (CPU GB/s median): {'met' if target else 'NOT met'}")
        if args.stages:
            for stage in ["read", "decode", "merge", "write"]:
                cpus = []
                for _ in range(args.runs):
                    _, cpu, _ = run([BENCH, "--stage", stage, "--out", "/dev/null"] + files, args.core)
                    cpus.append(cpu * 1e9 / packets)
                print(f"stage up to {stage}: CPU ns/packet {summary(cpus)}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
