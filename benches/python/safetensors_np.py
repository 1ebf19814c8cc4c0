"""Reading dlkit's safetensors files without the safetensors package (shared by the side-by-side scripts)."""

import json

import numpy as np
import torch


def load_file(path):
    """A safetensors file (8-byte header length, JSON header, raw little-endian data) as tensors by name."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out
