#!/usr/bin/env python3
"""Reference outputs from onnxruntime, the independent oracle for the Rust tests.

For each model, every node's output is dumped as <out>/<model>/<case>/<tensor>.npy (the tensor
name with '/' and ':' replaced by '_'), beside the case's input.npy. Cases: a seeded random
input, and (for models with real weights) the photos in ../shared/images preprocessed with PIL.
A VGG16 in the zoo's vgg16-12 layout with seeded He-normal weights is built here first.

Reproducible: fixed seeds, no network. Run: python3 tests/reference/make_refs.py
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

SEED = 20141217  # ILSVRC 2014 results day; any fixed value works


def sanitize(name):
    return name.replace("/", "_").replace(":", "_")


def save_model(path, name, nodes, inits, inp, out, opset, ir_version, in_shape=(1, 3, 224, 224), out_shape=(1, 1000)):
    """One float input, one float output: how every graph built here is written."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(inp, TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None if out_shape is None else list(out_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="convlens-tests")
    model.ir_version = ir_version
    onnx.save(model, path)


def vgg16_zoo_layout(path, seed=7):
    """VGG16 (configuration D) named as the zoo's vgg16-12 (MXNet Gluon export)."""
    rng = np.random.default_rng(seed)
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    nodes, inits = [], []
    x, c_in, conv_i, relu_i, pool_i = "data", 3, 0, 0, 0

    def he(shape, fan_in):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))).astype(np.float32)

    for v in cfg:
        if v == "M":
            out = f"vgg0_pool{pool_i}_fwd"
            nodes.append(helper.make_node("MaxPool", [x], [out], name=f"vgg0_pool{pool_i}", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]))
            x, pool_i = out, pool_i + 1
            continue
        w, b = f"vgg0_conv{conv_i}_weight", f"vgg0_conv{conv_i}_bias"
        inits += [numpy_helper.from_array(he((v, c_in, 3, 3), c_in * 9), w),
                  numpy_helper.from_array((rng.standard_normal(v, dtype=np.float32) * 0.01).astype(np.float32), b)]
        conv_out = f"vgg0_conv{conv_i}_fwd"
        nodes.append(helper.make_node("Conv", [x, w, b], [conv_out], name=f"vgg0_conv{conv_i}", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]))
        relu_out = f"vgg0_relu{relu_i}_fwd"
        nodes.append(helper.make_node("Relu", [conv_out], [relu_out], name=f"vgg0_relu{relu_i}"))
        x, c_in, conv_i, relu_i = relu_out, v, conv_i + 1, relu_i + 1
    nodes.append(helper.make_node("Flatten", [x], ["flatten_60"], name="flatten_60", axis=1))
    x, k = "flatten_60", 512 * 7 * 7
    for i, n in enumerate([4096, 4096, 1000]):
        w, b = f"vgg0_dense{i}_weight", f"vgg0_dense{i}_bias"
        inits += [numpy_helper.from_array(he((n, k), k), w), numpy_helper.from_array(np.zeros(n, np.float32), b)]
        out = f"vgg0_dense{i}_fwd"
        nodes.append(helper.make_node("Gemm", [x, w, b], [out], name=f"vgg0_dense{i}", alpha=1.0, beta=1.0, transB=1))
        x, k = out, n
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"vgg0_relu{relu_i}_fwd"], name=f"vgg0_relu{relu_i}"))
            nodes.append(helper.make_node("Dropout", [f"vgg0_relu{relu_i}_fwd"], [f"vgg0_dropout{i}_fwd"], name=f"vgg0_dropout{i}"))
            x, relu_i = f"vgg0_dropout{i}_fwd", relu_i + 1
    save_model(path, "vgg16-seeded", nodes, inits, "data", x, opset=12, ir_version=7)


def ops_zoo(path, seed=3):
    """One small graph exercising op semantics the zoo models leave untested: grouped, dilated
    and SAME-padded convs, BatchNormalization (folded), ceil-mode pools with count_include_pad,
    asymmetric pads, LRN, a BatchNormalization that cannot fold (after LRN), Add broadcasting, Gemm alpha/beta/transA, MatMul, Reshape 0/-1,
    Unsqueeze/Squeeze, opset-13 Softmax on an inner axis."""
    rng = np.random.default_rng(seed)
    f = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.3).astype(np.float32)
    inits = {
        "w_g": f(8, 2, 3, 3), "b_g": f(8),
        "w_d": f(6, 8, 3, 3),
        "bn_s": (np.abs(f(6)) + 0.5).astype(np.float32), "bn_b": f(6), "bn_m": f(6), "bn_v": (np.abs(f(6)) + 0.1).astype(np.float32),
        "bn2_s": (np.abs(f(4)) + 0.5).astype(np.float32), "bn2_b": f(4), "bn2_m": f(4), "bn2_v": (np.abs(f(4)) + 0.1).astype(np.float32),
        "w_same": f(4, 6, 4, 4), "b_same": f(4),
        "bias_c": f(1, 4, 1, 1),
        "shape_a": np.array([0, -1], np.int64), "ax0": np.array([0], np.int64), "ax2": np.array([2], np.int64),
        "gemm_a_t": f(12, 2), "gemm_c": f(2, 1), "mm_b": f(1, 7), "mm_bias": f(7),
    }
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w_g", "b_g"], ["g"], name="grouped", group=4, pads=[1, 0, 2, 1], strides=[2, 1]),
        n("Conv", ["g", "w_d"], ["d"], name="dilated", dilations=[2, 2], pads=[2, 2, 2, 2]),
        n("BatchNormalization", ["d", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn", epsilon=1e-3),
        n("Relu", ["bn"], ["bn_relu"], name="bn_relu"),
        n("Conv", ["bn_relu", "w_same", "b_same"], ["same"], name="same_upper", auto_pad="SAME_UPPER", strides=[2, 2]),
        n("Add", ["same", "bias_c"], ["added"], name="add_bcast"),
        n("LRN", ["added"], ["lrn0"], name="lrn", size=3, alpha=0.2, beta=0.6, bias=1.5),
        n("BatchNormalization", ["lrn0", "bn2_s", "bn2_b", "bn2_m", "bn2_v"], ["lrn"], name="bn_standalone", epsilon=1e-5),
        n("AveragePool", ["lrn"], ["avg_inc"], name="avg_ceil_incl", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
        n("AveragePool", ["lrn"], ["avg_exc"], name="avg_ceil_excl", kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1),
        n("MaxPool", ["lrn"], ["max_same"], name="max_same", kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"),
        n("GlobalAveragePool", ["avg_inc"], ["gap1"], name="gap1"),
        n("GlobalAveragePool", ["avg_exc"], ["gap2"], name="gap2"),
        n("GlobalAveragePool", ["max_same"], ["gap3"], name="gap3"),
        n("Concat", ["gap1", "gap2", "gap3"], ["gap"], name="cat", axis=-3),
        n("Reshape", ["gap", "shape_a"], ["flat"], name="reshape0m1"),
        n("Unsqueeze", ["flat", "ax0"], ["unsq"], name="unsqueeze"),
        n("Squeeze", ["unsq", "ax0"], ["sq"], name="squeeze"),
        n("Gemm", ["gemm_a_t", "sq", "gemm_c"], ["gemm"], name="gemm_ta", alpha=0.5, beta=2.0, transA=1, transB=1),
        n("MatMul", ["gemm", "mm_b"], ["mm"], name="matmul"),
        n("Add", ["mm", "mm_bias"], ["mm_b_out"], name="add_vec"),
        n("Unsqueeze", ["mm_b_out", "ax2"], ["u3"], name="unsqueeze2"),
        n("Softmax", ["u3"], ["prob"], name="softmax_axis1", axis=1),
    ]
    save_model(path, "ops-zoo", nodes, [numpy_helper.from_array(v, k) for k, v in inits.items()], "x", "prob", opset=13, ir_version=7,
               in_shape=(1, 8, 17, 13), out_shape=None)


def mobilenet_v2(path, seed=16):
    """MobileNet v2 (width 1.0) as torchvision exports it at opset 12: every conv followed by
    its BatchNormalization, ReLU6 as Clip with min/max inputs, inverted residual blocks (1x1
    expand, 3x3 depthwise, 1x1 linear projection) added where the shape allows, then global
    average pooling, Flatten and the classifier. Seeded weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], [numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"),
                        numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max")]
    count = [0]

    def conv_bn(x, c_in, c_out, k, stride, group, relu6):
        i = count[0]
        count[0] += 1
        w = f"features.{i}.conv.weight"
        fan_in = (c_in // group) * k * k
        inits.append(numpy_helper.from_array((rng.standard_normal((c_out, c_in // group, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32), w))
        nodes.append(helper.make_node("Conv", [x, w], [f"conv{i}"], name=f"Conv_{i}", kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group))
        bn = [f"features.{i}.bn.{n}" for n in ("weight", "bias", "running_mean", "running_var")]
        # BN scales below 1 keep most values inside ReLU6's [0, 6], as in a trained model.
        for n, v in zip(bn, (rng.uniform(0.25, 0.75, c_out), rng.standard_normal(c_out) * 0.1, rng.standard_normal(c_out) * 0.1, rng.uniform(0.5, 1.5, c_out))):
            inits.append(numpy_helper.from_array(v.astype(np.float32), n))
        nodes.append(helper.make_node("BatchNormalization", [f"conv{i}"] + bn, [f"bn{i}"], name=f"BatchNormalization_{i}", epsilon=1e-5))
        if not relu6:
            return f"bn{i}"
        nodes.append(helper.make_node("Clip", [f"bn{i}", "relu6_min", "relu6_max"], [f"relu6_{i}"], name=f"Clip_{i}"))
        return f"relu6_{i}"

    x = conv_bn("input", 3, 32, 3, 2, 1, True)
    c_in, blocks = 32, 0
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for r in range(n):
            stride = s if r == 0 else 1
            h = x if t == 1 else conv_bn(x, c_in, c_in * t, 1, 1, 1, True)
            h = conv_bn(h, c_in * t, c_in * t, 3, stride, c_in * t, True)
            h = conv_bn(h, c_in * t, c, 1, 1, 1, False)
            if stride == 1 and c_in == c:
                nodes.append(helper.make_node("Add", [x, h], [f"add{blocks}"], name=f"Add_{blocks}"))
                h = f"add{blocks}"
            x, c_in, blocks = h, c, blocks + 1
    x = conv_bn(x, c_in, 1280, 1, 1, 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="GlobalAveragePool_0"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="Flatten_0", axis=1))
    inits += [numpy_helper.from_array((rng.standard_normal((1000, 1280)) * np.sqrt(1.0 / 1280)).astype(np.float32), "classifier.1.weight"),
              numpy_helper.from_array(np.zeros(1000, np.float32), "classifier.1.bias")]
    nodes.append(helper.make_node("Gemm", ["flat", "classifier.1.weight", "classifier.1.bias"], ["output"], name="Gemm_0", alpha=1.0, beta=1.0, transB=1))
    save_model(path, "mobilenetv2-seeded", nodes, inits, "input", "output", opset=12, ir_version=7)


def vgg_gluon(path, depth, bn, seed):
    """VGG16/19, with or without BatchNorm, as the zoo's vgg16-bn-7, vgg19-7 and vgg19-bn-7
    (MXNet Gluon exports, opset 7: `vgg0_convN`, `vgg0_batchnormN`, `vgg0_denseN`, Flatten before
    fc6). Seeded He-normal weights; BatchNorm statistics near a trained model's."""
    rng = np.random.default_rng(seed)
    per_stage = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}[depth]
    nodes, inits = [], []
    x, c_in, conv_i, bn_i, relu_i = "data", 3, 0, 0, 0
    for stage, (reps, width) in enumerate(zip(per_stage, [64, 128, 256, 512, 512])):
        for _ in range(reps):
            w, b = f"vgg0_conv{conv_i}_weight", f"vgg0_conv{conv_i}_bias"
            inits += [numpy_helper.from_array((rng.standard_normal((width, c_in, 3, 3)) * np.sqrt(2.0 / (c_in * 9))).astype(np.float32), w),
                      numpy_helper.from_array((rng.standard_normal(width) * 0.01).astype(np.float32), b)]
            out = f"vgg0_conv{conv_i}_fwd"
            nodes.append(helper.make_node("Conv", [x, w, b], [out], name=f"vgg0_conv{conv_i}", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]))
            x, conv_i = out, conv_i + 1
            if bn:
                names = [f"vgg0_batchnorm{bn_i}_{n}" for n in ("gamma", "beta", "running_mean", "running_var")]
                for n, v in zip(names, (rng.uniform(0.5, 1.5, width), rng.standard_normal(width) * 0.1, rng.standard_normal(width) * 0.1, rng.uniform(0.5, 1.5, width))):
                    inits.append(numpy_helper.from_array(v.astype(np.float32), n))
                out = f"vgg0_batchnorm{bn_i}_fwd"
                nodes.append(helper.make_node("BatchNormalization", [x] + names, [out], name=f"vgg0_batchnorm{bn_i}", epsilon=1e-5))
                x, bn_i = out, bn_i + 1
            out = f"vgg0_relu{relu_i}_fwd"
            nodes.append(helper.make_node("Relu", [x], [out], name=f"vgg0_relu{relu_i}"))
            x, c_in, relu_i = out, width, relu_i + 1
        out = f"vgg0_pool{stage}_fwd"
        nodes.append(helper.make_node("MaxPool", [x], [out], name=f"vgg0_pool{stage}", kernel_shape=[2, 2], strides=[2, 2]))
        x = out
    nodes.append(helper.make_node("Flatten", [x], ["flatten_0"], name="flatten_0", axis=1))
    x, k = "flatten_0", 512 * 7 * 7
    for i, n in enumerate([4096, 4096, 1000]):
        w, b = f"vgg0_dense{i}_weight", f"vgg0_dense{i}_bias"
        inits += [numpy_helper.from_array((rng.standard_normal((n, k), dtype=np.float32) * np.float32(np.sqrt(2.0 / k))).astype(np.float32), w),
                  numpy_helper.from_array(np.zeros(n, np.float32), b)]
        out = f"vgg0_dense{i}_fwd"
        nodes.append(helper.make_node("Gemm", [x, w, b], [out], name=f"vgg0_dense{i}", alpha=1.0, beta=1.0, transB=1))
        x, k = out, n
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"vgg0_relu{relu_i}_fwd"], name=f"vgg0_relu{relu_i}"))
            x, relu_i = f"vgg0_relu{relu_i}_fwd", relu_i + 1
    name = f"vgg{depth}{'-bn' if bn else ''}-seeded"
    save_model(path, name, nodes, inits, "data", x, opset=7, ir_version=3)


def resnet50_v2(path, seed=21):
    """ResNet-50 v2 (pre-activation, He et al. 2016) as the zoo's resnet50-v2-7 (MXNet Gluon,
    `resnetv24_*`): the input's own BatchNorm, a 7x7/2 stem, then 16 bottlenecks of BN-ReLU-
    conv1x1, BN-ReLU-conv3x3 (stride here), BN-ReLU-conv1x1, the shortcut a 1x1 conv of the
    pre-activated input where the shape changes, else the block's input; a final BN-ReLU,
    global pooling and the classifier. Its BatchNorms follow an Add or the input, so most cannot
    be folded into a conv: they run as BatchNorm on every engine. Seeded weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = {"conv": 0, "bn": 0, "relu": 0}

    def next_name(kind):
        i = count[kind]
        count[kind] += 1
        return i

    def conv(x, c_in, c_out, k, stride, prefix):
        i = next_name("conv")
        w = f"{prefix}_conv{i}_weight"
        inits.append(numpy_helper.from_array((rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))).astype(np.float32), w))
        out = f"{prefix}_conv{i}_fwd"
        nodes.append(helper.make_node("Conv", [x, w], [out], name=f"{prefix}_conv{i}", kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
        return out

    def bn(x, c, prefix, relu=True):
        i = next_name("bn")
        names = [f"{prefix}_batchnorm{i}_{n}" for n in ("gamma", "beta", "running_mean", "running_var")]
        for n, v in zip(names, (rng.uniform(0.5, 1.0, c), rng.standard_normal(c) * 0.1, rng.standard_normal(c) * 0.1, rng.uniform(0.5, 1.5, c))):
            inits.append(numpy_helper.from_array(v.astype(np.float32), n))
        out = f"{prefix}_batchnorm{i}_fwd"
        nodes.append(helper.make_node("BatchNormalization", [x] + names, [out], name=f"{prefix}_batchnorm{i}", epsilon=1e-5))
        if not relu:
            return out
        r = next_name("relu")
        nodes.append(helper.make_node("Relu", [out], [f"{prefix}_relu{r}_fwd"], name=f"{prefix}_relu{r}"))
        return f"{prefix}_relu{r}_fwd"

    x = bn("data", 3, "resnetv24", relu=False)
    x = conv(x, 3, 64, 7, 2, "resnetv24")
    x = bn(x, 64, "resnetv24")
    nodes.append(helper.make_node("MaxPool", [x], ["resnetv24_pool0_fwd"], name="resnetv24_pool0", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, c_in, adds = "resnetv24_pool0_fwd", 64, 0
    for stage, (blocks, width, stride) in enumerate([(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]):
        prefix = f"resnetv24_stage{stage + 1}"
        for b in range(blocks):
            s = stride if b == 0 else 1
            pre = bn(x, c_in, prefix)
            h = conv(pre, c_in, width, 1, 1, prefix)
            h = conv(bn(h, width, prefix), width, width, 3, s, prefix)
            h = conv(bn(h, width, prefix), width, width * 4, 1, 1, prefix)
            short = conv(pre, c_in, width * 4, 1, s, prefix) if b == 0 else x
            out = f"{prefix}__plus{adds}"
            nodes.append(helper.make_node("Add", [h, short], [out], name=f"{prefix}__plus{adds}"))
            x, c_in, adds = out, width * 4, adds + 1
    x = bn(x, c_in, "resnetv24")
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["resnetv24_pool1_fwd"], name="resnetv24_pool1"))
    nodes.append(helper.make_node("Flatten", ["resnetv24_pool1_fwd"], ["flatten_0"], name="flatten_0", axis=1))
    inits += [numpy_helper.from_array((rng.standard_normal((1000, 2048)) * np.sqrt(1.0 / 2048)).astype(np.float32), "resnetv24_dense0_weight"),
              numpy_helper.from_array(np.zeros(1000, np.float32), "resnetv24_dense0_bias")]
    nodes.append(helper.make_node("Gemm", ["flatten_0", "resnetv24_dense0_weight", "resnetv24_dense0_bias"], ["resnetv24_dense0_fwd"], name="resnetv24_dense0", alpha=1.0, beta=1.0, transB=1))
    save_model(path, "resnet50v2-seeded", nodes, inits, "data", "resnetv24_dense0_fwd", opset=7, ir_version=3)


def caffenet(path, seed=22):
    """BVLC CaffeNet as the zoo's caffenet-12 (Caffe2 export: `conv1_w_0`, input `data_0`,
    output `prob_1`): AlexNet with each max pool before its LRN, grouped conv2/4/5, fc6-8 and
    a softmax. Seeded weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def param(name, shape, fan_in):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name))
        return name

    def conv(x, name, c_in, c_out, k, stride, pad, group):
        w = param(f"{name}_w_0", (c_out, c_in // group, k, k), c_in // group * k * k)
        b = param(f"{name}_b_0", (c_out,), 1e4)
        nodes.append(helper.make_node("Conv", [x, w, b], [f"{name}_1"], name=name, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group))
        nodes.append(helper.make_node("Relu", [f"{name}_1"], [f"{name}_2"], name=f"{name}_relu"))
        return f"{name}_2"

    def pool(x, name):
        # Caffe's pools round up: 54 -> 27 -> 13 -> 6 at 224 px.
        nodes.append(helper.make_node("MaxPool", [x], [f"{name}_1"], name=name, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
        return f"{name}_1"

    def norm(x, name):
        nodes.append(helper.make_node("LRN", [x], [f"{name}_1"], name=name, size=5, alpha=1e-4, beta=0.75, bias=1.0))
        return f"{name}_1"

    x = norm(pool(conv("data_0", "conv1", 3, 96, 11, 4, 0, 1), "pool1"), "norm1")
    x = norm(pool(conv(x, "conv2", 96, 256, 5, 1, 2, 2), "pool2"), "norm2")
    x = conv(x, "conv3", 256, 384, 3, 1, 1, 1)
    x = conv(x, "conv4", 384, 384, 3, 1, 1, 2)
    x = pool(conv(x, "conv5", 384, 256, 3, 1, 1, 2), "pool5")
    nodes.append(helper.make_node("Flatten", [x], ["pool5_flat"], name="flatten", axis=1))
    x, k = "pool5_flat", 256 * 6 * 6
    for name, n in [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)]:
        w, b = param(f"{name}_w_0", (n, k), k), param(f"{name}_b_0", (n,), 1e4)
        nodes.append(helper.make_node("Gemm", [x, w, b], [f"{name}_1"], name=name, transB=1))
        x, k = f"{name}_1", n
        if name != "fc8":
            nodes.append(helper.make_node("Relu", [x], [f"{name}_2"], name=f"{name}_relu"))
            x = f"{name}_2"
    nodes.append(helper.make_node("Softmax", [x], ["prob_1"], name="prob"))
    save_model(path, "caffenet-seeded", nodes, inits, "data_0", "prob_1", opset=12, ir_version=7)


def seeded_light(src, dst, seed):
    """A zoo graph from the onnx package's light models (every weight a ConstantOfShape of 0.02)
    with seeded weights instead: He-normal convolution and Gemm weights, BatchNorm scale and
    variance near 1, small biases and means, so activations keep their scale through the net."""
    rng = np.random.default_rng(seed)
    m = onnx.load(src)
    uses = {}
    for n in m.graph.node:
        for i, name in enumerate(n.input):
            uses.setdefault(name, (n.op_type, i))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    keep = []
    for n in m.graph.node:
        if n.op_type != "ConstantOfShape":
            keep.append(n)
            continue
        shape = [int(d) for d in inits[n.input[0]]]
        op, idx = uses.get(n.output[0], ("", 0))
        if op in ("Conv", "Gemm") and idx == 1:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            v = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif op == "BatchNormalization" and idx in (1, 4):
            v = rng.uniform(0.5, 1.5, shape)
        else:
            v = rng.standard_normal(shape) * 0.1
        m.graph.initializer.append(numpy_helper.from_array(v.astype(np.float32), n.output[0]))
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.save(m, dst)


def with_all_outputs(model):
    """The model with every node output also a graph output, so onnxruntime returns them all."""
    have = {o.name for o in model.graph.output}
    inits = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("Constant", "ConstantOfShape"):
            continue
        for out in node.output[:1]:
            if out and out not in have and out not in inits:
                model.graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
                have.add(out)
    return model


def preprocess(path, mean, std, scale, bgr):
    """Shorter side to 256 (bilinear), centre crop 224, normalise: the app's default."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = 256 / min(w, h)
    img = img.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    a = np.asarray(img, dtype=np.float32) * scale
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    if bgr:
        a = a[:, :, ::-1]
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None]).astype(np.float32)


def dump(model_path, out_dir, cases, all_layers=True):
    model = onnx.load(model_path)
    if all_layers:
        model = with_all_outputs(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    for case, x in cases.items():
        d = os.path.join(out_dir, case)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "input.npy"), x)
        outs = sess.run(names, {input_name: x})
        for n, v in zip(names, outs):
            np.save(os.path.join(d, sanitize(n) + ".npy"), np.asarray(v, np.float32))
        with open(os.path.join(d, "outputs.json"), "w") as f:
            json.dump({"input": input_name, "outputs": names, "final": [o.name for o in onnx.load(model_path, load_external_data=False).graph.output]}, f)
    print(f"{os.path.basename(model_path)}: {len(cases)} case(s), {len(names)} tensors each -> {out_dir}", file=sys.stderr)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=os.environ.get("CONVLENS_MODELS", os.path.join(root, "..", "shared", "models")))
    ap.add_argument("--images", default=os.path.join(root, "..", "shared", "images"))
    ap.add_argument("--out", default=os.path.join(root, "target", "refs"))
    ap.add_argument("--skip-vgg", action="store_true", help="skip the 553 MB seeded VGG16")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    imagenet = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255, bgr=False)
    caffe = dict(mean=(123.68, 116.779, 103.939), std=(1, 1, 1), scale=1.0, bgr=True)
    photos = sorted(f for f in os.listdir(args.images) if f.lower().endswith((".png", ".jpg", ".jpeg")))

    # Seeded inputs on the scale each family's preprocessing gives (std-normal vs 0..255 minus mean).
    sq = {"seeded": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}
    for p in photos:
        sq["photo_" + os.path.splitext(p)[0]] = preprocess(os.path.join(args.images, p), **imagenet)
    dump(os.path.join(args.models, "squeezenet1.1.onnx"), os.path.join(args.out, "squeezenet1.1"), sq)

    g = {"seeded": (rng.standard_normal((1, 3, 224, 224), dtype=np.float32) * 60.0).astype(np.float32),
         "photo_chelsea": preprocess(os.path.join(args.images, "chelsea.png"), **caffe)}
    dump(os.path.join(args.models, "googlenet-synthetic.onnx"), os.path.join(args.out, "googlenet-synthetic"), g)

    zoo = os.path.join(args.out, "ops-zoo.onnx")
    ops_zoo(zoo)
    dump(zoo, os.path.join(args.out, "ops-zoo"), {"seeded": rng.standard_normal((1, 8, 17, 13), dtype=np.float32)})

    # ResNet-50 (residual Sum joins, BatchNorm after every conv) from the onnx package's light
    # models, with seeded weights; its own generator, so the cases above keep their inputs.
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_resnet50.onnx")
    resnet = os.path.join(args.out, "resnet50-seeded.onnx")
    seeded_light(light, resnet, seed=11)
    r = np.random.default_rng(12)
    dump(resnet, os.path.join(args.out, "resnet50-seeded"), {"seeded": r.standard_normal((1, 3, 224, 224), dtype=np.float32)})
    # Inception v2 (BN-Inception) and DenseNet-121: BatchNorms exported as a Mul and an Add of
    # per-channel constants, DenseNet's growing concatenations. ShuffleNet v1: grouped 1x1
    # convs, depthwise 3x3s, and the channel shuffle as a rank-5 Reshape, Transpose, Reshape.
    # AlexNet, ZFNet-512 and SqueezeNet 1.0 (Caffe2 exports, LRN and ceil-mode pools).
    for name, seed in [("inception_v2", 13), ("densenet121", 14), ("shufflenet", 15), ("bvlc_alexnet", 17), ("zfnet512", 18), ("squeezenet", 19)]:
        light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"light_{name}.onnx")
        path = os.path.join(args.out, f"{name}-seeded.onnx")
        seeded_light(light, path, seed=seed)
        dump(path, os.path.join(args.out, f"{name}-seeded"), {"seeded": np.random.default_rng(seed + 100).standard_normal((1, 3, 224, 224), dtype=np.float32)})

    mobilenet = os.path.join(args.out, "mobilenetv2-seeded.onnx")
    mobilenet_v2(mobilenet)
    # An input of a larger scale, so ReLU6's cap at 6 is reached in the first layers.
    dump(mobilenet, os.path.join(args.out, "mobilenetv2-seeded"), {"seeded": (np.random.default_rng(116).standard_normal((1, 3, 224, 224)) * 3.0).astype(np.float32)})

    # ResNet-50 v2 (pre-activation: BatchNorms that run as such) and CaffeNet, by hand.
    for name, build, seed in [("resnet50v2", resnet50_v2, 121), ("caffenet", caffenet, 122)]:
        path = os.path.join(args.out, f"{name}-seeded.onnx")
        build(path)
        dump(path, os.path.join(args.out, f"{name}-seeded"), {"seeded": np.random.default_rng(seed).standard_normal((1, 3, 224, 224), dtype=np.float32)})

    # ONNX's own node tests for the ops of the import table, and a batch-of-3 CNN.
    sys.path.insert(0, here)
    import make_node_tests
    make_node_tests.write(os.path.join(args.out, "node"))

    if not args.skip_vgg:
        vgg = os.path.join(args.out, "vgg16-seeded.onnx")
        if not os.path.exists(vgg):
            vgg16_zoo_layout(vgg)
        v = {"seeded": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}
        dump(vgg, os.path.join(args.out, "vgg16-seeded"), v)
        # VGG19 and VGG16 with BatchNorm (folded into each conv at import): with VGG16 above,
        # the zoo's VGG family with and without BatchNorm (VGG19-BN is these two together).
        for depth, bn, seed in [(19, False, 23), (16, True, 24)]:
            name = f"vgg{depth}{'-bn' if bn else ''}-seeded"
            path = os.path.join(args.out, f"{name}.onnx")
            vgg_gluon(path, depth, bn, seed)
            dump(path, os.path.join(args.out, name), {"seeded": np.random.default_rng(seed + 100).standard_normal((1, 3, 224, 224), dtype=np.float32)})


if __name__ == "__main__":
    main()
