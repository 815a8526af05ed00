#!/usr/bin/env python3
"""ONNX's own backend node tests for the ops ConvLens claims, written where Rust reads them.

The onnx wheel no longer ships the node tests' data, but it carries the cases that make them
(`onnx.backend.test.case.node`): each case is a one-node (or few-node) model with inputs and
the outputs the ONNX reference computes. Every case whose nodes are all ops of ConvLens's
import table is written to <out>/<case>/: model.onnx, input.npy (the graph's input), and
output_<k>.npy (expected outputs, in graph output order).

ConvLens runs graphs of one input (a photo); a node test's other inputs (a Gemm's B and C, the
second operand of an Add, Reshape's shape) become initializers holding the test's own values,
which is how they appear in a CNN. The first input stays the input. manifest.json lists every
case with its op types and dtypes, and the op list this was made for, so the Rust test can check
that list against the import table.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.backend.test.case import node as node_cases

# Keep equal to the op types in crates/convlens-core/src/onnx/ops.rs (the Rust test checks).
OPS = ["Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Concat", "Gemm", "MatMul",
       "Add", "Mul", "Sum", "Softmax", "Clip", "Transpose", "BatchNormalization", "Flatten", "Reshape",
       "Squeeze", "Unsqueeze", "Dropout", "Identity", "Constant", "ConstantOfShape"]


def write(out):
    os.makedirs(out, exist_ok=True)
    manifest = {"ops": OPS, "onnx": onnx.__version__, "cases": []}
    for case in node_cases.collect_testcases(None):
        types = sorted({n.op_type for n in case.model.graph.node})
        if not set(types) <= set(OPS) or set(types) <= {"Constant"} or not case.data_sets:
            continue
        inputs, outputs = case.data_sets[0]
        g = case.model.graph
        entry = {"name": case.name, "ops": types, "opset": max((o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), default=0)}
        if not all(isinstance(v, (np.ndarray, np.generic)) for v in list(inputs) + list(outputs)):
            entry["skipped"] = "inputs or outputs that are not tensors (sequences, optionals)"
            manifest["cases"].append(entry)
            continue
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        g = model.graph
        # Inputs past the first become initializers with the test's values.
        for inp, value in list(zip(list(g.input), inputs))[1:]:
            g.initializer.append(numpy_helper.from_array(np.asarray(value), inp.name))
        kept = [i for i in g.input][:1]
        del g.input[:]
        g.input.extend(kept)
        d = os.path.join(out, case.name)
        os.makedirs(d, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        if inputs:
            np.save(os.path.join(d, "input.npy"), np.ascontiguousarray(inputs[0]))
            entry["input_dtype"] = str(np.asarray(inputs[0]).dtype)
        for k, o in enumerate(outputs):
            np.save(os.path.join(d, f"output_{k}.npy"), np.ascontiguousarray(o))
        entry["output_dtypes"] = [str(np.asarray(o).dtype) for o in outputs]
        manifest["cases"].append(entry)
    manifest["cases"] += batch_cases(out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return manifest


def batch_cases(out):
    """A small CNN run on a batch of 3 images, every op's output a graph output, so each layer
    of every engine is checked with N > 1 (ONNX's node tests are mostly N = 1). Expected
    outputs from onnxruntime."""
    import onnxruntime as ort
    rng = np.random.default_rng(2014)
    w = lambda *s: numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32))
    inits = []

    def init(name, arr):
        t = w(*arr) if isinstance(arr, tuple) else numpy_helper.from_array(arr)
        t.name = name
        inits.append(t)
        return name

    n = []
    mk = lambda op, ins, out, **kw: n.append(helper.make_node(op, ins, [out], name=out, **kw)) or out
    x = "x"
    c1 = mk("Conv", [x, init("w1", (8, 3, 3, 3)), init("b1", (8,))], "conv_s2", strides=[2, 2], pads=[1, 1, 1, 1])
    r1 = mk("Relu", [c1], "relu")
    mp = mk("MaxPool", [r1], "maxpool_ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    dw = mk("Conv", [mp, init("w2", (8, 1, 3, 3)), init("b2", (8,))], "conv_depthwise", group=8, pads=[1, 1, 1, 1])
    g2 = mk("Conv", [mp, init("w3", (6, 4, 1, 1))], "conv_grouped_1x1", group=2)
    ap = mk("AveragePool", [mp], "avgpool_pad", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0)
    ln = mk("LRN", [ap], "lrn", size=5, alpha=0.1, beta=0.75, bias=1.0)
    cat = mk("Concat", [dw, g2, ln], "concat", axis=1)
    bn = mk("BatchNormalization", [cat] + [init(f"bn{i}", np.abs(rng.standard_normal(22)).astype(np.float32) + (0.5 if i == 3 else 0)) for i in range(4)], "batchnorm", epsilon=1e-3)
    sh = mk("Reshape", [bn, init("s5", np.array([3, 2, 11, 5, 5], np.int64))], "shuffle_reshape")
    tr = mk("Transpose", [sh], "shuffle_transpose", perm=[0, 2, 1, 3, 4])
    back = mk("Reshape", [tr, init("s4", np.array([3, 22, 5, 5], np.int64))], "shuffle_back")
    cl = mk("Clip", [back, init("lo", np.array(0, np.float32)), init("hi", np.array(2, np.float32))], "relu6_like")
    ad = mk("Add", [cl, bn], "residual_add")
    gp = mk("GlobalAveragePool", [ad], "gap")
    fl = mk("Flatten", [gp], "flatten", axis=1)
    fc = mk("Gemm", [fl, init("wf", (10, 22)), init("bf", (10,))], "fc", transB=1)
    sm = mk("Softmax", [fc], "softmax", axis=1)
    outs = [c1, r1, mp, dw, g2, ap, ln, cat, bn, tr, back, cl, ad, gp, fl, fc, sm]
    graph = helper.make_graph(n, "batch_of_3", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3, 3, 19, 19])],
                              [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    d = os.path.join(out, "batch_of_3_cnn")
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    xv = rng.standard_normal((3, 3, 19, 19)).astype(np.float32)
    res = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"]).run(outs, {"x": xv})
    np.save(os.path.join(d, "input.npy"), xv)
    for k, o in enumerate(res):
        np.save(os.path.join(d, f"output_{k}.npy"), np.ascontiguousarray(o))
    types = sorted({x.op_type for x in n})
    return [{"name": "batch_of_3_cnn", "ops": types, "opset": 13, "input_dtype": "float32", "output_dtypes": ["float32"] * len(outs), "made_by": "onnxruntime"}]


if __name__ == "__main__":
    m = write(sys.argv[1] if len(sys.argv) > 1 else "target/refs/node")
    print(len(m["cases"]), "node tests")
