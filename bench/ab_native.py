#!/usr/bin/env python3
"""A/B of two native builds (or two environments) of `convlens bench`, interleaved round by round,
so a noisy host's drift hits both alike: the pass's median and chosen layers' medians per side,
and the median of the rounds' B/A ratios.

  python3 bench/ab_native.py MODEL --a-bin /tmp/convlens-old [--b-bin target/release/convlens]
      [--a-env K=V ...] [--b-env K=V ...] [--a-arg ARG ...] [--b-arg ARG ...]
      [--rounds 6] [--runs 60] [--layer NAME ...]

Example: before and after a kernel change, SqueezeNet's pools:
  cp target/release/convlens /tmp/convlens-old   # built from the old commit
  cargo build --release -p convlens-cli          # the new one (a bare `cargo build --release`
                                                 # builds the app, not this binary)
  python3 bench/ab_native.py ../shared/models/squeezenet1.1.onnx --a-bin /tmp/convlens-old \\
      --layer squeezenet0_pool0_fwd --layer squeezenet0_pool1_fwd
"""
import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time


def run(binary, env_pairs, extra_args, model, runs):
    env = dict(os.environ, CONVLENS_TOP_LAYERS="1000")
    for pair in env_pairs:
        key, value = pair.split("=", 1)
        env[key] = value
    # One thread unless a side asks for more (--b-arg=--threads --b-arg=2: the speed-up from threads).
    threads = [] if "--threads" in extra_args else ["--threads", "1"]
    out = subprocess.run([binary, "bench", model, "--runs", str(runs), *threads, "--layers", *extra_args],
                         env=env, capture_output=True, text=True, check=True).stdout
    total = float(re.search(r"median ([\d.]+) ms", out).group(1))
    layers = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3] == "ms":
            layers[fields[0]] = float(fields[2])
    return total, layers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--a-bin", default="target/release/convlens")
    ap.add_argument("--b-bin", default="target/release/convlens")
    ap.add_argument("--a-env", action="append", default=[])
    ap.add_argument("--b-env", action="append", default=[])
    ap.add_argument("--a-arg", action="append", default=[], help="more arguments for A's bench, e.g. --a-arg=--backend --a-arg=gemm")
    ap.add_argument("--b-arg", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--layer", action="append", default=[])
    args = ap.parse_args()
    sides = {"A": (args.a_bin, args.a_env, args.a_arg), "B": (args.b_bin, args.b_env, args.b_arg)}
    # Which builds are timed: a stale binary (the new code never built into it) looks like a
    # change that does nothing.
    digests = {}
    for side, (binary, env_pairs, extra_args) in sides.items():
        with open(binary, "rb") as f:
            digests[side] = hashlib.sha256(f.read()).hexdigest()[:12]
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(binary)))
        print(f"{side}: {binary} (built {built}, sha256 {digests[side]}) {' '.join(env_pairs + extra_args)}")
    if digests["A"] == digests["B"] and args.a_env == args.b_env and args.a_arg == args.b_arg:
        sys.exit("A and B are the same binary with the same environment and arguments: nothing to compare")
    results = {side: {"pass": []} for side in sides}
    for r in range(args.rounds):
        for side, (binary, env_pairs, extra_args) in sides.items():
            total, layers = run(binary, env_pairs, extra_args, args.model, args.runs)
            results[side]["pass"].append(total)
            for name in args.layer:
                results[side].setdefault(name, []).append(layers.get(name, float("nan")))
        a, b = results["A"]["pass"][-1], results["B"]["pass"][-1]
        print(f"round {r}: A {a:.2f} ms, B {b:.2f} ms, B/A {b / a:.3f}", flush=True)
    for key in ["pass"] + args.layer:
        a, b = results["A"][key], results["B"][key]
        ratios = [y / x for x, y in zip(a, b)]
        print(f"{key:32} A {statistics.median(a):.3f} ms  B {statistics.median(b):.3f} ms  "
              f"B/A {statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
