#!/usr/bin/env python3
"""Every layer of one pass of the `convlens` CLI against onnxruntime, on a seeded input: the
parity check for a machine where only the CLI binary travels (a lent GPU machine, which has
onnxruntime and numpy but no Rust), so a real GPU's kernels meet the same reference and the
same tolerance (testkit's GPU_LAYER_TOL: max |diff| / max(1, max |reference|) per layer) as
lavapipe's and SwiftShader's do in `cargo test`.

  python3 bench/gpu_parity.py MODEL.onnx [--convlens target/release/convlens]
      [--backend webgpu] [--tol 1e-4] [--input-scale 1]

--input-scale: the spread of the seeded input (1 for ImageNet-normalised models such as
SqueezeNet and VGG16, ~60 for the Caffe-preprocessed GoogLeNet, whose inputs are 0..255 less
the mean). Exits 1 when a layer is outside the tolerance or nothing could be compared.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("make_refs", os.path.join(HERE, "..", "tests", "reference", "make_refs.py"))
make_refs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_refs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--convlens", default=os.path.join(HERE, "..", "target", "release", "convlens"))
    ap.add_argument("--backend", default="webgpu")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--input-scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=make_refs.SEED)
    args = ap.parse_args()

    model = make_refs.with_all_outputs(onnx.load(args.model))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = (np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32) * args.input_scale).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    refs = dict(zip(names, sess.run(names, {inp.name: x})))

    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "input.npy"), x)
        dump = os.path.join(tmp, "dump")
        cmd = [args.convlens, "run", args.model, "--input", os.path.join(tmp, "input.npy"), "--dump", dump, "--backend", args.backend]
        ran = subprocess.run(cmd, capture_output=True, text=True)
        if ran.returncode != 0:
            print(f"{' '.join(cmd)} failed ({ran.returncode}):\n{ran.stderr}", file=sys.stderr)
            return 1
        rows, missing = [], []
        for name, ref in refs.items():
            path = os.path.join(dump, make_refs.sanitize(name) + ".npy")
            if not os.path.exists(path):
                missing.append(name)
                continue
            got = np.load(path).astype(np.float32)
            ref = np.asarray(ref, np.float32)
            if got.size != ref.size:
                rows.append((float("inf"), name, f"{got.shape} against {ref.shape}"))
                continue
            err = float(np.max(np.abs(got.reshape(ref.shape) - ref))) / max(1.0, float(np.max(np.abs(ref))))
            rows.append((err, name, ""))
    engine = ran.stderr.strip().splitlines()[-1:] or [""]
    rows.sort(key=lambda r: -r[0])
    bad = [r for r in rows if not r[0] <= args.tol]
    print(f"{os.path.basename(args.model)} on {args.backend} ({engine[0]}): {len(rows)} of {len(refs)} tensors compared, "
          f"worst {rows[0][0] if rows else float('nan'):.2e} ({rows[0][1] if rows else '-'}), tolerance {args.tol:g}: "
          f"{'ok' if rows and not bad else 'FAILED'}")
    for err, name, why in bad[:10]:
        print(f"  {name}: {err:.3e} {why}")
    if missing:
        print(f"  not dumped (no output of their own in the CLI's graph): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    return 0 if rows and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
