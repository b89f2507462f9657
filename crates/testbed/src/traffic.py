#!/usr/bin/env python3
"""kcap-testbed traffic generator.

Serves HTTP on TCP 80 and a DNS-like UDP echo on 53 (--serve), and/or
every INTERVAL seconds makes one HTTP GET and one DNS query to each
--target, so packet captures on test-bed hosts always see traffic.

--pod is the default process of the test bed's container images, configured
by environment like a real container: it serves HTTP on $HTTP_PORT (8080) and
the UDP echo on $DNS_PORT (5353) unless --no-serve, and when
$TARGETS="host:port,..." is set, calls each target's HTTP port and the DNS
port of the same host (or each of $DNS_TARGETS="host:port,..."). With
$TARGETS_FILE it re-reads the targets (same format) from that file before
every round, so callers follow Service endpoints as pods come and go.
"""
import os
import argparse
import http.client
import http.server
import socket
import socketserver
import struct
import threading
import time


def http_handler(name):
    body = ("kcap-testbed %s\n" % name).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


class HTTPServer(http.server.ThreadingHTTPServer):
    def server_bind(self):
        # The stock server_bind looks up its own name (socket.getfqdn), a reverse
        # DNS query: in a test-bed namespace no DNS server answers, so it would hang
        # for the resolver's timeouts (~10 s) before serving or calling anyone.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = self.server_address[1]


def serve_dns(sock):
    # Echo the query back as a response (QR bit set): Wireshark shows DNS.
    while True:
        data, peer = sock.recvfrom(2048)
        if len(data) >= 12:
            data = data[:2] + bytes([data[2] | 0x80, data[3]]) + data[4:]
        sock.sendto(data, peer)


def dns_query(qid, name):
    header = struct.pack("!HHHHHH", qid & 0xFFFF, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 1, 1)


def split_target(target, default_port):
    host, _, port = target.strip().rpartition(":")
    if not host:
        return target.strip(), default_port
    return host, int(port)


def read_targets(path):
    try:
        with open(path) as f:
            return [t for t in f.read().replace("\n", ",").split(",") if t.strip()]
    except OSError:
        return []  # not written yet: no endpoints


def client(targets, interval, http_port=80, dns_port=53, dns_targets=None, targets_file=None):
    qid = 0
    while True:
        if targets_file:
            targets = read_targets(targets_file)
        for i, target in enumerate(targets):
            target, port = split_target(target, http_port)
            dns_host, dns = target, dns_port
            if dns_targets:
                dns_host, dns = split_target(dns_targets[i % len(dns_targets)], dns_port)
            try:
                conn = http.client.HTTPConnection(target, port, timeout=1)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
            except Exception:
                pass  # links get cut on purpose in tests; keep going
            qid += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.settimeout(0.5)
                sock.sendto(dns_query(qid, "probe.kcap.test"), (dns_host, dns))
                sock.recvfrom(2048)
            except Exception:
                pass
            finally:
                sock.close()
        time.sleep(interval)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="host")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--target", action="append", default=[])
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--pod", action="store_true")
    ap.add_argument("--no-serve", action="store_true")
    args = ap.parse_args()
    http_port, dns_port, dns_targets, targets_file = 80, 53, None, None
    if args.pod:
        env = os.environ
        args.name = env.get("HOSTNAME", args.name)
        args.serve = not args.no_serve
        http_port = int(env.get("HTTP_PORT", "8080"))
        dns_port = int(env.get("DNS_PORT", "5353"))
        args.target = [t for t in env.get("TARGETS", "").split(",") if t.strip()]
        dns_targets = [t for t in env.get("DNS_TARGETS", "").split(",") if t.strip()]
        args.interval = float(env.get("INTERVAL", args.interval))
        targets_file = env.get("TARGETS_FILE") or None
    threads = []
    if args.serve:
        # Bind before anything else so a port clash fails loudly and early.
        httpd = HTTPServer(("0.0.0.0", http_port), http_handler(args.name))
        httpd.daemon_threads = True
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", dns_port))
        threads.append(threading.Thread(target=httpd.serve_forever, daemon=True))
        threads.append(threading.Thread(target=serve_dns, args=(udp,), daemon=True))
    if args.target or targets_file:
        threads.append(threading.Thread(
            target=client,
            args=(args.target, args.interval, http_port, dns_port, dns_targets, targets_file),
            daemon=True))
    for t in threads:
        t.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
