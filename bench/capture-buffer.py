#!/usr/bin/env python3
"""Benchmark (not a test): how big a burst the remote tcpdump survives, per -B.

kcap runs `tcpdump -U --immediate-mode -s SNAPLEN -B KIB -w -`. In immediate mode
libpcap uses a TPACKET_V2 ring of snaplen-sized slots, so the kernel buffer holds far
fewer packets than its size suggests. This measures it: in a throwaway pair of network
namespaces joined by a veth, tcpdump writes into a pipe nobody reads for a while
(as when the network to kcap stalls), a burst of 3,000 small UDP packets goes by,
and the packets captured minus what the pipe held is what the ring held.

For each interface (the veth and `any`) and snaplen, the baseline is libpcap's own
default buffer (2 MiB) measured in the same run; printed: packets held and the ratio
to the baseline. Needs root. Usage: bench/capture-buffer.py [--buffers 2048,8192,16384,32768]
"""
import argparse
import os
import re
import subprocess
import threading
import time

NS_A, NS_B = "kcap-bench-buf-a", "kcap-bench-buf-b"
BURST = 3000
PAYLOAD = 100


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setup():
    teardown()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", "kb0", "netns", NS_A, "type", "veth", "peer", "name", "kb1", "netns", NS_B)
    sh("ip", "-n", NS_A, "addr", "add", "10.250.0.1/24", "dev", "kb0")
    sh("ip", "-n", NS_B, "addr", "add", "10.250.0.2/24", "dev", "kb1")
    for ns, dev in ((NS_A, "kb0"), (NS_B, "kb1"), (NS_A, "lo")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    time.sleep(1)


def teardown():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check=False)


def captured(iface, snaplen, buffer_kib):
    """Packets tcpdump wrote while its reader was stalled for the whole burst."""
    buffer = [] if buffer_kib is None else ["-B", str(buffer_kib)]
    tcpdump = subprocess.Popen(
        ["ip", "netns", "exec", NS_A, "tcpdump", "-U", "-n", "--immediate-mode",
         "-s", str(snaplen), "-i", iface, *buffer, "-w", "-", "udp and port 9"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1)  # the capture is open
    sender = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for i in range({BURST}):\n"
        f"    s.sendto(b'x' * {PAYLOAD}, ('10.250.0.2', 9)); time.sleep(0.0003)\n"
    )
    sh("ip", "netns", "exec", NS_A, "python3", "-c", sender)
    time.sleep(0.5)
    # Only now is the pipe drained; what the ring held follows, then stop tcpdump
    # (stopped while blocked, it would exit without writing the rest).
    drain = threading.Thread(target=tcpdump.stdout.read)
    drain.start()
    time.sleep(1)
    tcpdump.send_signal(2)
    drain.join()
    err = tcpdump.stderr.read().decode()
    tcpdump.wait()
    return int(re.search(r"(\d+) packets captured", err).group(1))


def pipe_capacity(iface):
    """Packets the pipe alone holds: 64 KiB over the pcap record size (record
    header, link header: Ethernet on the veth, Linux cooked v1 on `any`, IP, UDP)."""
    record = 16 + (14 if iface == "kb0" else 16) + 28 + PAYLOAD
    return 65536 // record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--buffers", default="8192,16384,32768")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    buffers = [int(b) for b in args.buffers.split(",")]
    setup()
    try:
        print(f"burst of {BURST} UDP packets ({PAYLOAD} B payload) while tcpdump's stdout is stalled")
        print("iface  snaplen  -B (KiB)   packets held by the ring  ratio to default")
        for iface in ("kb0", "any"):
            for snaplen in (262144, 65535):
                pipe = pipe_capacity(iface)
                base = max(captured(iface, snaplen, None) - pipe, 1)
                print(f"{iface:5}  {snaplen:7}  default    {base:6}                    1.0")
                for kib in buffers:
                    held = max(captured(iface, snaplen, kib) - pipe, 0)
                    print(f"{iface:5}  {snaplen:7}  {kib:8}   {held:6}                    {held / base:.1f}")
    finally:
        teardown()


if __name__ == "__main__":
    main()
