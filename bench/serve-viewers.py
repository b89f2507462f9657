#!/usr/bin/env python3
"""Benchmark (not a test): what serving costs. kcap fetches the same large stream
from a test-bed node (a stand-in tcpdump replays a synthetic pcap, as in
bench/ssh-throughput.py) and writes it as pcapng to /dev/null with `--serve`, in
the same run with no viewer and with four (curl -sN ... -o /dev/null, all joined
before the stream starts). Prints, per run, throughput and kcap's CPU time
(user + system), then the ratios four viewers / none. Every viewer must receive the
whole stream: a run where one is cut off for falling behind is reported and
repeated (--serve-buffer sets their slack; at full speed on a small machine the
viewers compete with the capture for CPU). Needs root and a release build (done
here). Usage:
  bench/serve-viewers.py [--size BYTES] [--pairs N] [--viewers N] [--serve-buffer SIZE]
                         [--rate MB_PER_S]   (the stand-in paces the stream; 0: full speed)
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


# Writes a file to stdout at a steady rate (MB/s), in 64 KiB pieces.
PACE = """import sys, time
path, rate = sys.argv[1], float(sys.argv[2]) * 1e6
out, start, sent = sys.stdout.buffer, time.monotonic(), 0
with open(path, "rb") as f:
    while chunk := f.read(65536):
        out.write(chunk)
        sent += len(chunk)
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
out.flush()
"""


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


def run(work, ssh_config, viewers, buffer):
    """One capture; returns (seconds from go to exit, kcap CPU seconds, bytes per viewer,
    kcap's peak RSS in KiB), or None when a viewer was cut off."""
    go = os.path.join(work, "go")
    if os.path.exists(go):
        os.unlink(go)
    kcap = subprocess.Popen(in_client([KCAP, "-F", ssh_config, "--ssh-host", "node-a",
                                       "--remote-tool", "tcpdump", "--serve", f"127.0.0.1:{PORT}",
                                       "--serve-buffer", buffer,
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
    if os.waitstatus_to_exitcode(wait_status) != 0:
        sys.exit(f"kcap failed:\n{err}")
    received = [int(c.communicate()[0] or 0) for c in curls]
    if "cut off" in err:
        print(f"     (a run with {viewers} viewers cut one off; repeated)")
        return None
    return took, usage.ru_utime + usage.ru_stime, received, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=500_000_000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--viewers", type=int, default=4)
    ap.add_argument("--serve-buffer", default="64M")
    ap.add_argument("--rate", type=float, default=0)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "kcap", "-p", "kcap-testbed"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="kcap-bench-", dir="/var/tmp")
    bed = os.path.join(work, "bed")
    try:
        stream = os.path.join(work, "stream.pcap")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/make-pcap.py"), stream, str(args.size)], check=True)
        stand_in = os.path.join(work, "tcpdump")
        pace = os.path.join(work, "pace.py")
        with open(pace, "w") as f:
            f.write(PACE)
        replay = f"cat {stream}" if not args.rate else f"{sys.executable} {pace} {stream} {args.rate}"
        with open(stand_in, "w") as f:
            # The stream starts only once every viewer is there.
            f.write(f"#!/bin/sh\nwhile [ ! -e {work}/go ]; do sleep 0.02; done\nexec {replay}\n")
        os.chmod(stand_in, 0o755)
        subprocess.run([TESTBED, "up", "--dir", bed, "--minimal", "--no-traffic",
                        "--tool", f"node-a:tcpdump={stand_in}"], check=True, stdout=subprocess.DEVNULL)
        ssh_config = os.path.join(bed, "ssh_config")
        size = os.path.getsize(stream)
        paced = f" at {args.rate:.0f} MB/s" if args.rate else " at full speed"
        print(f"stream: {size / 1e9:.2f} GB synthetic pcap{paced} from node-a over SSH, written as pcapng "
              f"to /dev/null with --serve (--serve-buffer {args.serve_buffer}); {args.viewers} viewers are "
              f"curl -sN to /dev/null")
        run(work, ssh_config, 0, args.serve_buffer)  # warm-up: page cache, sshd
        print(f"{'pair':>4} {'viewers':>7} {'MB/s':>8} {'kcap CPU s':>10} {'kcap peak RSS':>14}")
        cpu_ratios, speed_ratios = [], []
        for i in range(args.pairs):
            t0, cpu0, _, rss0 = run(work, ssh_config, 0, args.serve_buffer)
            served = None
            for _ in range(3):
                served = served or run(work, ssh_config, args.viewers, args.serve_buffer)
            if served is None:
                sys.exit(f"three runs in a row cut a viewer off: raise --serve-buffer")
            t4, cpu4, received, rss4 = served
            # A viewer gets the stream as pcapng, a little larger than the pcap.
            if min(received) < size:
                sys.exit(f"a viewer received {min(received)} bytes of a {size}-byte stream")
            print(f"{i + 1:>4} {0:>7} {size / t0 / 1e6:>8.0f} {cpu0:>10.2f} {rss0 / 1024:>10.1f} MiB")
            print(f"{i + 1:>4} {args.viewers:>7} {size / t4 / 1e6:>8.0f} {cpu4:>10.2f} {rss4 / 1024:>10.1f} MiB")
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
