#!/usr/bin/env python3
"""HTTP decode rate (issue 9): one recorded-like HTTP capture decoded by kcap's
records decoder (crates/records/examples/decode_bench.rs: reassembly, HTTP/1.1
parsing, every record serialized as JSON) against `tshark -r FILE -Y http -T ek`
on the same file in the same run, both on one core.

Makes a synthetic capture under /tmp (deleted at the end), like `tcpdump -i any`
on a busy node: LINUX_SLL2, --conns connections open at once, each a keep-alive
connection of --requests exchanges closed with FINs (GET with a few headers; a 200 response with
Content-Length, every fourth chunked, bodies of 200..4000 bytes split into
1448-byte segments), the connections' packets interleaved in time. Then, after
one unmeasured warm-up (file in the page cache), it runs each tool --runs times
pinned with `taskset -c CORE` and prints records/s, MB/s, peak RSS (wait4's
maxrss) and the ratio.

Run: bench/http-decode.py [--exchanges 200000] [--runs 3] [--core 1] [--kcap-only]
Needs: cargo build --release -p kcap-records --example decode_bench; tshark.
"""
import argparse
import os
import random
import shutil
import statistics
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "examples", "decode_bench")


def sll2(payload, ifindex=2):
    # protocol, reserved, ifindex, hatype, pkttype, addrlen, addr(8)
    return struct.pack("!HHIHBB8s", 0x0800, 0, ifindex, 1, 0, 6, b"\x02" * 6 + b"\0\0") + payload


def ipv4_tcp(src, dst, sport, dport, seq, flags, data):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    return ip + tcp


def exchanges(rng, i, requests):
    """Payloads of one connection: (from_client, bytes) in order."""
    for r in range(requests):
        req = (
            f"GET /api/v1/items/{i}/{r}?q=x HTTP/1.1\r\nHost: orders.prod.svc\r\n"
            "User-Agent: bench/1\r\nAccept: application/json\r\n\r\n"
        ).encode()
        yield True, req
        body = b"x" * rng.randint(200, 4000)
        if r % 4 == 3:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            resp = head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        else:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            resp = head + body
        yield False, resp


def make_capture(path, total, conns, requests, seed=9):
    rng = random.Random(seed)
    ts = 1_700_000_000_000_000  # µs
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 276))

        def write(data):
            nonlocal ts
            ts += rng.randint(1, 40)
            frame = sll2(data)
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
            f.write(frame)

        made = 0
        next_conn = 0
        live = []
        while made < total or live:
            while len(live) < conns and made < total:
                n = min(requests, total - made)
                made += n
                c = next_conn
                next_conn += 1
                cip = bytes([10, 244, (c >> 8) & 255, c & 255])
                sip = bytes([10, 96, 0, 1 + c % 50])
                live.append([cip, sip, 30000 + c % 30000, exchanges(rng, c, n), 1000, 5000])
            k = rng.randrange(len(live))
            conn = live[k]
            cip, sip, port, gen, cseq, sseq = conn
            step = next(gen, None)
            if step is None:
                # Closed by both ends: kcap stops tracking it (a capture that never
                # saw the FINs would keep it until idle, up to the connection cap).
                write(ipv4_tcp(cip, sip, port, 8080, conn[4], 0x11, b""))
                write(ipv4_tcp(sip, cip, 8080, port, conn[5], 0x11, b""))
                live.pop(k)
                continue
            from_client, payload = step
            for off in range(0, len(payload), 1448):
                seg = payload[off:off + 1448]
                if from_client:
                    write(ipv4_tcp(cip, sip, port, 8080, conn[4], 0x18, seg))
                    conn[4] += len(seg)
                else:
                    write(ipv4_tcp(sip, cip, 8080, port, conn[5], 0x18, seg))
                    conn[5] += len(seg)


def run(cmd, core):
    start = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", str(core)] + cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return wall, usage.ru_maxrss, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exchanges", type=int, default=200_000)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--core", type=int, default=1)
    ap.add_argument("--kcap-only", action="store_true", help="leave tshark out (large files)")
    args = ap.parse_args()
    if not os.path.exists(BENCH):
        raise SystemExit("build it first: cargo build --release -p kcap-records --example decode_bench")
    tmp = tempfile.mkdtemp(prefix="kcap-http-bench-")
    try:
        path = os.path.join(tmp, "http.pcap")
        make_capture(path, args.exchanges, args.conns, args.requests)
        size = os.path.getsize(path)
        print(f"file: {size / 1e6:.1f} MB, {args.exchanges} exchanges")
        tools = {
            "kcap": [BENCH, path],
            "tshark": ["tshark", "-n", "-r", path, "-Y", "http", "-T", "ek"],
        }
        results = {}
        if args.kcap_only:
            del tools["tshark"]
        for name, cmd in tools.items():
            run(cmd, args.core)  # warm-up
            walls, rss = [], 0
            for _ in range(args.runs):
                wall, maxrss, out = run(cmd, args.core)
                walls.append(wall)
                rss = max(rss, maxrss)
                if name == "kcap":
                    fields = dict(kv.split("=") for kv in out.decode().split())
                    assert int(fields["records"]) == args.exchanges, fields
            wall = statistics.median(walls)
            results[name] = wall
            print(
                f"{name:6}: {wall:7.2f} s  {args.exchanges / wall:10.0f} records/s  "
                f"{size / wall / 1e6:7.1f} MB/s  peak RSS {rss / 1024:6.1f} MiB"
            )
        if "tshark" in results:
            print(f"kcap/tshark: {results['tshark'] / results['kcap']:.1f}x")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
