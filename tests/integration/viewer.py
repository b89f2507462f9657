#!/usr/bin/env python3
"""Viewers of `kcap --serve` written with Python's standard library only, an
implementation independent of kcap's own (`--connect`) and of curl.

  viewer.py ws HOST PORT OUT      WebSocket client of /ws: writes the binary
                                  messages to OUT, prints the close code and reason
  viewer.py stall HOST PORT SECS  GET /capture.pcapng with a tiny receive buffer,
                                  reads nothing for SECS, then reads to the end and
                                  prints "complete" (the last chunk came) or "cut"
"""
import base64
import os
import socket
import struct
import sys
import time


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def read_headers(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError("connection closed in the headers")
        data += chunk
    return data.decode("latin-1")


def websocket(host, port, out):
    sock = socket.create_connection((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (host, port, key)
        ).encode()
    )
    headers = read_headers(sock)
    if not headers.startswith("HTTP/1.1 101"):
        print("refused: " + headers.splitlines()[0])
        return 1
    with open(out, "wb") as f:
        while True:
            b0, b1 = read_exact(sock, 2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", read_exact(sock, 2))
            elif length == 127:
                (length,) = struct.unpack("!Q", read_exact(sock, 8))
            payload = read_exact(sock, length)
            if opcode == 2:
                f.write(payload)
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                print("close %d %s" % (code, payload[2:].decode()))
                # Our close, masked as a client's must be.
                mask = os.urandom(4)
                body = payload[:2]
                sock.sendall(bytes([0x88, 0x80 | len(body)]) + mask +
                             bytes(c ^ mask[i % 4] for i, c in enumerate(body)))
                return 0


def stall(host, port, seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(b"GET /capture.pcapng HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    print("complete" if data.endswith(b"\r\n0\r\n\r\n") else "cut")
    return 0


if __name__ == "__main__":
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "ws":
        sys.exit(websocket(host, port, sys.argv[4]))
    sys.exit(stall(host, port, float(sys.argv[4])))
