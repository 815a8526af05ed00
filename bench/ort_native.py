#!/usr/bin/env python3
"""onnxruntime native on the same models and input as `convlens bench`: median/min/max ms over
RUNS after one warm-up.  python3 bench/ort_native.py MODEL.onnx [RUNS] [THREADS] [--layers]

--layers: onnxruntime's own profiler (a second session, so the timed runs above stay unprofiled)
prints each node's median kernel time, to set beside `convlens bench MODEL --layers`."""
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

layers = "--layers" in sys.argv
args = [a for a in sys.argv[1:] if a != "--layers"]
path = args[0]
runs = int(args[1]) if len(args) > 1 else 10
threads = int(args[2]) if len(args) > 2 else 1
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
n = int(np.prod(shape))
# The input `convlens bench` uses: ((i % 251) / 125 - 1) * 1.5
x = (((np.arange(n) % 251) / 125.0 - 1.0) * 1.5).astype(np.float32).reshape(shape)
sess.run(None, {inp.name: x})
times = []
for _ in range(runs):
    t = time.perf_counter()
    sess.run(None, {inp.name: x})
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(f"{path}: onnxruntime {ort.__version__} CPU, {threads} thread(s) | median {times[len(times)//2]:.2f} ms, min {times[0]:.2f}, max {times[-1]:.2f} over {runs} runs")

if layers:
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    prof = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        prof.run(None, {inp.name: x})
    per_node = {}
    order = []
    with open(prof.end_profiling()) as f:
        for ev in json.load(f):
            name = ev.get("name", "")
            if ev.get("cat") != "Node" or not name.endswith("_kernel_time"):
                continue
            node = name[: -len("_kernel_time")]
            if node not in per_node:
                per_node[node] = []
                order.append(node)
            per_node[node].append(ev["dur"] / 1e3)
    total = 0.0
    for node in order:
        t = sorted(per_node[node][1:] or per_node[node])
        med = t[len(t) // 2]
        total += med
        print(f"{node:40s} {med:8.3f} ms")
    print(f"{'sum of node medians':40s} {total:8.3f} ms")
