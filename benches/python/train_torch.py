"""Side-by-side reference for `cargo xtask bench train`: the same `compact` classifier as dlkit (conv3x3-BN-ReLU
stages of 16, 32, 64, 128 channels, stride 2 from the second stage, global average pooling, 1x1 conv head), the
same optimiser (Adam, lr 0.003) and batch size (64), trained in a plain PyTorch loop.

1. `loop`: the wall time of the whole training as a user waits for it, as dlkit's `train_dl_model`: images read
   from the PNG files by a DataLoader with 2 persistent workers (PIL decode, (x - 127) scaling as dlkit's default
   preprocessing), shuffled each epoch; after each epoch the validation split (every 200th line, as dlkit's) is
   evaluated and a checkpoint (model + optimiser state) is written. Peak memory of the main process and of each
   worker (read while they run).
2. `compute`: the same net and optimiser on batches already in memory (the compute-only limit).

Usage: train_torch.py LIST_FILE EPOCHS. LIST_FILE has one "path<TAB>class index" per line. Prints JSON lines
{"bench", "tool", "images", "seconds", "peak_rss_mib"}. Tools: torch 2.13.0.
"""

import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

from bench_util import peak_rss_mib, save_checkpoint, worker_peak_rss_mib


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


def main():
    items = []
    with open(sys.argv[1]) as f:
        for line in f:
            path, label = line.rstrip("\n").split("\t")
            items.append((path, int(label)))
    epochs = int(sys.argv[2])
    threads = int(os.environ.get("DLKIT_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    num_classes = max(l for _, l in items) + 1
    train = [it for i, it in enumerate(items) if i % 200 != 0]
    validation = [it for i, it in enumerate(items) if i % 200 == 0]
    out = tempfile.mkdtemp(prefix="dlkit-train-torch-")
    t = time.perf_counter()
    net = compact(num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=0.003)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(Images(train), batch_size=64, shuffle=True, num_workers=2, drop_last=True,
                                         persistent_workers=True)
    val_loader = torch.utils.data.DataLoader(Images(validation), batch_size=64)
    seen = 0
    for epoch in range(epochs):
        net.train()
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            seen += x.shape[0]
        net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += int((net(x).argmax(1) == y).sum())
        save_checkpoint(os.path.join(out, "checkpoint.pt"), net, opt, epoch)
    loop_seconds = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    workers = worker_peak_rss_mib(loader)
    name = (f"PyTorch {torch.__version__.split('+')[0]} loop ({threads} threads), DataLoader 2 workers, "
            "validation + checkpoint each epoch")
    print(json.dumps({"bench": "loop", "tool": name, "images": seen, "seconds": loop_seconds,
                      "peak_rss_mib": peak_rss_mib(), "peak_rss_workers_mib": workers,
                      "final_loss": float(loss), "validation_accuracy": correct / len(validation)}), flush=True)

    net.train()
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
