#!/usr/bin/env python3
"""Benchmark (not a test): kcap through the Kubernetes API on the test-bed cluster.

1. Time to first packet for one pod: from starting the program to the first complete
   pcap record on its stdout, in the same run and with the same traffic, for
     kcap:     kcap -n prod pod/toolbox --via exec --format pcap -o -
     kubectl:  kubectl exec -n prod toolbox -c tools -- tcpdump -U -w -
   and the same kubectl with tcpdump's --immediate-mode (which kcap's wrapper uses;
   without it libpcap hands packets over when its 1 s buffer timeout expires), in
   turns, after one unmeasured warm-up each (kubectl's discovery cache is kept
   between its runs). A ping flood inside the pod (100 requests/s to a web pod) makes
   the wait for the next packet negligible. Prints each time, the medians and the
   ratios (target: kcap/kubectl <= 1, no slower).
2. 32 pods at once: deploy/web scaled to 32 replicas over the two nodes, captured
   with kcap -n prod deploy/web --via node (or --via ephemeral) for --duration into one
   pcapng (the duration counts from the moment all are capturing); prints
   kcap's wall time, CPU time (user+sys) and peak RSS from wait4, and the packets.

Needs root and a release build (done here; CARGO_TARGET_DIR is honoured). The bed is
brought up with its own namespace prefix (kcap-bench-*), so a bed made with
`kcap-testbed up` keeps running. Usage:
  bench/kube-first-packet.py [--runs N] [--pods 32] [--duration 20] [--via node --via ephemeral]
"""
import argparse
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
KCAP = os.path.join(TARGET, "release/kcap")
TESTBED = os.path.join(TARGET, "release/kcap-testbed")
PREFIX = "kcap-bench"
CLIENT_NS = f"{PREFIX}-client"


def read_exactly(fd, n, deadline):
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(data)} of {n} bytes")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError(f"stream ended after {len(data)} of {n} bytes")
        data += chunk
    return data


def first_record(argv, env=None, limit=60.0):
    """Starts argv; returns seconds until its stdout carried a pcap header and one
    whole record. Then stops it (SIGINT, then SIGKILL) and reaps it."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        fd = proc.stdout.fileno()
        deadline = start + limit
        header = read_exactly(fd, 24, deadline)
        magic = struct.unpack("<I", header[:4])[0]
        order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        record = read_exactly(fd, 16, deadline)
        incl_len = struct.unpack(order + "I", record[8:12])[0]
        read_exactly(fd, incl_len, deadline)
        took = time.monotonic() - start
    except Exception as e:
        proc.kill()
        err = proc.stderr.read().decode(errors="replace")
        sys.exit(f"{' '.join(argv)}: {e}\n{err}")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return took


def kubectl(bed, *args, check=True):
    argv = ["ip", "netns", "exec", CLIENT_NS, "kubectl", "--kubeconfig", os.path.join(bed, "kubeconfig"),
            "--cache-dir", os.path.join(bed, "kubectl-cache"), *args]
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "HOME": bed})
    if check and out.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout.strip()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def time_to_first_packet(bed, runs):
    web_ip = kubectl(bed, "get", "pods", "-n", "prod", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}")
    flood = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}-pod-prod-toolbox", "ping", "-q", "-i", "0.01", web_ip],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exec_argv = ["ip", "netns", "exec", CLIENT_NS, "kubectl", "--kubeconfig", os.path.join(bed, "kubeconfig"),
                 "--cache-dir", os.path.join(bed, "kubectl-cache"),
                 "exec", "-n", "prod", "toolbox", "-c", "tools", "--", "tcpdump", "-U"]
    contenders = {
        "kcap": ["ip", "netns", "exec", CLIENT_NS, KCAP, "--kubeconfig", os.path.join(bed, "kubeconfig"),
                 "-n", "prod", "pod/toolbox", "--via", "exec", "--format", "pcap", "-q", "-o", "-"],
        # The baseline, as written.
        "kubectl": exec_argv + ["-w", "-"],
        # The same with tcpdump delivering each packet at once, as kcap's wrapper asks.
        "kubectl-imm": exec_argv + ["--immediate-mode", "-w", "-"],
    }
    env = {**os.environ, "HOME": bed}
    times = {name: [] for name in contenders}
    try:
        for argv in contenders.values():
            first_record(argv, env)
        print(f"{'run':>4} " + " ".join(f"{name + ' s':>14}" for name in contenders))
        for i in range(runs):
            for name, argv in contenders.items():
                time.sleep(1)  # the previous capture in the pod ends
                times[name].append(first_record(argv, env))
            print(f"{i + 1:>4} " + " ".join(f"{times[name][-1]:>14.3f}" for name in contenders))
    finally:
        flood.terminate()
        flood.wait()
    for name, ts in times.items():
        print(f"time to first packet, {name}: median {median(ts):.3f} s (min {min(ts):.3f}, max {max(ts):.3f})")
    k = median(times["kcap"])
    print(f"ratio kcap/kubectl {k / median(times['kubectl']):.2f}, "
          f"kcap/kubectl-imm {k / median(times['kubectl-imm']):.2f} (target <= 1: no slower)")


def many_pods(bed, work, pods, duration, via):
    kubectl(bed, "scale", "-n", "prod", "deployment/web", f"--replicas={pods}")
    deadline = time.monotonic() + 180
    while True:
        phases = kubectl(bed, "get", "pods", "-n", "prod", "-l", "app=web", "-o",
                         "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}").split()
        if phases.count("Running") == pods and len(phases) == pods:
            break
        if time.monotonic() > deadline:
            sys.exit(f"web not scaled to {pods}: {phases}")
        time.sleep(1)
    nodes = kubectl(bed, "get", "pods", "-n", "prod", "-l", "app=web", "-o",
                    "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}").split()
    out = os.path.join(work, "many.pcapng")
    argv = ["ip", "netns", "exec", CLIENT_NS, KCAP, "--kubeconfig", os.path.join(bed, "kubeconfig"),
            "-n", "prod", "deploy/web", "--via", via, "--image", "kcap.test/capture:1",
            "--duration", f"{duration}s", "-o", out]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, wait_status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    status = os.waitstatus_to_exitcode(wait_status)
    if status != 0:
        sys.exit(f"kcap failed ({status}):\n{err}")
    ids = subprocess.run(["tshark", "-n", "-r", out, "-T", "fields", "-e", "frame.interface_id"],
                         capture_output=True, text=True, check=True).stdout.split()
    per_pod = {}
    for i in ids:
        per_pod[i] = per_pod.get(i, 0) + 1
    cpu = usage.ru_utime + usage.ru_stime
    print(f"{pods} pods ({nodes.count('node-a')} on node-a, {nodes.count('node-b')} on node-b), --via {via}, "
          f"--duration {duration}s: wall {wall:.1f} s, kcap CPU {cpu:.2f} s (user {usage.ru_utime:.2f}, "
          f"sys {usage.ru_stime:.2f}; {cpu / wall * 100:.1f}% of one core), peak RSS {usage.ru_maxrss / 1024:.1f} MiB, "
          f"{len(ids)} packets from {len(per_pod)} pods ({os.path.getsize(out) / 1e6:.1f} MB)")
    print("kcap's summary:\n" + "\n".join(l for l in err.splitlines() if "wrote" in l or "error" in l))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--pods", type=int, default=32)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--via", action="append", choices=["node", "ephemeral"],
                    help="methods for the many-pod capture (repeatable; default node)")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "kcap", "-p", "kcap-testbed"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="kcap-bench-", dir="/var/tmp")
    bed = os.path.join(work, "bed")
    try:
        subprocess.run([TESTBED, "up", "--dir", bed, "--nodes", "2", "--prefix", PREFIX], check=True,
                       stdout=subprocess.DEVNULL)
        time_to_first_packet(bed, args.runs)
        for via in args.via or ["node"]:
            many_pods(bed, work, args.pods, args.duration, via)
    finally:
        subprocess.run([TESTBED, "down", "--dir", bed, "--prefix", PREFIX],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
