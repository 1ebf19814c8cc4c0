"""Side-by-side reference for `cargo xtask bench eval`. Generates the workloads into DIR (seeded), times
the Python tools on them and prints one JSON line per measurement:
  coco:   COCO bbox evaluation, 5 000 images x 100 detections, 80 classes: pycocotools and faster-coco-eval
          (evaluate + accumulate + summarize; loading excluded)
  riou:   IoU of 1 000 000 rotated-box pairs with shapely's vectorised polygon intersection (polygons built inside
          the clock); the IoUs are written to DIR/riou_shapely.f64 for the comparison with dlkit's
  nms:    NMS of 10 000 boxes at IoU 0.5 with torchvision.ops.nms on the CPU (1 thread), with the kept indices
All single-threaded.
usage: python eval_bench.py DIR [--quick]
Tools: pycocotools 2.0.11, faster-coco-eval 1.8.0, shapely 2.2.0, torch 2.13.0, torchvision 0.28.0.
"""

import contextlib
import importlib.metadata as md
import io
import json
import os
import random
import sys
import time

import numpy as np


def coco_data(d, n_images, n_dt, n_cats, rng):
    images, anns, dets = [], [], []
    aid = 1
    for i in range(1, n_images + 1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        gts = []
        for _ in range(rng.randint(2, 12)):
            w, h = rng.uniform(8, 200), rng.uniform(8, 200)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            c = rng.randint(1, n_cats)
            anns.append({"id": aid, "image_id": i, "category_id": c, "bbox": [x, y, w, h], "area": w * h,
                         "iscrowd": int(rng.random() < 0.02)})
            gts.append((c, x, y, w, h))
            aid += 1
        for _ in range(n_dt):
            if rng.random() < 0.5:
                c, x, y, w, h = rng.choice(gts)
                b = [x + rng.gauss(0, 5), y + rng.gauss(0, 5), max(1, w + rng.gauss(0, 8)), max(1, h + rng.gauss(0, 8))]
            else:
                c = rng.randint(1, n_cats)
                w, h = rng.uniform(8, 200), rng.uniform(8, 200)
                b = [rng.uniform(0, 640 - w), rng.uniform(0, 480 - h), w, h]
            dets.append({"image_id": i, "category_id": c, "bbox": b, "score": rng.random()})
    gt = {"images": images, "annotations": anns, "categories": [{"id": c, "name": str(c)} for c in range(1, n_cats + 1)]}
    with open(os.path.join(d, "coco_gt.json"), "w") as f:
        json.dump(gt, f)
    with open(os.path.join(d, "coco_dt.json"), "w") as f:
        json.dump(dets, f)
    return len(dets)


def time_coco(d, module):
    gt, dt = os.path.join(d, "coco_gt.json"), os.path.join(d, "coco_dt.json")
    with contextlib.redirect_stdout(io.StringIO()):
        if module == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
            coco = COCO(gt)
            res = coco.loadRes(dt)
            e = COCOeval(coco, res, "bbox")
        else:
            from faster_coco_eval import COCO, COCOeval_faster
            coco = COCO(gt)
            res = coco.loadRes(dt)
            e = COCOeval_faster(coco, res, "bbox")
        start = time.perf_counter()
        e.evaluate()
        e.accumulate()
        e.summarize()
        secs = time.perf_counter() - start
    return secs, [float(x) for x in e.stats]


def main():
    d = sys.argv[1]
    quick = "--quick" in sys.argv
    rng = random.Random(5)
    n_images = 500 if quick else 5000
    n = coco_data(d, n_images, 100, 80, rng)
    for tool in ["faster_coco_eval", "pycocotools"]:
        secs, stats = time_coco(d, tool)
        name = "pycocotools" if tool == "pycocotools" else "faster-coco-eval"
        print(json.dumps({"bench": "coco", "tool": f"{name} {md.version(name)}", "items": n, "seconds": secs, "threads": 1, "stats": stats}), flush=True)

    import shapely
    np_rng = np.random.default_rng(3)
    pairs = 100_000 if quick else 1_000_000
    v = np.empty((pairs, 10))
    for k in (0, 5):
        v[:, k] = np_rng.uniform(-50, 50, pairs)
        v[:, k + 1] = np_rng.uniform(-50, 50, pairs)
        v[:, k + 2] = np_rng.uniform(-3.1, 3.1, pairs)
        v[:, k + 3] = np_rng.uniform(1, 30, pairs)
        v[:, k + 4] = np_rng.uniform(1, 30, pairs)
    v.astype("<f8").tofile(os.path.join(d, "riou_pairs.f64"))

    def polys(o):
        r, c, p, l1, l2 = (v[:, o + i] for i in range(5))
        s, co = np.sin(p), np.cos(p)
        pts = []
        for su, sv in [(-1, -1), (1, -1), (1, 1), (-1, 1)]:
            pts.append(np.stack([c + su * l1 * co + sv * l2 * -s, r + su * l1 * -s + sv * l2 * -co], axis=1))
        ring = np.stack(pts + [pts[0]], axis=1)
        return shapely.polygons(ring)

    start = time.perf_counter()
    a, b = polys(0), polys(5)
    inter = shapely.area(shapely.intersection(a, b))
    iou = inter / (shapely.area(a) + shapely.area(b) - inter)
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "riou", "tool": f"shapely {shapely.__version__} (vectorised, 1 thread)", "items": pairs,
                      "seconds": secs, "threads": 1}), flush=True)
    iou.astype("<f8").tofile(os.path.join(d, "riou_shapely.f64"))

    import torch
    import torchvision
    torch.set_num_threads(1)
    boxes = np.empty((10_000, 5))
    xy = np_rng.uniform(0, 1000, (10_000, 2))
    wh = np_rng.uniform(10, 100, (10_000, 2))
    boxes[:, 0:2] = xy
    boxes[:, 2:4] = xy + wh
    # Distinct scores (no ties to order arbitrarily) and every value exactly a float32, so that torchvision's float32
    # NMS and dlkit's float64 NMS see the same numbers.
    boxes[:, 4] = (np_rng.permutation(10_000) + 1) / 16384.0
    boxes = boxes.astype(np.float32).astype(np.float64)
    boxes.astype("<f8").tofile(os.path.join(d, "nms_boxes.f64"))
    tb = torch.tensor(boxes[:, :4], dtype=torch.float32)
    ts = torch.tensor(boxes[:, 4], dtype=torch.float32)
    torchvision.ops.nms(tb, ts, 0.5)
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        keep = torchvision.ops.nms(tb, ts, 0.5)
    secs = (time.perf_counter() - start) / reps
    print(json.dumps({"bench": "nms", "tool": f"torchvision {torchvision.__version__.split('+')[0]} ops.nms (CPU, 1 thread)",
                      "items": 10_000, "seconds": secs, "threads": 1, "kept": keep.tolist()}), flush=True)


if __name__ == "__main__":
    main()
