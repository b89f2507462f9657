#!/usr/bin/env python3
"""Benchmark (not a test): packets lost at a steady rate, and how late they arrive.

On the test bed (`kcap-testbed up --prefix kcap-bench`), a paced UDP sender on node-a
sends small datagrams to 127.0.0.1 for a few seconds while one of these captures runs
on node-a with `-i any` and a `udp dst port` filter, over SSH from the client:

- agent:    kcap with its defaults (kcap's capture agent, TPACKET_V3, 20 ms blocks)
- tcpdump:  kcap --remote-tool tcpdump (tcpdump -U --immediate-mode, kcap's old default)
- openssh:  ssh node-a 'tcpdump -i any -U -w - udp dst port P' > file (plain tcpdump,
            libpcap's defaults: the baseline, measured in the same run)

Printed per rate: packets sent, captured by each (and the ratio to what was sent),
and the kernel drops each reported. Then latency at a low rate (20 packets/s for 5 s):
from the packet's capture timestamp to the moment its record reaches the reader of
the capture's stdout (same machine, same clock), median and 95th percentile; also for
kcap's merged stream of node-a and a quiet node-b ("merged").

Needs root and a release build (`cargo build --release --workspace`).
Usage: bench/capture-loss.py [--rates 5000,20000,50000,100000] [--seconds 4]
"""
import argparse
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
PREFIX = "kcap-bench"
CLIENT = f"{PREFIX}-client"
NODE = f"{PREFIX}-node-a"

SENDER = r"""
import socket, sys, time
port, rate, seconds, size = (int(a) for a in sys.argv[1:5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"k" * size
count = rate * seconds
per = max(1, rate // 500)
start = time.monotonic()
for i in range(count):
    s.sendto(payload, ("127.0.0.1", port))
    if i % per == per - 1:
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
took = time.monotonic() - start
print(count, round(count / took))
"""


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def capture_command(mode, ssh_config, port, out):
    filt = f"udp dst port {port}"
    if mode == "openssh":
        return ["ssh", "-F", ssh_config, "node-a", f"tcpdump -i any -U -w - '{filt}'"]
    cmd = [os.path.join(BIN, "kcap"), "--ssh-config", ssh_config, "--ssh-host", "node-a",
           "-f", filt, "--format", "pcap", "-o", out]
    if mode == "tcpdump":
        cmd += ["--remote-tool", "tcpdump"]
    return cmd


def count_packets(path, length):
    """Records of exactly `length` bytes on the wire (the sender's datagrams)."""
    out = sh("tshark", "-n", "-r", path, "-Y", f"udp.length == {length}", "-T", "fields",
             "-e", "frame.number", check=False).stdout
    return len(out.split())


def one_run(mode, ssh_config, port, rate, seconds, size, scratch):
    out = os.path.join(scratch, f"{mode}-{rate}.pcap")
    cmd = ["ip", "netns", "exec", CLIENT] + capture_command(mode, ssh_config, port, out)
    stdout = open(out, "wb") if mode == "openssh" else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)  # connected and capturing
    sent = sh("ip", "netns", "exec", NODE, "python3", "-c", SENDER, str(port), str(rate),
              str(seconds), str(size)).stdout.split()
    time.sleep(1.5)
    proc.send_signal(2)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if mode == "openssh":
        stdout.close()
        # The remote tcpdump outlives the ssh client until its next write fails.
        sh("ip", "netns", "exec", NODE, "pkill", "-f", f"udp dst port {port}", check=False)
    dropped = re.findall(r"(\d+) dropped by kernel", err)
    return int(sent[0]), int(sent[1]), count_packets(out, size + 8), (int(dropped[0]) if dropped else None)


def latency(mode, ssh_config, port, scratch):
    """Delays (ms) from capture timestamp to arrival on the reader of stdout.
    `merged`: kcap (agent) on node-a and a quiet node-b, one merged stream."""
    filt = f"udp dst port {port}"
    if mode == "merged":
        cmd = [os.path.join(BIN, "kcap"), "--ssh-config", ssh_config, "--ssh-host", "node-a",
               "--ssh-host", "node-b", "-f", filt, "--format", "pcap", "-o", "-"]
    elif mode == "openssh":
        cmd = ["ssh", "-F", ssh_config, "node-a", f"tcpdump -i any -U -w - '{filt}'"]
    else:
        cmd = [os.path.join(BIN, "kcap"), "--ssh-config", ssh_config, "--ssh-host", "node-a",
               "-f", filt, "--format", "pcap", "-o", "-"]
        if mode == "tcpdump":
            cmd += ["--remote-tool", "tcpdump"]
    proc = subprocess.Popen(["ip", "netns", "exec", CLIENT] + cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    delays = []

    def read():
        f = proc.stdout
        header = f.read(24)
        if len(header) < 24:
            return
        magic = struct.unpack("<I", header[:4])[0]
        frac = 1e-9 if magic == 0xA1B23C4D else 1e-6
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, sub, incl, _ = struct.unpack("<IIII", rec)
            f.read(incl)
            delays.append((time.time() - (sec + sub * frac)) * 1000)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(2.5)
    sh("ip", "netns", "exec", NODE, "python3", "-c", SENDER, str(port), "20", "5", "50")
    time.sleep(1.5)
    proc.send_signal(2)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    reader.join(timeout=10)
    if mode == "openssh":
        sh("ip", "netns", "exec", NODE, "pkill", "-f", f"udp dst port {port}", check=False)
    return delays


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="5000,20000,50000,100000")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="UDP payload bytes")
    args = parser.parse_args()
    for tool in ("kcap", "kcap-agent", "kcap-testbed"):
        if not os.path.exists(os.path.join(BIN, tool)):
            sys.exit(f"build first: cargo build --release --workspace ({tool} missing)")
    scratch = tempfile.mkdtemp(prefix="kcap-bench-loss-")
    bed = os.path.join(scratch, "bed")
    sh(os.path.join(BIN, "kcap-testbed"), "up", "--dir", bed, "--prefix", PREFIX, "--minimal", "--no-traffic")
    ssh_config = os.path.join(bed, "ssh_config")
    modes = ("agent", "tcpdump", "openssh")
    try:
        print(f"{args.seconds} s per run, {args.size}-byte UDP payloads to 127.0.0.1 on node-a, "
              f"captured with -i any")
        print("| rate asked | rate sent | sent | " +
              " | ".join(f"{m} captured (ratio) | {m} kernel drops" for m in modes) + " |")
        port = 20000
        for rate in (int(r) for r in args.rates.split(",")):
            row = None
            cells = []
            for mode in modes:
                port += 1
                sent, achieved, got, dropped = one_run(mode, ssh_config, port, rate,
                                                       args.seconds, args.size, scratch)
                row = row or (rate, achieved, sent)
                cells.append(f"{got} ({got / sent:.4f}) | {'-' if dropped is None else dropped}")
            print(f"| {row[0]} | {row[1]} | {row[2]} | " + " | ".join(cells) + " |", flush=True)
        print()
        print("latency at 20 packets/s, ms from capture to the reader (median, p95, max):")
        for mode in modes + ("merged",):
            port += 1
            d = latency(mode, ssh_config, port, scratch)
            if len(d) < 10:
                print(f"  {mode}: only {len(d)} packets")
                continue
            d.sort()
            print(f"  {mode}: {len(d)} packets, median {statistics.median(d):.1f}, "
                  f"p95 {d[int(len(d) * 0.95) - 1]:.1f}, max {d[-1]:.1f}")
    finally:
        sh(os.path.join(BIN, "kcap-testbed"), "down", "--dir", bed, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
