"""Side-by-side reference for `cargo xtask bench anomaly`: PatchCore as anomalib implements it, in PyTorch.

The same model as dlkit's `patchcore`: torchvision's MobileNetV2 features with dlkit's ImageNet weights
(`weights.safetensors`, the converted `pretrained_dl_classifier_mobilenet_v2`), feature maps of `features.6` and
`.13` (strides 8 and 16), each averaged over the 3×3 neighbours inside the map (padding not counted), the stride-16 map upsampled bilinearly to
the stride-8 size and concatenated; a 1 % greedy k-center coreset with torch ops, in dlkit's chunks of 65 536
patches (anomalib's `KCenterGreedy` runs one pass over all patches: its time is measured on 100 steps and
extrapolated, reported as `unchunked_coreset_seconds`); nearest-neighbour distances with `torch.cdist`, divided by the coverage
radius; the map upsampled bilinearly to 224×224, Gaussian blur σ = 4 (kernel 33), image score = max.
Images: PNG → gray → RGB, bilinear resize to 224×224 (antialias off), ImageNet normalisation.

Usage: patchcore_torch.py DIR [--check]. With --check (after dlkit's run): the test cells scored with dlkit's memory
bank (DIR/bank.f32, DIR/bank.json) by the same inference code, printed as `check` with the scores, which must
equal dlkit's. DIR holds `train.txt` (one image path per line), `test.txt` (path TAB 0 ok / 1 nok)
and `weights.safetensors`. Prints JSON lines {"bench", "tool", "images", "seconds", …}: `fit` (reading the train
images through a DataLoader with 2 workers, features, coreset; peak resident memory), `infer` (test images/s in
batches of 16 from decoded images, with scores and image AUROC). Tools: torch 2.13.0, torchvision 0.28.0,
scikit-learn (AUROC).
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F
from bench_util import peak_rss_mib
from safetensors_np import load_file

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SIZE = 224


class Extractor(torch.nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features[:14]
        ours = load_file(weights)
        state = self.features.state_dict()
        self.features.load_state_dict({k: v if k.endswith("num_batches_tracked") else ours["features." + k]
                                       for k, v in state.items()})

    def forward(self, x):
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (6, 13):
                # dlkit averages over the neighbours inside the map (count_include_pad=False); anomalib's AvgPool2d(3, 1, 1)
                # counts the zero padding, which lowers border features.
                maps.append(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        size = maps[0].shape[-2:]
        maps = [maps[0]] + [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps[1:]]
        return torch.cat(maps, 1)


def to_input(path):
    x = np.asarray(Image.open(path).convert("L").convert("RGB"), dtype=np.float32)
    return torch.from_numpy(x).permute(2, 0, 1).contiguous()


def prepare(batch):
    x = F.interpolate(batch / 255.0, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=False)
    return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)


class Images(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return to_input(self.paths[i])


def k_center_greedy(features, k, start=0):
    """Greedy k-center with torch ops (anomalib's KCenterGreedy, without its random projection)."""
    min_d = None
    idx = [start]
    for _ in range(k):
        d = ((features - features[idx[-1]]) ** 2).sum(1)
        min_d = d if min_d is None else torch.minimum(min_d, d)
        if len(idx) < k:
            idx.append(int(torch.argmax(min_d).item()))
    return idx, float(min_d.max().sqrt())


def chunked_coreset(features, ratio, chunk=65536):
    """dlkit's chunking: ⌈ratio · n⌉ of each chunk of 65 536 patches."""
    kept, radius = [], 0.0
    for s in range(0, features.shape[0], chunk):
        part = features[s:s + chunk]
        idx, r = k_center_greedy(part, int(np.ceil(part.shape[0] * ratio)))
        kept.append(part[idx])
        radius = max(radius, r)
    return torch.cat(kept), radius


def unchunked_seconds(features, ratio, iterations=100):
    """anomalib's one pass over all patches: seconds of `iterations` steps, extrapolated to ⌈ratio · n⌉."""
    k = int(np.ceil(features.shape[0] * ratio))
    t = time.perf_counter()
    k_center_greedy(features, iterations)
    return (time.perf_counter() - t) * k / iterations


def gaussian_blur(maps, sigma=4.0):
    radius = int(np.ceil(4 * sigma))
    return torchvision.transforms.functional.gaussian_blur(maps, [2 * radius + 1] * 2, [sigma, sigma])


def main():
    root = sys.argv[1]
    threads = int(os.environ.get("DLKIT_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    tool = f"PyTorch {torch.__version__.split('+')[0]} eager, anomalib-style PatchCore ({threads} threads)"
    model = Extractor(os.path.join(root, "weights.safetensors")).eval().to(memory_format=torch.channels_last)
    train = [l.strip() for l in open(os.path.join(root, "train.txt")) if l.strip()]
    test = [l.rstrip("\n").split("\t") for l in open(os.path.join(root, "test.txt")) if l.strip()]

    t = time.perf_counter()
    loader = torch.utils.data.DataLoader(Images(train), batch_size=16, num_workers=2)
    feats = []
    with torch.no_grad():
        for x in loader:
            f = model(prepare(x))
            feats.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]))
        feats = torch.cat(feats)
        bank, radius = chunked_coreset(feats, 0.01)
    seconds = time.perf_counter() - t
    own = peak_rss_mib()
    with torch.no_grad():
        unchunked = unchunked_seconds(feats, 0.01)
    print(json.dumps({"bench": "fit", "tool": tool + ", DataLoader 2 workers", "images": len(train),
                      "seconds": seconds, "patches": int(feats.shape[0]), "memory_bank_size": int(bank.shape[0]),
                      "peak_rss_mib": own, "unchunked_coreset_seconds": unchunked}), flush=True)
    del feats

    images = [to_input(p) for p, _ in test]
    labels = [int(y) for _, y in test]
    t = time.perf_counter()
    scores = score(model, images, bank, radius)
    seconds = time.perf_counter() - t
    print(json.dumps({"bench": "infer", "tool": tool, "images": len(images), "seconds": seconds,
                      "auroc": roc_auc_score(labels, scores), "scores": scores}), flush=True)


def score(model, images, bank, radius):
    """Image scores of decoded images in batches of 16."""
    scores = []
    with torch.no_grad():
        for i in range(0, len(images), 16):
            x = prepare(torch.stack(images[i:i + 16]))
            f = model(x)
            n, d, h, w = f.shape
            dist = torch.cdist(f.permute(0, 2, 3, 1).reshape(-1, d), bank).min(1).values / radius
            maps = F.interpolate(dist.view(n, 1, h, w), size=(SIZE, SIZE), mode="bilinear", align_corners=False)
            maps = gaussian_blur(maps)
            scores.extend(maps.amax((1, 2, 3)).tolist())
    return scores


def check(root):
    """The test cells scored with dlkit's memory bank."""
    torch.set_num_threads(int(os.environ.get("DLKIT_BENCH_THREADS", "2")))
    model = Extractor(os.path.join(root, "weights.safetensors")).eval().to(memory_format=torch.channels_last)
    meta = json.load(open(os.path.join(root, "bank.json")))
    bank = torch.from_numpy(np.fromfile(os.path.join(root, "bank.f32"), dtype="<f4").reshape(meta["rows"], meta["features"]))
    test = [l.rstrip("\n").split("\t") for l in open(os.path.join(root, "test.txt")) if l.strip()]
    scores = score(model, [to_input(p) for p, _ in test], bank, meta["score_scale"])
    print(json.dumps({"bench": "check", "tool": "PyTorch with dlkit's memory bank", "images": len(scores),
                      "seconds": 1.0, "scores": scores}), flush=True)


if __name__ == "__main__":
    if "--check" in sys.argv:
        check(sys.argv[1])
    else:
        main()
