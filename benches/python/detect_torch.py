"""Side-by-side reference for `cargo xtask bench detect`: torchvision's RetinaNet built like dlkit's detector.

The same network on both sides: MobileNetV2 features (torchvision's), feature maps of `features.3`, `.6`, `.13`
(strides 4, 8, 16) into a FeaturePyramidNetwork of 128 channels without extra levels, RetinaNet's heads (four 3×3
convolutions of 128 channels, ReLU, no normalisation), 9 anchors per position (sizes 4·2^level·2^(i/3), aspect ratios
1, 2, 0.5), one class, sigmoid focal loss and L1 box loss, ImageNet normalisation, no resizing (min_size = max_size =
the tile size), score threshold 0, 1000 candidates per level, NMS 0.5, 100 detections.

Usage: detect_torch.py DIR EPOCHS. DIR holds `coco.json` (tiles and boxes, pixel-edge xywh), the tile PNGs and
`weights.safetensors` (dlkit's initial weights under torchvision's names, loaded here so both sides compute the same
function). Prints JSON lines {"bench", "tool", "items", "seconds", …}:
- `train`: images/s of a training loop (Adam 1e-3, batch 8) reading the PNGs through a DataLoader with 2 workers;
- `latency_b1`: median seconds of one eval-mode call on one tile (normalisation, forward, decoding, NMS), with the
  detections of the first test tile (`boxes`, `scores`) so the two sides' outputs can be compared;
- `postprocess`: decoding and batched NMS of 100 000 candidate boxes (`kept` indices) on the shared candidates file.
Tools: torch 2.13.0, torchvision 0.28.0.
"""

import json
import os
import tempfile
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import RetinaNet
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import FeaturePyramidNetwork, batched_nms
from bench_util import peak_rss_mib, save_checkpoint, worker_peak_rss_mib
from safetensors_np import load_file


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        features = torchvision.models.mobilenet_v2(weights=None).features
        self.body = IntermediateLayerGetter(features, return_layers={"3": "0", "6": "1", "13": "2"})
        self.fpn = FeaturePyramidNetwork([24, 32, 96], 128, extra_blocks=None)
        self.out_channels = 128

    def forward(self, x):
        return self.fpn(self.body(x))


def build(size):
    sizes = tuple(tuple(4.0 * 2**l * 2 ** (i / 3) for i in range(3)) for l in (2, 3, 4))
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=((1.0, 2.0, 0.5),) * 3)
    return RetinaNet(
        Backbone(), num_classes=1, min_size=size, max_size=size, image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225], anchor_generator=anchors, score_thresh=0.0, nms_thresh=0.5,
        detections_per_img=100, topk_candidates=1000,
    )


def load_dlkit_weights(model, path):
    """dlkit's names → torchvision's: the backbone's are already torchvision's."""
    ours = load_file(path)
    state = model.state_dict()
    new = {}
    for name in state:
        if name.endswith("num_batches_tracked"):
            new[name] = state[name]
            continue
        if name.startswith("backbone.body."):
            key = "features." + name[len("backbone.body."):]
        elif name.startswith("backbone.fpn.inner_blocks."):
            i, rest = name[len("backbone.fpn.inner_blocks."):].split(".0.")
            key = f"neck.lateral{int(i) + 2}.{rest}"
        elif name.startswith("backbone.fpn.layer_blocks."):
            i, rest = name[len("backbone.fpn.layer_blocks."):].split(".0.")
            key = f"neck.output{int(i) + 2}.{rest}"
        else:
            head = "class" if ".classification_head." in name else "box"
            rest = name.split("_head.")[1]
            if rest.startswith("conv."):
                i, tail = rest[len("conv."):].split(".0.")
                key = f"det_head.{head}.conv{i}.{tail}"
            else:
                key = f"det_head.{head}.out." + rest.split(".", 1)[1]
        new[name] = ours[key].to(state[name].dtype).reshape(state[name].shape)
    model.load_state_dict(new, strict=True)


class Tiles(torch.utils.data.Dataset):
    def __init__(self, root, coco):
        self.root = root
        by_image = {im["id"]: [] for im in coco["images"]}
        for a in coco["annotations"]:
            by_image[a["image_id"]].append(a["bbox"])
        self.items = [(im["file_name"], by_image[im["id"]]) for im in coco["images"]]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        name, boxes = self.items[i]
        x = torch.from_numpy(np.asarray(Image.open(os.path.join(self.root, name)).convert("RGB"), dtype=np.float32) / 255.0)
        b = torch.tensor([[x0, y0, x0 + w, y0 + h] for x0, y0, w, h in boxes], dtype=torch.float32).reshape(-1, 4)
        return x.permute(2, 0, 1).contiguous(), {"boxes": b, "labels": torch.zeros(len(boxes), dtype=torch.int64)}


def main():
    root, epochs = sys.argv[1], int(sys.argv[2])
    threads = int(os.environ.get("DLKIT_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    coco = json.load(open(os.path.join(root, "coco.json")))
    size = coco["images"][0]["width"]
    model = build(size)
    load_dlkit_weights(model, os.path.join(root, "weights.safetensors"))
    tool = f"torchvision {torchvision.__version__} RetinaNet, PyTorch eager ({threads} threads)"

    # Inference first (the initial weights, as dlkit's side).
    model.eval()
    data = Tiles(root, coco)
    with torch.no_grad():
        x, _ = data[0]
        out = model([x])[0]
        print(json.dumps({"bench": "outputs", "tool": tool, "items": 1, "seconds": 1.0,
                          "boxes": out["boxes"].tolist(), "scores": out["scores"].tolist()}), flush=True)
        for _ in range(3):
            model([x])
        times = []
        for _ in range(30):
            t = time.perf_counter()
            model([x])
            times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"bench": "latency_b1", "tool": tool, "items": 1, "seconds": times[15]}), flush=True)

    # Post-processing of 100 000 candidates: decode + batched NMS.
    cand = np.fromfile(os.path.join(root, "candidates.f32"), dtype=np.float32).reshape(-1, 10)
    anchors, deltas = torch.from_numpy(cand[:, 0:4].copy()), torch.from_numpy(cand[:, 4:8].copy())
    scores, labels = torch.from_numpy(cand[:, 8].copy()), torch.from_numpy(cand[:, 9].copy()).to(torch.int64)
    coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        boxes = coder.decode_single(deltas, anchors)
        boxes = torchvision.ops.clip_boxes_to_image(boxes, (size, size))
        keep = batched_nms(boxes, scores, labels, 0.5)[:100]
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"bench": "postprocess", "tool": f"torchvision {torchvision.__version__} decode + batched_nms",
                      "items": len(scores), "seconds": times[2], "kept": keep.tolist()}), flush=True)

    # Training.
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, num_workers=2, drop_last=True,
                                         persistent_workers=True, collate_fn=lambda b: tuple(zip(*b)))
    seen = 0
    t = time.perf_counter()
    ckpt = os.path.join(tempfile.mkdtemp(prefix="dlkit-bench-"), "checkpoint.pt")
    for epoch in range(epochs):
        for images, targets in loader:
            losses = model(list(images), list(targets))
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(images)
        save_checkpoint(ckpt, model, opt, epoch)
    seconds = time.perf_counter() - t
    own = peak_rss_mib()
    workers = worker_peak_rss_mib(loader)
    print(json.dumps({"bench": "train", "tool": tool + ", DataLoader 2 workers, checkpoint each epoch", "images": seen, "seconds": seconds,
                      "peak_rss_mib": own, "peak_rss_workers_mib": workers}), flush=True)


if __name__ == "__main__":
    main()
