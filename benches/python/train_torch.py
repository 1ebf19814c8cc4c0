"""Side-by-side reference for `cargo xtask bench train`: the same `compact` classifier as dlkit (conv3x3-BN-ReLU
stages of 16, 32, 64, 128 channels, stride 2 from the second stage, global average pooling, 1x1 conv head), the
same optimiser (Adam, lr 0.003) and batch size (64), trained in a plain PyTorch loop.

1. `loop`: images read from the PNG files by a DataLoader with 2 workers (PIL decode, (x - 127) scaling as dlkit's
   default preprocessing), shuffled each epoch.
2. `compute`: the same net and optimiser on batches already in memory (the compute-only limit).

Usage: train_torch.py LIST_FILE EPOCHS. LIST_FILE has one "path<TAB>class index" per line. Prints JSON lines
{"bench", "tool", "images", "seconds", "peak_rss_mib"}. Tools: torch 2.13.0.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch import nn


def compact(num_classes, in_channels=1, widths=(16, 32, 64, 128)):
    layers = []
    c = in_channels
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, stride=2 if i > 0 else 1, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, num_classes, 1), nn.Flatten())


class Images(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        x = np.asarray(Image.open(path).convert("L"), dtype=np.float32) - 127.0
        return torch.from_numpy(x).unsqueeze(0), label


def peak_rss_mib():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024.0, children / 1024.0


def main():
    items = []
    with open(sys.argv[1]) as f:
        for line in f:
            path, label = line.rstrip("\n").split("\t")
            items.append((path, int(label)))
    epochs = int(sys.argv[2])
    torch.set_num_threads(int(os.environ.get("DLKIT_BENCH_THREADS", "2")))
    torch.manual_seed(0)
    num_classes = max(l for _, l in items) + 1
    net = compact(num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=0.003)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(Images(items), batch_size=64, shuffle=True, num_workers=2, drop_last=True,
                                         persistent_workers=True)
    net.train()
    # One warm-up epoch, then the timed ones.
    seen = 0
    t = None
    for epoch in range(epochs + 1):
        if epoch == 1:
            t = time.perf_counter()
            seen = 0
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            seen += x.shape[0]
    loop_seconds = time.perf_counter() - t
    own, children = peak_rss_mib()
    name = f"PyTorch {torch.__version__} loop, DataLoader(2 workers)"
    print(json.dumps({"bench": "loop", "tool": name, "images": seen, "seconds": loop_seconds,
                      "peak_rss_mib": own, "peak_rss_children_mib": children, "final_loss": float(loss)}), flush=True)

    # Compute only: the batches of one epoch already in memory.
    batches = [(x.clone(), y.clone()) for x, y in loader]
    for x, y in batches[:5]:
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    t = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for x, y in batches:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
            seen += x.shape[0]
    print(json.dumps({"bench": "compute", "tool": f"PyTorch {torch.__version__} on tensors in memory", "images": seen,
                      "seconds": time.perf_counter() - t}), flush=True)


if __name__ == "__main__":
    main()
