#!/usr/bin/env python3
"""Benchmark (not a test): what serving costs. kcap fetches the same large stream
from a test-bed node (a stand-in tcpdump replays a synthetic pcap, as in
bench/ssh-throughput.py) and writes it as pcapng to /dev/null with `--serve`, in
the same run with no viewer and with four (curl -sN ... -o /dev/null, all joined
before the stream starts). Prints, per run, throughput and kcap's CPU time
(user + system), then the ratios four viewers / none. Every viewer must receive the
whole stream (no cut-off). Needs root and a release build (done here). Usage:
  bench/serve-viewers.py [--size BYTES] [--pairs N] [--viewers N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KCAP = os.path.join(ROOT, "target/release/kcap")
TESTBED = os.path.join(ROOT, "target/release/kcap-testbed")
CLIENT_NS = "kcap-tb-client"
PORT = 9090


def in_client(argv):
    return ["ip", "netns", "exec", CLIENT_NS] + argv


def status():
    """kcap's /status, fetched inside the client namespace (None until it answers)."""
    out = subprocess.run(in_client(["curl", "-s", "-m", "2", f"http://127.0.0.1:{PORT}/status"]),
                         capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return None


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")


def run(work, ssh_config, viewers):
    """One capture; returns (seconds from go to exit, kcap CPU seconds, bytes per viewer)."""
    go = os.path.join(work, "go")
    if os.path.exists(go):
        os.unlink(go)
    kcap = subprocess.Popen(in_client([KCAP, "-F", ssh_config, "--ssh-host", "node-a",
                                       "--remote-tool", "tcpdump", "--serve", f"127.0.0.1:{PORT}",
                                       "-o", "/dev/null", "--format", "pcapng"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: status() is not None, "kcap --serve")
    curls = [subprocess.Popen(in_client(["curl", "-sN", "-o", "/dev/null", "-w", "%{size_download}",
                                         f"http://127.0.0.1:{PORT}/capture.pcapng"]),
                              stdout=subprocess.PIPE, text=True) for _ in range(viewers)]
    wait_for(lambda: (status() or {}).get("viewers") == viewers, f"{viewers} viewers")
    start = time.monotonic()
    open(go, "w").close()
    _, wait_status, usage = os.wait4(kcap.pid, 0)
    took = time.monotonic() - start
    err = kcap.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(wait_status) != 0 or "cut off" in err:
        sys.exit(f"kcap failed or cut a viewer off:\n{err}")
    received = [int(c.communicate()[0] or 0) for c in curls]
    return took, usage.ru_utime + usage.ru_stime, received


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=500_000_000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--viewers", type=int, default=4)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "kcap", "-p", "kcap-testbed"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="kcap-bench-", dir="/var/tmp")
    bed = os.path.join(work, "bed")
    try:
        stream = os.path.join(work, "stream.pcap")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/make-pcap.py"), stream, str(args.size)], check=True)
        stand_in = os.path.join(work, "tcpdump")
        with open(stand_in, "w") as f:
            # The stream starts only once every viewer is there.
            f.write(f"#!/bin/sh\nwhile [ ! -e {work}/go ]; do sleep 0.02; done\nexec cat {stream}\n")
        os.chmod(stand_in, 0o755)
        subprocess.run([TESTBED, "up", "--dir", bed, "--minimal", "--no-traffic",
                        "--tool", f"node-a:tcpdump={stand_in}"], check=True, stdout=subprocess.DEVNULL)
        ssh_config = os.path.join(bed, "ssh_config")
        size = os.path.getsize(stream)
        print(f"stream: {size / 1e9:.2f} GB synthetic pcap from node-a over SSH, written as pcapng "
              f"to /dev/null with --serve; {args.viewers} viewers are curl -sN to /dev/null")
        run(work, ssh_config, 0)  # warm-up: page cache, sshd
        print(f"{'pair':>4} {'viewers':>7} {'MB/s':>8} {'kcap CPU s':>10}")
        cpu_ratios, speed_ratios = [], []
        for i in range(args.pairs):
            t0, cpu0, _ = run(work, ssh_config, 0)
            t4, cpu4, received = run(work, ssh_config, args.viewers)
            # A viewer gets the stream as pcapng, a little larger than the pcap.
            if min(received) < size:
                sys.exit(f"a viewer received {min(received)} bytes of a {size}-byte stream")
            print(f"{i + 1:>4} {0:>7} {size / t0 / 1e6:>8.0f} {cpu0:>10.2f}")
            print(f"{i + 1:>4} {args.viewers:>7} {size / t4 / 1e6:>8.0f} {cpu4:>10.2f}")
            cpu_ratios.append(cpu4 / cpu0)
            speed_ratios.append(t0 / t4)
        med = lambda xs: sorted(xs)[len(xs) // 2]
        print(f"throughput with {args.viewers} viewers / none: median {med(speed_ratios):.2f} "
              f"(min {min(speed_ratios):.2f}, max {max(speed_ratios):.2f})")
        print(f"kcap CPU with {args.viewers} viewers / none: median {med(cpu_ratios):.2f} "
              f"(min {min(cpu_ratios):.2f}, max {max(cpu_ratios):.2f})")
    finally:
        subprocess.run([TESTBED, "down", "--dir", bed], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
