#!/usr/bin/env python3
"""Writes a synthetic classic pcap (microsecond, Ethernet) of at least SIZE bytes:
UDP packets of mixed sizes with increasing timestamps. Used as the stream a stand-in
capture tool replays on a test-bed node."""
import struct
import sys

path, size = sys.argv[1], int(sys.argv[2])
sizes = [60, 590, 1514, 1514, 1514, 128, 1514, 900]
records = []
ts = 1_700_000_000 * 1_000_000
for i, n in enumerate(sizes * 16):
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    payload = bytes((i + j) & 0xFF for j in range(n - len(eth)))
    frame = eth + payload
    records.append((len(frame), frame))
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    written = 24
    chunk = bytearray()
    while written < size:
        for n, frame in records:
            ts += 7
            chunk += struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, n, n)
            chunk += frame
        if len(chunk) > 8 << 20:
            f.write(chunk)
            written += len(chunk)
            chunk = bytearray()
    f.write(chunk)
