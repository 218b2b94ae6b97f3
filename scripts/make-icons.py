#!/usr/bin/env python3
"""Draws Gatehouse's app and tray icons (a gate arch on a blue tile) as PNGs.

No image libraries: pixels are computed with 4x4 supersampling and written with
zlib. Run from the repository root: `python3 scripts/make-icons.py`.
"""
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "icons"
TILE = (31, 58, 95)       # deep blue
PAUSED = (112, 117, 125)  # grey: every agent is paused
GATE = (255, 255, 255)
DOT = (245, 166, 35)      # amber: something is waiting for you


def inside_rounded(x, y, r):
    # unit square [0,1]^2 with corner radius r
    cx = min(max(x, r), 1 - r)
    cy = min(max(y, r), 1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def gate(x, y):
    # two pillars and an arch; the doorway is open
    left, right, top, bottom = 0.22, 0.78, 0.30, 0.80
    thick = 0.12
    cx, cy, ro = 0.5, 0.44, 0.28
    ri = ro - thick
    in_pillar = top + 0.14 <= y <= bottom and (left <= x <= left + thick or right - thick <= x <= right)
    d2 = (x - cx) ** 2 + (y - cy) ** 2
    in_arch = y <= cy + 0.001 and ri * ri <= d2 <= ro * ro
    in_sill = bottom - 0.04 <= y <= bottom + 0.02 and 0.16 <= x <= 0.84
    return in_pillar or in_arch or in_sill


def pixel(x, y, tray, dot, paused):
    if dot and (x - 0.80) ** 2 + (y - 0.20) ** 2 <= 0.17 ** 2:
        return DOT + (255,)
    if not inside_rounded(x, y, 0.22 if tray else 0.2):
        return (0, 0, 0, 0)
    return GATE + (255,) if gate(x, y) else (PAUSED if paused else TILE) + (255,)


def render(size, tray=False, dot=False, paused=False, ss=4):
    rows = []
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(ss):
                for sx in range(ss):
                    c = pixel((px + (sx + 0.5) / ss) / size, (py + (sy + 0.5) / ss) / size, tray, dot, paused)
                    a = c[3]
                    for i in range(3):
                        acc[i] += c[i] * a
                    acc[3] += a
            n = ss * ss
            a = acc[3]
            rgb = [int(acc[i] / a) if a else 0 for i in range(3)]
            row += bytes(rgb + [int(a / n)])
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    OUT.mkdir(exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        (OUT / name).write_bytes(render(size))
    (OUT / "tray.png").write_bytes(render(64, tray=True))
    (OUT / "tray-pending.png").write_bytes(render(64, tray=True, dot=True))
    (OUT / "tray-paused.png").write_bytes(render(64, tray=True, paused=True))
    (OUT / "tray-paused-pending.png").write_bytes(render(64, tray=True, dot=True, paused=True))


if __name__ == "__main__":
    main()
