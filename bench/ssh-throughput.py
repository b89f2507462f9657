#!/usr/bin/env python3
"""Benchmark (not a test): kcap against OpenSSH fetching the same large pcap stream.

A test-bed node's `tcpdump` is replaced by a stand-in that replays a synthetic pcap
file (bench/make-pcap.py). In the same run, for several pairs, the stream is fetched by
  OpenSSH:  ssh -F ssh_config node-a 'tcpdump -U -w -' > file
  kcap:     kcap -F ssh_config --ssh-host node-a --format pcap -o file
and we print each throughput, the kcap/OpenSSH ratio (target >= 0.9) and kcap's peak
RSS (target <= 32 MiB, independent of the stream's length: a short stream is measured
too). Needs root and a release build (done here). Usage:
  bench/ssh-throughput.py [--size BYTES] [--pairs N]
"""
import argparse
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


def timed(argv, stdout):
    """Runs argv, returns (seconds, peak RSS of the child in KiB)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, wait_status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    status = os.waitstatus_to_exitcode(wait_status)
    if status != 0:
        sys.exit(f"{' '.join(argv)} failed ({status}): {err}")
    return took, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_100_000_000)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "kcap", "-p", "kcap-testbed"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="kcap-bench-", dir="/var/tmp")
    bed = os.path.join(work, "bed")
    try:
        streams = {}
        for name, size in (("long", args.size), ("short", args.size // 2)):
            path = os.path.join(work, f"{name}.pcap")
            subprocess.run([sys.executable, os.path.join(ROOT, "bench/make-pcap.py"), path, str(size)], check=True)
            streams[name] = path
        stand_in = os.path.join(work, "tcpdump")
        with open(stand_in, "w") as f:
            # Which stream to replay is chosen by a file, so one bed serves both.
            f.write(f"#!/bin/sh\nexec cat \"$(cat {work}/which)\"\n")
        os.chmod(stand_in, 0o755)
        subprocess.run([TESTBED, "up", "--dir", bed, "--minimal", "--no-traffic",
                        "--tool", f"node-a:tcpdump={stand_in}"], check=True, stdout=subprocess.DEVNULL)
        ssh_config = os.path.join(bed, "ssh_config")

        def fetch_openssh(out):
            with open(out, "wb") as f:
                return timed(["ip", "netns", "exec", CLIENT_NS, "ssh", "-F", ssh_config, "node-a",
                              "tcpdump -U -w -"], f)

        def fetch_kcap(out):
            # --remote-tool tcpdump: the stand-in replays its stream whatever it is
            # asked, also for the capture agent's `tcpdump -ddd`.
            return timed(["ip", "netns", "exec", CLIENT_NS, KCAP, "-F", ssh_config, "--ssh-host", "node-a",
                          "--remote-tool", "tcpdump", "--format", "pcap", "-q", "-o", out],
                         subprocess.DEVNULL)

        print(f"stream: {args.size / 1e9:.2f} GB synthetic pcap replayed by a stand-in tcpdump on node-a")
        print(f"{'pair':>4} {'OpenSSH GB/s':>13} {'kcap GB/s':>10} {'ratio':>6} {'kcap peak RSS':>14}")
        ratios, rss_long = [], []
        with open(os.path.join(work, "which"), "w") as f:
            f.write(streams["long"])
        size = os.path.getsize(streams["long"])
        # One unmeasured pair first: page cache, sshd and key caches warm for both.
        for fetch in (fetch_openssh, fetch_kcap):
            out = os.path.join(work, "warmup.out")
            fetch(out)
            os.unlink(out)
        for i in range(args.pairs):
            out_ssh, out_kcap = os.path.join(work, "ssh.out"), os.path.join(work, "kcap.out")
            t_ssh, _ = fetch_openssh(out_ssh)
            t_kcap, rss = fetch_kcap(out_kcap)
            for out in (out_ssh, out_kcap):
                if os.path.getsize(out) != size:
                    sys.exit(f"{out}: {os.path.getsize(out)} bytes, expected {size}")
                os.unlink(out)
            ratio = t_ssh / t_kcap
            ratios.append(ratio)
            rss_long.append(rss)
            print(f"{i + 1:>4} {size / t_ssh / 1e9:>13.2f} {size / t_kcap / 1e9:>10.2f} {ratio:>6.2f} {rss / 1024:>10.1f} MiB")
        with open(os.path.join(work, "which"), "w") as f:
            f.write(streams["short"])
        short_size = os.path.getsize(streams["short"])
        _, rss_short = fetch_kcap(os.path.join(work, "kcap.out"))
        print(f"ratio kcap/OpenSSH: median {sorted(ratios)[len(ratios) // 2]:.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f}); target >= 0.9")
        print(f"kcap peak RSS: {max(rss_long) / 1024:.1f} MiB for {size / 1e9:.2f} GB, "
              f"{rss_short / 1024:.1f} MiB for {short_size / 1e9:.2f} GB; target <= 32 MiB")
    finally:
        subprocess.run([TESTBED, "down", "--dir", bed], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
