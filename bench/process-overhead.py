#!/usr/bin/env python3
"""Benchmark (not a test): what `--process` costs on the node, at 10 kpps.

On the test bed (`kcap-testbed up --minimal --no-traffic`), node-a runs a UDP echo
server and a paced client on its loopback: 5,000 requests/s, each answered, so
10,000 packets/s, for a few seconds. In the same run, alternating, the traffic runs

- none:     with no capture (the baseline),
- kcap:     while `kcap --ssh-host node-a -i lo -f 'udp port P'` captures it (the agent),
- process:  the same with `--process` (the agent's programs on the socket tracepoints).

Printed per mode: the client's round trip (median and p99, microseconds), the CPU
the client and the echo server used (user+sys: the programs run in their context,
so their cost shows here), the agent's CPU on the node (from /proc before it stops),
and, for `process`, the time the kernel spent in kcap's programs (bpf_stats) per
packet. Ratios are against `none` (round trip, traffic CPU) and `kcap` (agent CPU).

Needs root and a release build (`cargo build --release --workspace`).
Usage: bench/process-overhead.py [--seconds 4] [--rounds 3]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
PREFIX = "kcap-bench"
CLIENT = f"{PREFIX}-client"
NODE = f"{PREFIX}-node-a"
TICK = os.sysconf("SC_CLK_TCK")

ECHO = r"""
import socket, sys, resource
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(2)
try:
    while True:
        data, peer = s.recvfrom(2048)
        if data == b"stop":
            break
        s.sendto(data, peer)
except socket.timeout:
    pass
r = resource.getrusage(resource.RUSAGE_SELF)
print(r.ru_utime + r.ru_stime)
"""

CLIENT_SCRIPT = r"""
import socket, sys, time, resource
port, rate, seconds = (int(a) for a in sys.argv[1:4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
rtts = []
start = time.monotonic()
for i in range(rate * seconds):
    t = time.monotonic()
    s.sendto(b"k" * 64, ("127.0.0.1", port))
    s.recvfrom(2048)
    rtts.append((time.monotonic() - t) * 1e6)
    ahead = start + (i + 1) / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
s.sendto(b"stop", ("127.0.0.1", port))
rtts.sort()
r = resource.getrusage(resource.RUSAGE_SELF)
print(rtts[len(rtts) // 2], rtts[int(len(rtts) * 0.99)], r.ru_utime + r.ru_stime, len(rtts) / (time.monotonic() - start))
"""


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def agent_cpu():
    """user+sys seconds of the running kcap-agent(s)."""
    total = 0.0
    for pid in sh("pgrep", "-x", "kcap-agent", check=False).stdout.split():
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / TICK
        except OSError:
            pass
    return total


def bpf_ns():
    """(run time ns, runs) of kcap's programs."""
    out = sh("bpftool", "prog", "show", check=False).stdout
    ns = sum(int(m) for m in re.findall(r"name kcap_\w+.*?run_time_ns (\d+)", out))
    runs = sum(int(m) for m in re.findall(r"name kcap_\w+.*?run_cnt (\d+)", out))
    return ns, runs


def one(mode, ssh_config, port, seconds):
    kcap = None
    if mode != "none":
        cmd = [os.path.join(BIN, "kcap"), "--ssh-config", ssh_config, "--ssh-host", "node-a",
               "-i", "lo", "-f", f"udp port {port}", "-o", "/dev/null", "--format", "pcap"]
        if mode == "process":
            cmd.append("--process")
        kcap = subprocess.Popen(["ip", "netns", "exec", CLIENT] + cmd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
    echo = subprocess.Popen(["ip", "netns", "exec", NODE, "python3", "-c", ECHO, str(port)],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    before = bpf_ns()
    cpu0 = agent_cpu()
    out = sh("ip", "netns", "exec", NODE, "python3", "-c", CLIENT_SCRIPT, str(port), "5000",
             str(seconds)).stdout.split()
    agent = agent_cpu() - cpu0
    after = bpf_ns()
    echo_cpu = float(echo.communicate(timeout=10)[0].strip() or 0)
    if kcap:
        kcap.send_signal(2)
        try:
            kcap.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            kcap.kill()
    median, p99, client_cpu, achieved = (float(x) for x in out)
    return {
        "median": median, "p99": p99, "traffic_cpu": client_cpu + echo_cpu,
        "agent_cpu": agent, "rate": achieved * 2,
        "bpf_ns": after[0] - before[0], "bpf_runs": after[1] - before[1],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("kcap", "kcap-agent", "kcap-testbed"):
        if not os.path.exists(os.path.join(BIN, tool)):
            sys.exit(f"build first: cargo build --release --workspace ({tool} missing)")
    if not shutil.which("bpftool"):
        sys.exit("bpftool is needed (scripts/install-deps installs it)")
    scratch = tempfile.mkdtemp(prefix="kcap-bench-process-")
    bed = os.path.join(scratch, "bed")
    stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    sh("sysctl", "-q", "kernel.bpf_stats_enabled=1")
    sh(os.path.join(BIN, "kcap-testbed"), "up", "--dir", bed, "--prefix", PREFIX, "--minimal",
       "--no-traffic")
    ssh_config = os.path.join(bed, "ssh_config")
    modes = ("none", "kcap", "process")
    results = {m: [] for m in modes}
    try:
        port = 21000
        for _ in range(args.rounds):
            for mode in modes:
                port += 1
                results[mode].append(one(mode, ssh_config, port, args.seconds))
        med = lambda m, k: statistics.median(r[k] for r in results[m])
        print(f"{args.rounds} rounds of {args.seconds} s, 5,000 UDP requests/s answered on "
              f"node-a's loopback (about {med('none', 'rate'):.0f} packets/s)")
        print("| mode | round trip median us | p99 us | traffic CPU s | agent CPU s | "
              "BPF ns per run | BPF runs per packet |")
        for m in modes:
            runs = med(m, "bpf_runs")
            per_run = med(m, "bpf_ns") / runs if runs else 0
            packets = med(m, "rate") * args.seconds
            print(f"| {m} | {med(m, 'median'):.1f} | {med(m, 'p99'):.1f} | "
                  f"{med(m, 'traffic_cpu'):.2f} | {med(m, 'agent_cpu'):.2f} | "
                  f"{per_run:.0f} | {runs / packets if packets else 0:.2f} |")
        print(f"ratios process/none: round trip {med('process', 'median') / med('none', 'median'):.2f}, "
              f"p99 {med('process', 'p99') / med('none', 'p99'):.2f}, "
              f"traffic CPU {med('process', 'traffic_cpu') / med('none', 'traffic_cpu'):.2f}; "
              f"process/kcap: round trip {med('process', 'median') / med('kcap', 'median'):.2f}, "
              f"agent CPU {med('process', 'agent_cpu') / max(med('kcap', 'agent_cpu'), 0.01):.2f}")
    finally:
        sh("sysctl", "-q", f"kernel.bpf_stats_enabled={stats}", check=False)
        sh(os.path.join(BIN, "kcap-testbed"), "down", "--dir", bed, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
