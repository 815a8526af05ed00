#!/usr/bin/env python3
"""onnxruntime native on the same models and input as `convlens bench`: median/min/max ms over
RUNS after one warm-up.  python3 bench/ort_native.py MODEL.onnx [RUNS] [THREADS]"""
import sys
import time

import numpy as np
import onnxruntime as ort

path = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
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
print(f"{path}: onnxruntime {ort.__version__} CPU, {threads} thread(s) | median {times[len(times)//2]:.1f} ms, min {times[0]:.1f}, max {times[-1]:.1f} over {runs} runs")
