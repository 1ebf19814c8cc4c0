"""Side-by-side reference for `cargo xtask bench infer`: torchvision's ResNet-18 in PyTorch eager mode on
the CPU, same libtorch and thread count as dlkit, with dlkit's weights (DIR/weights.safetensors): the logits of
DIR/input.f32 (`outputs`, compared with dlkit's), batch-1 latency (median of 50) and batch-32 throughput.
usage: infer_torch.py DIR. Prints JSON lines. Tools: torch 2.13.0, torchvision 0.28.0.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

from safetensors_np import load_file


def main():
    threads = int(os.environ.get("DLKIT_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    ours = load_file(os.path.join(sys.argv[1], "weights.safetensors"))
    net.load_state_dict({k: v if k.endswith("num_batches_tracked") else ours[k] for k, v in net.state_dict().items()},
                        strict=True)
    name = f"PyTorch {torch.__version__.split('+')[0]} eager resnet18 ({threads} threads)"
    with torch.no_grad():
        x = torch.from_numpy(np.fromfile(os.path.join(sys.argv[1], "input.f32"), dtype="<f4").reshape(1, 3, 224, 224))
        print(json.dumps({"bench": "outputs", "tool": name, "items": 1, "seconds": 1.0,
                          "logits": net(x).reshape(-1).tolist()}), flush=True)
        x1 = torch.randn(1, 3, 224, 224)
        for _ in range(5):
            net(x1)
        times = []
        for _ in range(50):
            t = time.perf_counter()
            net(x1)
            times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"bench": "latency_b1", "tool": name, "items": 1, "seconds": times[25]}), flush=True)
        x32 = torch.randn(32, 3, 224, 224)
        net(x32)
        reps = 3
        t = time.perf_counter()
        for _ in range(reps):
            net(x32)
        print(json.dumps({"bench": "throughput_b32", "tool": name, "items": 32 * reps, "seconds": time.perf_counter() - t}), flush=True)


if __name__ == "__main__":
    main()
