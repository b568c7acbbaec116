#!/usr/bin/env python3
"""Generate Kite Desk's app and tray icons as RGBA PNGs (stdlib only).

Run from the repo root: python3 icons/generate.py
Each tray state is a coloured disc with a white kite (diamond); the
unseen-critical state adds a red badge in the top-right corner.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def png(path, size, pixel):
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            row += bytes(pixel(x + 0.5, y + 0.5, size))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    # colour type 6 = RGBA, 8 bits per channel (the tray needs RGBA).
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(data)


def hexrgb(h):
    return tuple(int(h[i : i + 2], 16) for i in (1, 3, 5))


def cover(d):
    """Anti-aliased coverage for a signed distance d (negative = inside)."""
    return max(0.0, min(1.0, 0.5 - d))


def over(dst, rgb, a):
    r, g, b, da = dst
    oa = a + da * (1 - a)
    if oa == 0:
        return (0, 0, 0, 0)
    mix = lambda c, d: (c * a + d * da * (1 - a)) / oa
    return (mix(rgb[0], r), mix(rgb[1], g), mix(rgb[2], b), oa)


def disc(cx, cy, r):
    return lambda x, y: ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 - r


def diamond(cx, cy, rx, ry):
    # |dx|/rx + |dy|/ry <= 1, distance scaled to pixels.
    return lambda x, y: (abs(x - cx) / rx + abs(y - cy) / ry - 1) * min(rx, ry) * 0.7


def rounded_square(m, s, rad):
    def d(x, y):
        qx = max(abs(x - s / 2) - (s / 2 - m - rad), 0)
        qy = max(abs(y - s / 2) - (s / 2 - m - rad), 0)
        return (qx * qx + qy * qy) ** 0.5 - rad
    return d


def layers(spec):
    def pixel(x, y, size):
        acc = (0, 0, 0, 0.0)
        for shape, colour in spec(size):
            a = cover(shape(x, y))
            if a > 0:
                acc = over(acc, hexrgb(colour), a)
        r, g, b, a = acc
        return (round(r), round(g), round(b), round(a * 255))
    return pixel


def tray(colour, badge=False):
    def spec(s):
        c = s / 2
        out = [
            (disc(c, c, s * 0.44), colour),
            (diamond(c, c, s * 0.22, s * 0.30), "#ffffff"),
        ]
        if badge:
            out.append((disc(s * 0.78, s * 0.22, s * 0.22), "#ffffff"))
            out.append((disc(s * 0.78, s * 0.22, s * 0.17), "#cf222e"))
        return out
    return layers(spec)


def app(s):
    c = s / 2
    return [
        (rounded_square(s * 0.03, s, s * 0.16), "#1f6feb"),
        (diamond(c, c, s * 0.30, s * 0.38), "#ffffff"),
        (diamond(c, c * 1.02, s * 0.14, s * 0.18), "#1f6feb"),
    ]


if __name__ == "__main__":
    png("icon.png", 256, layers(app))
    png("32x32.png", 32, layers(app))
    png("128x128.png", 128, layers(app))
    png("tray-connected.png", 64, tray("#2da44e"))
    png("tray-reconnecting.png", 64, tray("#d29922"))
    png("tray-offline.png", 64, tray("#8c959f"))
    png("tray-unseen-critical.png", 64, tray("#2da44e", badge=True))
