"""Side-by-side reference for `cargo xtask bench preprocess`, in two variants, each timed over a DataLoader with
2 persistent worker processes (1 torch thread each) after a warm-up pass that starts them:

1. `equal`: the algorithm dlkit runs — decode (PIL), gray replicated to 3 channels, bilinear resize with half-pixel
   centres and no antialiasing (`torch.nn.functional.interpolate(..., align_corners=False, antialias=False)`),
   ImageNet normalisation on the 0…255 scale. Its outputs are compared with dlkit's.
2. `default`: what a PyTorch user writes by default — `Image.convert("RGB")`, `transforms.Resize((224, 224))`
   (PIL's resize, which always antialiases), `ToTensor`, `Normalize`. A different algorithm: its outputs are
   compared only for information.

usage: python preprocess_torchvision.py LIST_FILE OUT_DIR
Prints one JSON line per variant: {"bench", "tool", "images", "seconds", "threads"}; then writes, untimed,
OUT_DIR/{equal,default}_sums.f64 (the sum of every 10th image's values) and OUT_DIR/{equal,default}_{k}.f32 (the
tensors of images 0…3). Tools: torch 2.13.0, torchvision 0.28.0, Pillow.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.nn import functional as F
from torchvision import transforms

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def equal_work(path):
    img = Image.open(path)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32))
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
    x = F.interpolate(x.unsqueeze(0), size=(224, 224), mode="bilinear", align_corners=False, antialias=False)[0]
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return (x - MEAN) / STD


DEFAULT = transforms.Compose([
    transforms.Resize((224, 224)),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])


def default_path(path):
    return DEFAULT(Image.open(path).convert("RGB"))


class Images(torch.utils.data.Dataset):
    def __init__(self, paths, f):
        self.paths, self.f = paths, f

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.f(self.paths[i])


def main():
    paths = [p.strip() for p in open(sys.argv[1]) if p.strip()]
    out = sys.argv[2]
    torch.set_num_threads(1)
    for name, f, tool in [
        ("equal", equal_work, "PyTorch interpolate (bilinear, no antialias)"),
        ("default", default_path, "torchvision transforms + PIL (antialiased resize)"),
    ]:
        loader = torch.utils.data.DataLoader(Images(paths, f), batch_size=32, num_workers=2, persistent_workers=True)
        for _ in loader:  # warm-up: starts the persistent workers, fills the page cache
            pass
        start = time.perf_counter()
        n = 0
        for batch in loader:
            n += batch.shape[0]
        secs = time.perf_counter() - start
        print(json.dumps({"bench": name, "tool": f"{tool}, torch {torch.__version__.split('+')[0]}, torchvision "
                          f"{torchvision.__version__.split('+')[0]}, DataLoader 2 workers × 1 thread",
                          "images": n, "seconds": secs, "threads": 2}), flush=True)
        del loader
        sums = np.array([float(f(p).double().sum()) for p in paths[::10]], dtype="<f8")
        sums.tofile(os.path.join(out, f"{name}_sums.f64"))
        for k, p in enumerate(paths[:4]):
            f(p).contiguous().numpy().astype("<f4").tofile(os.path.join(out, f"{name}_{k}.f32"))


if __name__ == "__main__":
    main()
