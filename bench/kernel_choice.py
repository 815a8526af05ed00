#!/usr/bin/env python3
"""What choosing the conv kernels layer by layer would give: two `convlens bench --layers` runs
of one model (set CONVLENS_TOP_LAYERS=1000 so every layer is listed), one per kernel set
(`--gpu-conv tiled`, `--gpu-conv direct`), read side by side; prints each run's sum of layer
times, the sum of the faster of the two for every layer, and the layers where they differ most.

    python3 bench/kernel_choice.py tiled.txt direct.txt
"""
import argparse
import re
import sys

LAYER = re.compile(r"^  (\S+)\s+(\S+)\s+([0-9.]+) ms")


def layers(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = LAYER.match(line)
            if m:
                out[m.group(1)] = (m.group(2), float(m.group(3)))
    if not out:
        sys.exit(f"{path}: no per-layer lines (run `convlens bench --layers` with CONVLENS_TOP_LAYERS=1000)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="--layers output of the first kernel set")
    ap.add_argument("b", help="--layers output of the second kernel set")
    ap.add_argument("--names", default="tiled,direct", help="what to call the two runs")
    args = ap.parse_args()
    na, nb = args.names.split(",")
    a, b = layers(args.a), layers(args.b)
    both = [n for n in a if n in b]
    if len(both) < max(len(a), len(b)):
        print(f"note: {len(a)} and {len(b)} layers listed, {len(both)} in both")
    sa = sum(a[n][1] for n in both)
    sb = sum(b[n][1] for n in both)
    best = sum(min(a[n][1], b[n][1]) for n in both)
    convs = [n for n in both if a[n][0].startswith("Conv")]
    b_wins = [n for n in convs if b[n][1] < a[n][1]]
    print(f"sum of {len(both)} layers: {na} {sa:.3f} ms, {nb} {sb:.3f} ms; the faster per layer {best:.3f} ms "
          f"({best / min(sa, sb):.2f}x the better run); {nb} faster on {len(b_wins)} of {len(convs)} convs")
    for n in sorted(convs, key=lambda n: -abs(a[n][1] - b[n][1]))[:12]:
        print(f"  {n:36} {a[n][1]:9.3f} {b[n][1]:9.3f} ms  {nb if b[n][1] < a[n][1] else na} faster")


if __name__ == "__main__":
    main()
