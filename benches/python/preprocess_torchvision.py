"""Side-by-side reference for `cargo xtask bench preprocess`: decode, resize to 224x224 and normalise
images with PIL + torchvision in a DataLoader with 2 worker processes, as a PyTorch user would.

usage: python preprocess_torchvision.py LIST_FILE
Prints one JSON line: {"tool": ..., "images": N, "seconds": S}. Tools: torch 2.13.0, torchvision 0.28.0.
"""

import json
import sys
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms


class Images(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths
        self.t = transforms.Compose([
            transforms.Resize((224, 224), antialias=False),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.t(Image.open(self.paths[i]).convert("RGB"))


def main():
    paths = [p.strip() for p in open(sys.argv[1]) if p.strip()]
    torch.set_num_threads(1)
    loader = torch.utils.data.DataLoader(Images(paths), batch_size=32, num_workers=2)
    for i, _ in enumerate(loader):  # warm-up: page cache and worker start
        if i == 2:
            break
    start = time.perf_counter()
    n = 0
    for batch in loader:
        n += batch.shape[0]
    secs = time.perf_counter() - start
    print(json.dumps({"tool": f"torchvision {torchvision.__version__} + PIL, DataLoader 2 workers",
                      "images": n, "seconds": secs}))


if __name__ == "__main__":
    main()
