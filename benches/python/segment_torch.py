"""Side-by-side reference for `cargo xtask bench segment`: dlkit's segmentation network written in PyTorch.

The same network on both sides: torchvision's MobileNetV2 features, feature maps of `features.3`, `.6`, `.13`, `.18`
(strides 4, 8, 16, 32); a U-Net-style decoder — the stride-32 map through a 1×1 convolution, then at each finer
level bilinear upsampling (align_corners=False), concatenation with the backbone's map and a 3×3 convolution, each
convolution without bias and followed by batch norm and ReLU, 64 channels — and a 1×1 classifier, upsampled
bilinearly to the input size; per-pixel cross-entropy; ImageNet normalisation of the gray image replicated to RGB.
The module names are dlkit's, so dlkit's exported weights load one to one.

Usage: segment_torch.py DIR EPOCHS. DIR holds `images/`, `labels/` (256×256 crops, PNG), `full.png` (512×512) and
`weights.safetensors` (dlkit's initial weights). Prints JSON lines {"bench", "tool", "items" | "images", "seconds", …}:
- `outputs`: class and confidence (softmax probability) of every pixel of the full image;
- `latency_b1`: median seconds of one eval-mode call on the full image (normalisation, forward, softmax, class ids
  and confidences to NumPy);
- `train`: images/s of a training loop (Adam 1e-3, batch 8) reading the PNGs through a DataLoader with 2 workers,
  with the peak resident memory of the main process and of the largest worker.
Tools: torch 2.13.0, torchvision 0.28.0.
"""

import json
import os
import tempfile
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.nn import functional as F
from bench_util import peak_rss_mib, save_checkpoint, worker_peak_rss_mib
from safetensors_np import load_file

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Decoder(nn.Module):
    def __init__(self, levels, channels, classes):
        super().__init__()
        (_, top_c), *finer = levels[::-1]
        self.top = ConvBnRelu(top_c, channels, 1)
        below = channels
        for stride, c in finer:
            setattr(self, f"up{stride}", ConvBnRelu(below + c, channels, 3))
        self.order = [f"up{s}" for s, _ in finer]
        self.classifier = nn.Conv2d(channels, classes, 1)


class SegNet(nn.Module):
    TAPS = {3: 4, 6: 8, 13: 16, 18: 32}

    def __init__(self, classes):
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        self.seg_head = Decoder([(4, 24), (8, 32), (16, 96), (32, 1280)], 64, classes)

    def forward(self, x):
        size = x.shape[-2:]
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                feats.append(x)
        d = self.seg_head
        y = d.top(feats[-1])
        for name, f in zip(d.order, feats[-2::-1]):
            y = F.interpolate(y, size=f.shape[-2:], mode="bilinear", align_corners=False)
            y = getattr(d, name)(torch.cat([y, f], 1))
        y = d.classifier(y)
        if y.shape[-2:] != size:
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


def load_dlkit_weights(model, path):
    ours = load_file(path)
    state = model.state_dict()
    new = {k: (v if k.endswith("num_batches_tracked") else ours[k].to(v.dtype).reshape(v.shape)) for k, v in state.items()}
    model.load_state_dict(new, strict=True)


def to_input(path):
    x = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(x).permute(2, 0, 1).contiguous()


class Crops(torch.utils.data.Dataset):
    def __init__(self, root):
        names = sorted(os.listdir(os.path.join(root, "images")))[1:]  # the first crop validates on dlkit's side
        self.items = [(os.path.join(root, "images", n), os.path.join(root, "labels", n)) for n in names]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        image, label = self.items[i]
        y = torch.from_numpy(np.asarray(Image.open(label), dtype=np.int64).copy())
        return to_input(image), y


def main():
    root, epochs = sys.argv[1], int(sys.argv[2])
    threads = int(os.environ.get("DLKIT_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SegNet(2).to(memory_format=torch.channels_last)
    load_dlkit_weights(model, os.path.join(root, "weights.safetensors"))
    tool = f"PyTorch {torch.__version__.split('+')[0]} eager, torchvision MobileNetV2 ({threads} threads)"

    model.eval()
    full = to_input(os.path.join(root, "full.png")).unsqueeze(0)

    def infer(x):
        x = ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)
        p = model(x).softmax(1)
        conf, cls = p.max(1)
        return cls[0].numpy(), conf[0].numpy()

    with torch.no_grad():
        cls, conf = infer(full)
        print(json.dumps({"bench": "outputs", "tool": tool, "items": 1, "seconds": 1.0,
                          "classes": cls.ravel().tolist(), "confidences": conf.ravel().tolist()}), flush=True)
        for _ in range(3):
            infer(full)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            infer(full)
            times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"bench": "latency_b1", "tool": tool, "items": 1, "seconds": times[10]}), flush=True)

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(Crops(root), batch_size=8, shuffle=True, num_workers=2, drop_last=True,
                                         persistent_workers=True)
    seen = 0
    t = time.perf_counter()
    ckpt = os.path.join(tempfile.mkdtemp(prefix="dlkit-bench-"), "checkpoint.pt")
    for epoch in range(epochs):
        for x, y in loader:
            x = ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(x)
        save_checkpoint(ckpt, model, opt, epoch)
    seconds = time.perf_counter() - t
    own = peak_rss_mib()
    workers = worker_peak_rss_mib(loader)
    print(json.dumps({"bench": "train", "tool": tool + ", DataLoader 2 workers, checkpoint each epoch", "images": seen, "seconds": seconds,
                      "peak_rss_mib": own, "peak_rss_workers_mib": workers}), flush=True)


if __name__ == "__main__":
    main()
