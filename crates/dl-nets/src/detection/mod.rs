//! Object detection (`type = detection`), RetinaNet family: any [`Backbone`] → feature pyramid over
//! `min_level … max_level` (stride 2^level; levels finer than the backbone's coarsest map come from it
//! through 1×1 laterals and a top-down path, coarser ones from stride-2 convolutions) → class and box
//! heads shared over the levels. Anchors per position: every combination of `anchor_aspect_ratios`,
//! `anchor_num_subscales` sizes and, for rectangle2, `anchor_angles`. Training: sigmoid focal loss over
//! the non-ignored anchors and L1 on the box deltas of the positives, both divided by the number of
//! positives (as torchvision's RetinaNet); rectangle2 adds the angle term on (sin kΔ, cos kΔ) (see
//! [`box_coder`]). Inference: sigmoid scores above `min_confidence`, at most 1000 candidates per level,
//! decoded, NMS per class (`max_overlap`; exact rotated IoU for rectangle2) and class-agnostic
//! (`max_overlap_class_agnostic`), `max_num_detections`, boxes mapped back to the original image.

pub mod anchors;
pub mod assign;
pub mod box_coder;
pub mod proposal;
pub mod tta;

use crate::backbone::{Backbone, Level};
use crate::network::{Classes, Losses, Network, Outputs, Targets, wrong_targets};
use crate::{Error, Result};
use dl_core::{Rect1, Rect2};
use dl_data::preprocess::{ImageBoxes, ImageMap};
use dl_data::{Boxes, DLResult, InstanceType, ModelType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor, nn};

/// Width and depth of the pyramid and heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Capacity {
    /// 128 channels, four convolutions per head.
    #[default]
    High,
    /// 64 channels, two convolutions per head.
    Medium,
}

impl Capacity {
    /// (channels, convolutions per head).
    pub fn size(self) -> (i64, usize) {
        match self {
            Self::High => (128, 4),
            Self::Medium => (64, 2),
        }
    }
}

/// The box loss of rotated detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RotatedBoxLoss {
    /// L1 on the deltas, the angle as (sin kΔ, cos kΔ) (`loss_box` + `loss_angle`).
    #[default]
    Periodic,
    /// The Kullback–Leibler divergence of the boxes' Gaussians (Yang et al. 2021), 1 − 1/(1 + ln(1 + KLD))
    /// (`loss_box`); it is symmetric under a half turn, so with a front the direction keeps its periodic
    /// term (`loss_angle`, k = 1).
    Kld,
    /// ProbIoU (Llerena et al. 2021, YOLO-OBB's box loss): the Hellinger distance
    /// √(1 − e^(−B)) of the boxes' Gaussians, B their Bhattacharyya distance (`loss_box`); like `kld`,
    /// with a front the direction keeps its periodic term.
    #[serde(rename = "probiou")]
    ProbIou,
}

/// The box loss of axis-aligned detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BoxLoss {
    /// L1 on the deltas (torchvision's RetinaNet default).
    #[default]
    L1,
    /// 1 − GIoU of the decoded box and its ground truth (Rezatofighi et al. 2019; torchvision's
    /// `bbox_reg_loss_type = "giou"`).
    Giou,
}

/// How anchors are matched to ground-truth boxes in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AnchorAssignment {
    /// torchvision's RetinaNet matcher: IoU ≥ 0.5 positive, < 0.4 negative, each box's best anchors
    /// positive ([`assign::match_anchors`]).
    #[default]
    Iou,
    /// ATSS: per box and level the 3 · anchors-per-position anchors nearest its centre are candidates,
    /// the positives those above the candidates' IoU mean + standard deviation
    /// ([`assign::match_anchors_atss`]).
    Atss,
}

/// The architecture of a detector: fixed at creation (SPEC §5.2 OD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Number of classes.
    pub num_classes: i64,
    /// rectangle1 (axis-aligned) or rectangle2 (rotated) boxes.
    pub instance_type: InstanceType,
    /// Finest pyramid level (stride 2^min_level).
    pub min_level: i64,
    /// Coarsest pyramid level.
    pub max_level: i64,
    /// Anchor sizes per level: 4 · 2^level · 2^(i / n), i < n.
    pub anchor_num_subscales: usize,
    /// Anchor aspect ratios (height / width).
    pub anchor_aspect_ratios: Vec<f64>,
    /// rectangle2: anchor angles (radians).
    pub anchor_angles: Vec<f64>,
    /// Width and depth of the heads.
    pub capacity: Capacity,
    /// rectangle2: boxes have no front (φ modulo π).
    pub ignore_direction: bool,
    /// rectangle2: class indices whose boxes are axis-parallel (no angle loss; results axis-parallel).
    pub class_indices_no_orientation: Vec<i64>,
    /// rectangle2: the box loss.
    #[serde(default)]
    pub rotated_box_loss: RotatedBoxLoss,
    /// rectangle1: the box loss.
    #[serde(default)]
    pub box_loss: BoxLoss,
    /// The training targets' anchor assignment (files without it: `iou`).
    #[serde(default)]
    pub anchor_assignment: AnchorAssignment,
    /// The factor the backbone's maps are multiplied by before the pyramid's laterals (files without
    /// it: 1): pretrained backbones whose maps are an order of magnitude larger than MobileNetV2's
    /// (EfficientNet-Lite's, SqueezeNet's) enter the pyramid at the scale its initialisation expects.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub feature_scale: f64,
}

fn one() -> f64 {
    1.0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

impl DetectionConfig {
    /// HALCON's defaults for `num_classes` classes: levels 2 … 4, 3 subscales, aspect ratios 1, 2, 0.5,
    /// angle 0, capacity high.
    pub fn new(num_classes: i64, instance_type: InstanceType) -> Self {
        Self {
            num_classes,
            instance_type,
            min_level: 2,
            max_level: 4,
            anchor_num_subscales: 3,
            anchor_aspect_ratios: vec![1.0, 2.0, 0.5],
            anchor_angles: vec![0.0],
            capacity: Capacity::High,
            ignore_direction: false,
            class_indices_no_orientation: Vec::new(),
            rotated_box_loss: RotatedBoxLoss::Periodic,
            box_loss: BoxLoss::L1,
            anchor_assignment: AnchorAssignment::Iou,
            feature_scale: 1.0,
        }
    }

    /// Anchors per position.
    pub fn anchors_per_position(&self) -> i64 {
        let angles =
            if self.instance_type == InstanceType::Rectangle2 { self.anchor_angles.len() } else { 1 };
        (self.anchor_num_subscales * self.anchor_aspect_ratios.len() * angles) as i64
    }

    /// Box deltas per anchor: 4 (rectangle1) or 6 (rectangle2: and sin, cos of the angle).
    pub fn box_dims(&self) -> i64 {
        if self.instance_type == InstanceType::Rectangle2 { 6 } else { 4 }
    }

    /// Checks the values against each other and against the backbone's levels.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key.
    pub fn validate(&self, levels: &[Level]) -> Result<()> {
        let bad =
            |key, value: String, expected| Error::InvalidConfig { config: "detection", key, value, expected };
        if self.num_classes < 1 {
            return Err(bad("num_classes", self.num_classes.to_string(), "at least 1"));
        }
        let finest = levels.first().map_or(1, |l| l.stride);
        if self.min_level < 0 || (1i64 << self.min_level.clamp(0, 30)) < finest {
            return Err(bad(
                "min_level",
                self.min_level.to_string(),
                "a level the backbone has: 2^min_level at least its finest stride",
            ));
        }
        if self.max_level < self.min_level || self.max_level > 10 {
            return Err(bad("max_level", self.max_level.to_string(), "in min_level … 10"));
        }
        if !(self.feature_scale > 0.0 && self.feature_scale.is_finite()) {
            return Err(bad("feature_scale", self.feature_scale.to_string(), "a positive number"));
        }
        if self.anchor_num_subscales == 0 || self.anchor_num_subscales > 8 {
            return Err(bad("anchor_num_subscales", self.anchor_num_subscales.to_string(), "in 1 … 8"));
        }
        if self.anchor_aspect_ratios.is_empty()
            || self.anchor_aspect_ratios.iter().any(|&r| !(r > 0.0 && r.is_finite()))
        {
            return Err(bad(
                "anchor_aspect_ratios",
                format!("{:?}", self.anchor_aspect_ratios),
                "a non-empty list of positive numbers",
            ));
        }
        if self.anchor_angles.is_empty() || self.anchor_angles.iter().any(|a| !a.is_finite()) {
            return Err(bad(
                "anchor_angles",
                format!("{:?}", self.anchor_angles),
                "a non-empty list of angles",
            ));
        }
        if self.instance_type == InstanceType::Rectangle2 && self.box_loss != BoxLoss::L1 {
            return Err(bad(
                "box_loss",
                format!("{:?}", self.box_loss).to_lowercase(),
                "l1 for rectangle2 (rotated boxes choose rotated_box_loss)",
            ));
        }
        if let Some(c) = self.class_indices_no_orientation.iter().find(|&&c| c < 0 || c >= self.num_classes) {
            return Err(bad("class_ids_no_orientation", c.to_string(), "classes of the model"));
        }
        Ok(())
    }
}

/// Post-processing and loss weights: settable after creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionParams {
    /// Detections per image kept (default 100).
    pub max_num_detections: usize,
    /// NMS IoU within a class (default 0.5).
    pub max_overlap: f64,
    /// NMS IoU across classes (default 1.0 = off).
    pub max_overlap_class_agnostic: f64,
    /// Lowest confidence kept (default 0.5).
    pub min_confidence: f64,
    /// Weight of the box (and angle) loss (default 1).
    pub bbox_heads_weight: f64,
    /// Weight of the classification loss (default 1).
    pub class_heads_weight: f64,
    /// Views fused at inference (default none; not a HALCON parameter).
    #[serde(default)]
    pub test_time_augmentation: tta::TestTimeAugmentation,
}

impl Default for DetectionParams {
    fn default() -> Self {
        Self {
            max_num_detections: 100,
            max_overlap: 0.5,
            max_overlap_class_agnostic: 1.0,
            min_confidence: 0.5,
            bbox_heads_weight: 1.0,
            class_heads_weight: 1.0,
            test_time_augmentation: tta::TestTimeAugmentation::None,
        }
    }
}

#[derive(Debug)]
struct Head {
    convs: Vec<nn::Conv2D>,
    out: nn::Conv2D,
}

impl Head {
    fn new(p: &nn::Path, channels: i64, depth: usize, outputs: i64, bias: f64) -> Self {
        let cfg = |b: f64| nn::ConvConfig {
            padding: 1,
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            bs_init: nn::Init::Const(b),
            ..Default::default()
        };
        // The hidden convolutions keep the signal's scale (He: σ = √(2 / fan_in)); torchvision's σ = 0.01
        // on every layer shrinks it about fourfold per layer, and the 4-deep heads of capacity high sat on a
        // plateau (constructed scenes: 50 steps without progress, train mean_ap 0.795 after 400; deepforest:
        // nothing found after 30 epochs). With He: 0.981 on the scenes, and stardist's rotated AP@0.5 0.853
        // instead of 0.749 (capacity medium). The output layers keep σ = 0.01 and the prior bias.
        let hidden = nn::ConvConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: (2.0 / (9.0 * channels as f64)).sqrt() },
            ..cfg(0.0)
        };
        Self {
            convs: (0..depth)
                .map(|i| nn::conv2d(p / format!("conv{i}"), channels, channels, 3, hidden))
                .collect(),
            out: nn::conv2d(p / "out", channels, outputs, 3, cfg(bias)),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = x.shallow_clone();
        for c in &self.convs {
            // In place: a convolution's backward needs its input, not its output.
            y = y.apply(c).relu_();
        }
        y.apply(&self.out)
    }
}

/// A built detector; see the module documentation.
#[derive(Debug)]
pub struct DetectionNet {
    backbone: Box<dyn Backbone>,
    config: DetectionConfig,
    /// Post-processing and loss weights.
    pub params: DetectionParams,
    /// Index into the backbone's levels for each pyramid level it provides.
    taps: Vec<(i64, usize)>,
    laterals: Vec<nn::Conv2D>,
    outputs: Vec<nn::Conv2D>,
    extras: Vec<nn::Conv2D>,
    class_head: Head,
    box_head: Head,
    frozen: bool,
    anchor_cache: Mutex<AnchorCache>,
}

/// Anchors by the pyramid's level shapes.
type AnchorCache = HashMap<Vec<(i64, i64)>, std::sync::Arc<Anchors>>;

/// The anchors of one input size, pixel-edge.
#[derive(Debug)]
struct Anchors {
    r1: Vec<[f32; 4]>,
    r2: Vec<anchors::RotatedAnchor>,
    /// Anchors per level.
    counts: Vec<usize>,
}

impl DetectionNet {
    /// Builds the pyramid and heads under `path` (`neck.…`, `det_head.…`) on `backbone`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a configuration that does not fit the backbone.
    pub fn new(
        backbone: Box<dyn Backbone>,
        path: &nn::Path,
        config: DetectionConfig,
        params: DetectionParams,
    ) -> Result<Self> {
        let levels = backbone.levels();
        config.validate(&levels)?;
        let (channels, depth) = config.capacity.size();
        let neck = path / "neck";
        let mut taps = Vec::new();
        let mut laterals = Vec::new();
        let mut outputs = Vec::new();
        let mut extras = Vec::new();
        let coarsest = levels.last().map_or(1, |l| l.stride);
        for level in config.min_level..=config.max_level {
            let stride = 1i64 << level;
            if stride <= coarsest {
                let (i, l) =
                    levels.iter().enumerate().find(|(_, l)| l.stride == stride).ok_or_else(|| {
                        Error::InvalidConfig {
                            config: "detection",
                            key: "min_level",
                            value: level.to_string(),
                            expected: "levels the backbone has",
                        }
                    })?;
                taps.push((level, i));
                laterals.push(nn::conv2d(
                    &neck / format!("lateral{level}"),
                    l.channels,
                    channels,
                    1,
                    Default::default(),
                ));
                outputs.push(nn::conv2d(
                    &neck / format!("output{level}"),
                    channels,
                    channels,
                    3,
                    nn::ConvConfig { padding: 1, ..Default::default() },
                ));
            } else {
                // From the coarsest backbone map (the first extra level) or the previous extra level.
                let cin = if extras.is_empty() && taps.is_empty() {
                    levels.last().map_or(channels, |l| l.channels)
                } else {
                    channels
                };
                extras.push(nn::conv2d(
                    &neck / format!("extra{level}"),
                    cin,
                    channels,
                    3,
                    nn::ConvConfig { stride: 2, padding: 1, ..Default::default() },
                ));
            }
        }
        let a = config.anchors_per_position();
        let head = path / "det_head";
        let prior = -((1.0 - 0.01f64) / 0.01).ln();
        let class_head = Head::new(&(&head / "class"), channels, depth, a * config.num_classes, prior);
        let box_head = Head::new(&(&head / "box"), channels, depth, a * config.box_dims(), 0.0);
        Ok(Self {
            backbone,
            config,
            params,
            taps,
            laterals,
            outputs,
            extras,
            class_head,
            box_head,
            frozen: false,
            anchor_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The architecture.
    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    /// A backbone map times [`DetectionConfig::feature_scale`] (the map itself at 1).
    fn scaled(&self, f: &Tensor) -> Tensor {
        if self.config.feature_scale == 1.0 { f.shallow_clone() } else { f * self.config.feature_scale }
    }

    /// The pyramid maps, finest first.
    fn pyramid(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        // Only the backbone levels up to the coarsest tap are computed (MobileNetV2 under a pyramid on
        // strides 4–16 skips its stride-32 stage and its 1280-channel convolution).
        let count = self.taps.iter().map(|&(_, i)| i + 1).max().unwrap_or(usize::MAX);
        let feats = if train && self.frozen {
            tch::no_grad(|| self.backbone.forward_first_levels(x, false, count))
        } else {
            self.backbone.forward_first_levels(x, train, count)
        };
        // Top-down over the tapped levels.
        let mut out: Vec<Tensor> = Vec::with_capacity(self.taps.len() + self.extras.len());
        let mut top: Option<Tensor> = None;
        for (j, &(_, i)) in self.taps.iter().enumerate().rev() {
            let lat = self.scaled(&feats[i]).apply(&self.laterals[j]);
            let merged = match &top {
                Some(t) => {
                    let s = lat.size();
                    lat + t.upsample_nearest2d([s[2], s[3]], None, None)
                }
                None => lat,
            };
            out.push(merged.apply(&self.outputs[j]));
            top = Some(merged);
        }
        out.reverse();
        let mut prev = match out.last() {
            Some(p) => p.shallow_clone(),
            None => feats.last().map_or_else(|| x.shallow_clone(), |f| self.scaled(f)),
        };
        for (k, e) in self.extras.iter().enumerate() {
            let input = if k == 0 { prev } else { prev.relu() };
            prev = input.apply(e);
            out.push(prev.shallow_clone());
        }
        out
    }

    /// The anchors of an input whose pyramid levels have `level_shapes` (as in
    /// [`Outputs::Detection`]), for [`DetectionNet::decode_all`]: `[M, 4]` pixel-edge `x1, y1, x2, y2`, or
    /// rotated `[M, 5]` `cx, cy, w, h, θ`. Made from host data: create it outside a traced graph.
    pub fn anchor_tensor(&self, level_shapes: &[(i64, i64)]) -> Result<Tensor> {
        let a = self.anchors(level_shapes);
        Ok(if self.config.instance_type == InstanceType::Rectangle2 {
            let flat: Vec<f32> = a.r2.iter().flatten().copied().collect();
            Tensor::f_from_slice(&flat)?.f_reshape([-1, 5])?
        } else {
            let flat: Vec<f32> = a.r1.iter().flatten().copied().collect();
            Tensor::f_from_slice(&flat)?.f_reshape([-1, 4])?
        })
    }

    /// Every anchor's class scores `[N, M, K]` (sigmoid) and decoded box in HALCON's pixel-centre
    /// coordinates of the network input, in tensor operations (traceable): `[N, M, 4]` `row1, col1,
    /// row2, col2` clipped to the input, or `[N, M, 5]` `row, col, phi, length1, length2` with φ
    /// normalised as the model's results (into (−π/2, π/2] without a front). What
    /// [`Network::postprocess`] then does on the host: per pyramid level the 1000 best scores ≥
    /// `min_confidence`, rotated boxes whose centre leaves the input dropped, axis-parallel boxes for
    /// the classes without orientation, NMS (`max_overlap`, `max_overlap_class_agnostic`,
    /// `max_num_detections`).
    ///
    /// # Errors
    /// [`Error::Targets`] for outputs of another method or anchors of another input size.
    pub fn decode_all(&self, outputs: &Outputs, anchors: &Tensor) -> Result<(Tensor, Tensor)> {
        let Outputs::Detection { class_logits, box_deltas, image_size, .. } = outputs else {
            return Err(wrong_targets("detection decoding", "detection outputs"));
        };
        let m = class_logits.size()[1];
        let rotated = self.rotated();
        if anchors.size() != [m, if rotated { 5 } else { 4 }] {
            return Err(Error::Targets(format!("{:?} anchors for {m} anchor outputs", anchors.size())));
        }
        let scores = class_logits.sigmoid();
        let d = box_deltas.to_kind(Kind::Float);
        let a = anchors.to_device(d.device()).unsqueeze(0);
        let g = |t: &Tensor, i: i64| t.select(-1, i);
        let (h, w) = (image_size.0 as f64, image_size.1 as f64);
        let boxes = if rotated {
            let b = decode_rotated_t(&d, &a, self.config.ignore_direction);
            let (half, period) = if self.config.ignore_direction {
                (std::f64::consts::FRAC_PI_2, std::f64::consts::PI)
            } else {
                (std::f64::consts::PI, 2.0 * std::f64::consts::PI)
            };
            // Into (−half, half]: θ − period · ⌈(θ − half) / period⌉.
            let t = g(&b, 4);
            let phi = &t - ((&t - half) / period).ceil() * period;
            Tensor::stack(&[g(&b, 1) - 0.5, g(&b, 0) - 0.5, phi, g(&b, 2) / 2.0, g(&b, 3) / 2.0], -1)
        } else {
            // As box_coder::decode, then pixel-edge → pixel-centre, clipped to the input.
            let (aw, ah) = (g(&a, 2) - g(&a, 0), g(&a, 3) - g(&a, 1));
            let (cx, cy) = (g(&a, 0) + &aw * 0.5, g(&a, 1) + &ah * 0.5);
            let (px, py) = (g(&d, 0) * &aw + cx, g(&d, 1) * &ah + cy);
            let clip = f64::from(box_coder::BBOX_XFORM_CLIP);
            let hw = g(&d, 2).clamp_max(clip).exp() * &aw * 0.5;
            let hh = g(&d, 3).clamp_max(clip).exp() * &ah * 0.5;
            let c1 = (&px - &hw - 0.5).clamp_min(-0.5);
            let r1 = (&py - &hh - 0.5).clamp_min(-0.5);
            let c2 = (&px + &hw - 0.5).clamp_max(w - 0.5);
            let r2 = (&py + &hh - 0.5).clamp_max(h - 0.5);
            Tensor::stack(&[r1, c1, r2, c2], -1)
        };
        Ok((scores, boxes))
    }

    fn anchors(&self, shapes: &[(i64, i64)]) -> std::sync::Arc<Anchors> {
        let mut cache = self.anchor_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(shapes.to_vec())
            .or_insert_with(|| {
                let c = &self.config;
                let mut r1 = Vec::new();
                let mut r2 = Vec::new();
                let mut counts = Vec::new();
                for (level, &(h, w)) in (c.min_level..=c.max_level).zip(shapes) {
                    let base = anchors::base_anchors(
                        &anchors::level_sizes(level, c.anchor_num_subscales),
                        &c.anchor_aspect_ratios,
                    );
                    let grid = anchors::grid_anchors(&base, h, w, 1 << level);
                    if c.instance_type == InstanceType::Rectangle2 {
                        let rot = anchors::rotated(&grid, &c.anchor_angles);
                        counts.push(rot.len());
                        // Matching uses the rotated anchors' enclosing axis-parallel boxes.
                        r1.extend(rot.iter().map(|a| enclosing(&a.map(f64::from))));
                        r2.extend(rot);
                    } else {
                        counts.push(grid.len());
                        r1.extend(grid);
                    }
                }
                std::sync::Arc::new(Anchors { r1, r2, counts })
            })
            .clone()
    }

    /// Per image: anchor labels (class index, [`assign::BACKGROUND`], [`assign::IGNORE`]), box targets
    /// (box_dims per anchor, zero for non-positives), angle weights and (rotated) the matched boxes
    /// `(cx, cy, w, h, θ)` per anchor.
    fn assign(&self, anchors: &Anchors, image: &ImageBoxes) -> Result<Assigned> {
        let c = &self.config;
        let d = c.box_dims() as usize;
        let m = anchors.r1.len();
        let (edge_r1, edge_r2): (Vec<[f32; 4]>, Vec<box_coder::RotatedBox>) =
            match (&image.boxes, c.instance_type) {
                (Boxes::Rectangle1(b), InstanceType::Rectangle1) => (
                    b.iter()
                        .map(|r| {
                            [r.col1() + 0.5, r.row1() + 0.5, r.col2() + 0.5, r.row2() + 0.5].map(|v| v as f32)
                        })
                        .collect(),
                    Vec::new(),
                ),
                (Boxes::Rectangle2(b), InstanceType::Rectangle2) => {
                    let rot: Vec<box_coder::RotatedBox> = b
                        .iter()
                        .map(|r| {
                            [r.col() + 0.5, r.row() + 0.5, 2.0 * r.length1(), 2.0 * r.length2(), r.phi()]
                        })
                        .collect();
                    (rot.iter().map(enclosing).collect(), rot)
                }
                (b, t) => {
                    return Err(Error::Targets(format!(
                        "{} boxes for a {} detector",
                        match b {
                            Boxes::Rectangle1(_) => "rectangle1",
                            Boxes::Rectangle2(_) => "rectangle2",
                        },
                        match t {
                            InstanceType::Rectangle1 => "rectangle1",
                            InstanceType::Rectangle2 => "rectangle2",
                        }
                    )));
                }
            };
        let matches = match c.anchor_assignment {
            AnchorAssignment::Iou => assign::match_anchors(&anchors.r1, &edge_r1, &image.ignore, 0.5, 0.4),
            AnchorAssignment::Atss => {
                let k = 3 * c.anchors_per_position() as usize;
                assign::match_anchors_atss(&anchors.r1, &anchors.counts, &edge_r1, &image.ignore, k)
            }
        };
        let mut labels = vec![assign::BACKGROUND; m];
        let mut targets = vec![0f32; m * d];
        let mut angle_weights = vec![0f32; m];
        // The matched boxes themselves only feed the Gaussian loss.
        let gaussian =
            c.instance_type == InstanceType::Rectangle2 && c.rotated_box_loss != RotatedBoxLoss::Periodic;
        let mut boxes = if gaussian { vec![0f32; m * 5] } else { Vec::new() };
        for (i, &g) in matches.iter().enumerate() {
            if g < 0 {
                labels[i] = g;
                continue;
            }
            let g = g as usize;
            let class = image.class_indices[g];
            labels[i] = class;
            let t = &mut targets[i * d..(i + 1) * d];
            if c.instance_type == InstanceType::Rectangle2 {
                t.copy_from_slice(&box_coder::encode_rotated(
                    &edge_r2[g],
                    &anchors.r2[i],
                    c.ignore_direction,
                ));
                angle_weights[i] = if c.class_indices_no_orientation.contains(&class) { 0.0 } else { 1.0 };
                if gaussian {
                    let gb =
                        box_coder::canonical(&edge_r2[g], f64::from(anchors.r2[i][4]), c.ignore_direction);
                    boxes[i * 5..(i + 1) * 5].copy_from_slice(&gb.map(|v| v as f32));
                }
            } else {
                t.copy_from_slice(&box_coder::encode(&edge_r1[g], &anchors.r1[i]));
            }
        }
        Ok(Assigned { labels, targets, angle_weights, boxes })
    }
}

/// What [`DetectionNet::assign`] gives per anchor of one image.
struct Assigned {
    labels: Vec<i64>,
    targets: Vec<f32>,
    angle_weights: Vec<f32>,
    boxes: Vec<f32>,
}

/// Rotated boxes `(cx, cy, w, h, θ)` `[…, 5]` of deltas on anchors (as [`box_coder::decode_rotated`], in
/// tensors so that the loss has gradients).
fn decode_rotated_t(d: &Tensor, a: &Tensor, ignore_direction: bool) -> Tensor {
    let g = |t: &Tensor, i: i64| t.select(-1, i);
    let (s, c) = (g(a, 4).sin(), g(a, 4).cos());
    let (u, v) = (g(d, 0) * g(a, 2), g(d, 1) * g(a, 3));
    let clip = f64::from(box_coder::BBOX_XFORM_CLIP);
    let k = if ignore_direction { 2.0 } else { 1.0 };
    // Width axis (cos, −sin), height axis (−sin, −cos) in (x, y).
    let cx = g(a, 0) + &u * &c - &v * &s;
    let cy = g(a, 1) - &u * &s - &v * &c;
    let w = g(d, 2).clamp_max(clip).exp() * g(a, 2);
    let h = g(d, 3).clamp_max(clip).exp() * g(a, 3);
    let t = g(a, 4) + g(d, 4).atan2(&g(d, 5)) / k;
    Tensor::stack(&[cx, cy, w, h, t], -1)
}

/// 1 − GIoU of the boxes that deltas `p` and `t` `[…, 4]` decode to on one anchor, `[…]`. IoU, the
/// enclosing box and so GIoU are unchanged by moving and by scaling each axis, so the anchor drops out:
/// both boxes are decoded on the unit anchor at the origin (the predicted sizes clipped as in
/// [`box_coder::decode`]).
pub fn giou_loss_of_deltas(p: &Tensor, t: &Tensor) -> Tensor {
    let clip = f64::from(box_coder::BBOX_XFORM_CLIP);
    let sides = |d: &Tensor, clipped: bool| {
        let size = |i: i64| {
            let v = d.select(-1, i);
            (if clipped { v.clamp_max(clip) } else { v }).exp() * 0.5
        };
        let (hw, hh) = (size(2), size(3));
        let (x, y) = (d.select(-1, 0), d.select(-1, 1));
        (&x - &hw, &y - &hh, &x + &hw, &y + &hh)
    };
    let (px1, py1, px2, py2) = sides(p, true);
    let (tx1, ty1, tx2, ty2) = sides(t, false);
    let area = |x1: &Tensor, y1: &Tensor, x2: &Tensor, y2: &Tensor| (x2 - x1) * (y2 - y1);
    let iw = (px2.minimum(&tx2) - px1.maximum(&tx1)).clamp_min(0.0);
    let ih = (py2.minimum(&ty2) - py1.maximum(&ty1)).clamp_min(0.0);
    let inter = iw * ih;
    let union = area(&px1, &py1, &px2, &py2) + area(&tx1, &ty1, &tx2, &ty2) - &inter;
    let eps = 1e-7;
    let iou = &inter / (&union + eps);
    let enclosing = (px2.maximum(&tx2) - px1.minimum(&tx1)) * (py2.maximum(&ty2) - py1.minimum(&ty1));
    let giou = iou - (&enclosing - &union) / (enclosing + eps);
    giou.neg() + 1.0
}

/// The covariance (xx, xy, yy) of the Gaussian of rotated boxes `[…, 5]`: R diag(w²/4, h²/4) Rᵀ.
fn box_covariance(b: &Tensor) -> (Tensor, Tensor, Tensor) {
    let g = |i: i64| b.select(-1, i);
    let (s, c) = (g(4).sin(), g(4).cos());
    let (a2, b2) = ((g(2) / 2.0).square(), (g(3) / 2.0).square());
    // e1 = (c, −s), e2 = (−s, −c): Σ = a² e1 e1ᵀ + b² e2 e2ᵀ.
    let xx = &a2 * c.square() + &b2 * s.square();
    let xy = -(&a2 * &c * &s) + &b2 * &s * &c;
    let yy = &a2 * s.square() + &b2 * c.square();
    (xx, xy, yy)
}

/// KLD(N_p ‖ N_t) of the Gaussians of rotated boxes `[…, 5]` (mean the centre, covariance
/// [`box_covariance`]).
fn gaussian_kld(p: &Tensor, t: &Tensor) -> Tensor {
    let cov = box_covariance;
    let (pa, pb, pc) = cov(p);
    let (ta, tb, tc) = cov(t);
    let det_t = &ta * &tc - tb.square();
    let det_p = &pa * &pc - pb.square();
    let trace = (&tc * &pa - 2.0 * &tb * &pb + &ta * &pc) / &det_t;
    let dx = p.select(-1, 0) - t.select(-1, 0);
    let dy = p.select(-1, 1) - t.select(-1, 1);
    let maha = (&tc * dx.square() - 2.0 * &tb * &dx * &dy + &ta * dy.square()) / &det_t;
    0.5 * (trace + maha - 2.0 + (det_t / det_p).log())
}

/// ProbIoU's loss of rotated boxes `[…, 5]`: the Hellinger distance √(1 − e^(−B) + ε) of their
/// Gaussians, B = ⅛ Δᵀ Σ⁻¹ Δ + ½ ln(det Σ / √(det Σ_p det Σ_t)) with Σ = (Σ_p + Σ_t) / 2 (Llerena et al.;
/// ε = 1e-7 as Ultralytics, so the square root has a gradient at equal boxes). In [0, 1).
fn gaussian_probiou_loss(p: &Tensor, t: &Tensor) -> Tensor {
    let (pa, pb, pc) = box_covariance(p);
    let (ta, tb, tc) = box_covariance(t);
    let (a, b, c) = ((&pa + &ta) / 2.0, (&pb + &tb) / 2.0, (&pc + &tc) / 2.0);
    let det = &a * &c - b.square();
    let det_p = (&pa * &pc - pb.square()).clamp_min(0.0);
    let det_t = (&ta * &tc - tb.square()).clamp_min(0.0);
    let dx = p.select(-1, 0) - t.select(-1, 0);
    let dy = p.select(-1, 1) - t.select(-1, 1);
    let maha: Tensor = (&c * dx.square() - 2.0 * &b * &dx * &dy + &a * dy.square()) / &det;
    let ratio: Tensor = &det / ((det_p * det_t).sqrt() + 1e-7);
    let bd: Tensor = (maha / 8.0 + ratio.log() * 0.5).clamp(1e-7, 100.0);
    let hellinger: Tensor = bd.neg().exp().neg() + (1.0 + 1e-7);
    hellinger.sqrt()
}

/// The enclosing axis-parallel pixel-edge box of a rotated box `(cx, cy, w, h, θ)`.
fn enclosing(b: &box_coder::RotatedBox) -> [f32; 4] {
    let (s, c) = b[4].sin_cos();
    let hw = 0.5 * (b[2] * c.abs() + b[3] * s.abs());
    let hh = 0.5 * (b[2] * s.abs() + b[3] * c.abs());
    [b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh].map(|v| v as f32)
}

/// torchvision's `sigmoid_focal_loss` with reduction "none".
pub fn sigmoid_focal_loss(inputs: &Tensor, targets: &Tensor, alpha: f64, gamma: f64) -> Tensor {
    let p = inputs.sigmoid();
    let ce = inputs.binary_cross_entropy_with_logits::<Tensor>(targets, None, None, tch::Reduction::None);
    let p_t: Tensor = &p * targets + (1.0 - &p) * (1.0 - targets);
    let modulating: Tensor = (1f64 - &p_t).pow_tensor_scalar(gamma);
    let loss = ce * modulating;
    if alpha >= 0.0 {
        let alpha_t: Tensor = alpha * targets + (1.0 - alpha) * (1.0 - targets);
        alpha_t * loss
    } else {
        loss
    }
}

impl DetectionNet {
    /// Each image's detections after NMS, in the coordinates of `maps`.
    fn detections(&self, outputs: &Outputs, maps: &[ImageMap]) -> Result<Vec<ImageDetections>> {
        let Outputs::Detection { class_logits, box_deltas, level_shapes, image_size } = outputs else {
            return Err(wrong_targets("detection post-processing", "detection outputs"));
        };
        let anchors = self.anchors(level_shapes);
        let size = class_logits.size();
        let (n, m, k) = (size[0] as usize, size[1] as usize, size[2] as usize);
        if n != maps.len() || k as i64 != self.config.num_classes || m != anchors.r1.len() {
            return Err(Error::Targets(format!(
                "{size:?} outputs for {} images, {} classes and {} anchors",
                maps.len(),
                self.config.num_classes,
                anchors.r1.len()
            )));
        }
        let scores: Vec<f32> = Vec::try_from(class_logits.sigmoid().to_device(Device::Cpu).reshape([-1]))?;
        let deltas: Vec<f32> =
            Vec::try_from(box_deltas.to_kind(Kind::Float).to_device(Device::Cpu).reshape([-1]))?;
        let d = self.config.box_dims() as usize;
        let p = &self.params;
        let (h, w) = (image_size.0 as f64, image_size.1 as f64);
        let rotated = self.rotated();
        let mut images = Vec::with_capacity(n);
        for (img, map) in maps.iter().enumerate() {
            let s = &scores[img * m * k..(img + 1) * m * k];
            // Candidates per level: score ≥ min_confidence, the 1000 best.
            let mut candidates: Vec<(usize, usize, f32)> = Vec::new();
            let mut start = 0;
            for &count in &anchors.counts {
                let mut level: Vec<(usize, usize, f32)> = (start * k..(start + count) * k)
                    .filter(|&j| f64::from(s[j]) >= p.min_confidence)
                    .map(|j| (j / k, j % k, s[j]))
                    .collect();
                level.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
                level.truncate(1000);
                candidates.extend(level);
                start += count;
            }
            let delta = |a: usize| &deltas[(img * m + a) * d..(img * m + a + 1) * d];
            images.push(if rotated {
                let dets: Vec<dl_core::Detection<Rect2>> = candidates
                    .iter()
                    .filter_map(|&(a, c, score)| {
                        let dd: [f32; 6] = delta(a).try_into().ok()?;
                        let b = box_coder::decode_rotated(&dd, &anchors.r2[a], self.config.ignore_direction);
                        // As in preprocessing, a rotated box whose centre leaves the image is dropped.
                        if !(b[0] > 0.0 && b[0] < w && b[1] > 0.0 && b[1] < h) {
                            return None;
                        }
                        let bbox = Rect2::new(b[1] - 0.5, b[0] - 0.5, b[4], b[2] / 2.0, b[3] / 2.0).ok()?;
                        // NMS runs on the boxes as the user gets them: an anisotropic map back refits
                        // rotated boxes, which changes their overlaps.
                        let bbox = map.rect2_backward(&self.fix_r2(bbox, c));
                        Some(dl_core::Detection { class: c as u32, score: f64::from(score), bbox })
                    })
                    .collect();
                ImageDetections::Rectangle2(self.suppress(&dets))
            } else {
                let dets: Vec<dl_core::Detection<Rect1>> = candidates
                    .iter()
                    .filter_map(|&(a, c, score)| {
                        let dd: [f32; 4] = delta(a).try_into().ok()?;
                        let b = box_coder::decode(&dd, &anchors.r1[a]).map(f64::from);
                        // Pixel-edge → pixel-centre, clipped to the network input.
                        let (c1, r1) = ((b[0] - 0.5).max(-0.5), (b[1] - 0.5).max(-0.5));
                        let (c2, r2) = ((b[2] - 0.5).min(w - 0.5), (b[3] - 0.5).min(h - 0.5));
                        let bbox = map.rect1_backward(&Rect1::new(r1, c1, r2, c2).ok()?);
                        Some(dl_core::Detection { class: c as u32, score: f64::from(score), bbox })
                    })
                    .collect();
                ImageDetections::Rectangle1(self.suppress(&dets))
            });
        }
        Ok(images)
    }

    fn check_classes(&self, classes: &Classes) -> Result<()> {
        if classes.ids.len() as i64 != self.config.num_classes || classes.names.len() != classes.ids.len() {
            return Err(Error::Targets(format!(
                "{} class ids and {} names for a detector of {} classes",
                classes.ids.len(),
                classes.names.len(),
                self.config.num_classes
            )));
        }
        Ok(())
    }

    fn rotated(&self) -> bool {
        self.config.instance_type == InstanceType::Rectangle2
    }

    /// φ normalised as the model gives it (modulo π without direction); the box made axis-parallel for
    /// a class without orientation.
    fn fix_r2(&self, b: Rect2, class: usize) -> Rect2 {
        let phi = if self.config.ignore_direction {
            dl_core::rect2::normalize_phi_no_direction(b.phi())
        } else {
            dl_core::rect2::normalize_phi(b.phi())
        };
        let b = Rect2::new(b.row(), b.col(), phi, b.length1(), b.length2()).unwrap_or(b);
        if self.config.class_indices_no_orientation.contains(&(class as i64)) { b.axis_parallel() } else { b }
    }

    /// The boxes as the model gives them: without direction, each rotated box of a class with
    /// orientation long side first ([`Rect2::long_side_first`], the description of the datasets'
    /// minimum-area boxes). The network, or the fusion of turned views, can describe a near-square box
    /// with its lengths swapped — the same box, but φ off by π/2, which SoAP counts.
    fn described(&self, d: ImageDetections) -> ImageDetections {
        match d {
            ImageDetections::Rectangle2(mut dets) if self.config.ignore_direction => {
                for d in &mut dets {
                    if !self.config.class_indices_no_orientation.contains(&i64::from(d.class)) {
                        d.bbox = d.bbox.long_side_first();
                    }
                }
                ImageDetections::Rectangle2(dets)
            }
            other => other,
        }
    }

    /// NMS (`max_overlap`, `max_overlap_class_agnostic`) and `max_num_detections`: the kept detections.
    fn suppress<B: dl_core::Overlap + Copy>(
        &self,
        dets: &[dl_core::Detection<B>],
    ) -> Vec<dl_core::Detection<B>> {
        let p = &self.params;
        let kept = dl_core::nms(dets, p.max_overlap, p.max_overlap_class_agnostic, p.max_num_detections);
        kept.into_iter().map(|i| dets[i]).collect()
    }

    /// The detections of `views` views fused (`fuse_views` at [`tta::FUSION_IOU`]), those below
    /// `min_confidence` dropped, then NMS and `max_num_detections` as for one view.
    fn fuse(&self, all: ImageDetections, views: usize) -> ImageDetections {
        match all {
            ImageDetections::Rectangle1(d) => ImageDetections::Rectangle1(self.fuse_boxes(&d, views, false)),
            ImageDetections::Rectangle2(d) => {
                ImageDetections::Rectangle2(self.fuse_boxes(&d, views, self.config.ignore_direction))
            }
        }
    }

    fn fuse_boxes<B: dl_core::Fuse>(
        &self,
        dets: &[dl_core::Detection<B>],
        views: usize,
        ignore_direction: bool,
    ) -> Vec<dl_core::Detection<B>> {
        let mut f = dl_core::fuse_views(dets, views, tta::FUSION_IOU, ignore_direction);
        f.retain(|d| d.score >= self.params.min_confidence);
        self.suppress(&f)
    }
}

/// One image's detections (class indices into the model's classes), by descending score.
#[derive(Debug, Clone, PartialEq)]
enum ImageDetections {
    Rectangle1(Vec<dl_core::Detection<Rect1>>),
    Rectangle2(Vec<dl_core::Detection<Rect2>>),
}

impl ImageDetections {
    fn empty(rotated: bool) -> Self {
        if rotated { Self::Rectangle2(Vec::new()) } else { Self::Rectangle1(Vec::new()) }
    }

    /// Appends `other`'s detections with their boxes mapped by `r1` / `r2` (given box and class).
    fn extend_back(&mut self, other: Self, r1: impl Fn(&Rect1) -> Rect1, r2: impl Fn(&Rect2, u32) -> Rect2) {
        match (self, other) {
            (Self::Rectangle1(a), Self::Rectangle1(b)) => {
                a.extend(b.into_iter().map(|d| dl_core::Detection { bbox: r1(&d.bbox), ..d }));
            }
            (Self::Rectangle2(a), Self::Rectangle2(b)) => {
                a.extend(b.into_iter().map(|d| dl_core::Detection { bbox: r2(&d.bbox, d.class), ..d }));
            }
            _ => unreachable!("one detector gives one instance type"),
        }
    }

    /// The DLResult keys of SPEC §2.4, with class ids and names.
    fn into_result(self, classes: &Classes) -> DLResult {
        let mut r = DLResult::default();
        let (mut ids, mut names, mut conf) = (Vec::new(), Vec::new(), Vec::new());
        let mut class = |d_class: u32, score: f64| {
            ids.push(classes.ids[d_class as usize]);
            names.push(classes.names[d_class as usize].clone());
            conf.push(score);
        };
        match self {
            Self::Rectangle2(dets) => {
                let mut cols: [Vec<f64>; 5] = Default::default();
                for d in dets {
                    let b = &d.bbox;
                    for (col, v) in cols.iter_mut().zip([b.row(), b.col(), b.phi(), b.length1(), b.length2()])
                    {
                        col.push(v);
                    }
                    class(d.class, d.score);
                }
                let [a, b, c, e, f] = cols;
                (r.bbox_row, r.bbox_col, r.bbox_phi, r.bbox_length1, r.bbox_length2) =
                    (Some(a), Some(b), Some(c), Some(e), Some(f));
            }
            Self::Rectangle1(dets) => {
                let mut cols: [Vec<f64>; 4] = Default::default();
                for d in dets {
                    let b = &d.bbox;
                    for (col, v) in cols.iter_mut().zip([b.row1(), b.col1(), b.row2(), b.col2()]) {
                        col.push(v);
                    }
                    class(d.class, d.score);
                }
                let [a, b, c, e] = cols;
                (r.bbox_row1, r.bbox_col1, r.bbox_row2, r.bbox_col2) = (Some(a), Some(b), Some(c), Some(e));
            }
        }
        (r.bbox_class_id, r.bbox_class_name, r.bbox_confidence) = (Some(ids), Some(names), Some(conf));
        r
    }
}

impl Network for DetectionNet {
    fn model_type(&self) -> ModelType {
        ModelType::Detection
    }

    fn ignores_direction(&self) -> bool {
        self.rotated() && self.config.ignore_direction
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Outputs {
        let x = crate::device::channels_last(images);
        let size = images.size();
        let maps = self.pyramid(&x, train);
        let (k, d) = (self.config.num_classes, self.config.box_dims());
        let mut classes = Vec::with_capacity(maps.len());
        let mut boxes = Vec::with_capacity(maps.len());
        let mut shapes = Vec::with_capacity(maps.len());
        for m in &maps {
            let s = m.size();
            shapes.push((s[2], s[3]));
            // The batch as −1: a traced graph (the TorchScript export) takes any batch size.
            let count = s[2] * s[3] * self.config.anchors_per_position();
            classes.push(self.class_head.forward(m).permute([0, 2, 3, 1]).reshape([-1, count, k]));
            boxes.push(self.box_head.forward(m).permute([0, 2, 3, 1]).reshape([-1, count, d]));
        }
        Outputs::Detection {
            class_logits: Tensor::cat(&classes, 1),
            box_deltas: Tensor::cat(&boxes, 1),
            level_shapes: shapes,
            image_size: (size[2], size[3]),
        }
    }

    /// `loss_class` (focal, × class_heads_weight), `loss_box` (L1 on the deltas, × bbox_heads_weight)
    /// and for rectangle2 `loss_angle` (L1 on sin kΔ, cos kΔ, × bbox_heads_weight), each summed and
    /// divided by the number of positive anchors in the batch (at least 1).
    fn loss(&self, outputs: &Outputs, targets: &Targets) -> Result<Losses> {
        let Outputs::Detection { class_logits, box_deltas, level_shapes, .. } = outputs else {
            return Err(wrong_targets("detection loss", "detection outputs"));
        };
        let Targets::Detection(images) = targets else {
            return Err(wrong_targets("detection loss", "boxes per image"));
        };
        let anchors = self.anchors(level_shapes);
        let device = class_logits.device();
        let d = self.config.box_dims() as usize;
        let (mut labels, mut box_t, mut angle_w, mut gt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for image in images {
            let a = self.assign(&anchors, image)?;
            labels.extend(a.labels);
            box_t.extend(a.targets);
            angle_w.extend(a.angle_weights);
            gt.extend(a.boxes);
        }
        let n = images.len() as i64;
        let m = anchors.r1.len() as i64;
        if class_logits.size()[..2] != [n, m] {
            return Err(Error::Targets(format!(
                "{:?} outputs for {n} images and {m} anchors",
                class_logits.size()
            )));
        }
        let labels = Tensor::f_from_slice(&labels)?.f_reshape([n, m])?.f_to_device(device)?;
        let positive = labels.ge(0);
        let valid = labels.ne(assign::IGNORE);
        let num_pos = positive.sum(Kind::Float).clamp_min(1.0);
        let k = self.config.num_classes;
        let posf = positive.to_kind(Kind::Float);
        let pos = posf.unsqueeze(-1);
        let onehot = labels.clamp_min(0).one_hot(k).to_kind(Kind::Float) * &pos;
        let focal = sigmoid_focal_loss(class_logits, &onehot, 0.25, 2.0);
        let loss_class = (focal * valid.unsqueeze(-1).to_kind(Kind::Float)).sum(Kind::Float) / &num_pos;
        let box_t = Tensor::f_from_slice(&box_t)?.f_reshape([n, m, d as i64])?.f_to_device(device)?;
        // L1 on the deltas `start .. start + len` of the positives (computed only where a loss uses it).
        let l1 = |start: i64, len: i64| {
            (box_deltas.narrow(2, start, len) - box_t.narrow(2, start, len)).abs() * &pos
        };
        let p = &self.params;
        let mut components = vec![("loss_class", loss_class * p.class_heads_weight)];
        let gaussian = d == 6 && self.config.rotated_box_loss != RotatedBoxLoss::Periodic;
        let loss_box = if gaussian {
            let flat: Vec<f32> = anchors.r2.iter().flatten().copied().collect();
            let a = Tensor::f_from_slice(&flat)?.f_reshape([1, m, 5])?.f_to_device(device)?;
            let g = Tensor::f_from_slice(&gt)?.f_reshape([n, m, 5])?.f_to_device(device)?;
            // Non-positive anchors compare their anchor with itself: finite, and masked out.
            let g = &g * &pos + a.expand([n, m, 5], false) * (1.0 - &pos);
            let pred = decode_rotated_t(box_deltas, &a, self.config.ignore_direction);
            let l = if self.config.rotated_box_loss == RotatedBoxLoss::Kld {
                let div = gaussian_kld(&pred, &g).clamp_min(0.0);
                let f: Tensor = (div + 1f64).log() + 1f64;
                f.reciprocal().neg() + 1f64
            } else {
                gaussian_probiou_loss(&pred, &g)
            };
            (l * &posf).sum(Kind::Float) / &num_pos
        } else if d == 4 && self.config.box_loss == BoxLoss::Giou {
            (giou_loss_of_deltas(box_deltas, &box_t) * &posf).sum(Kind::Float) / &num_pos
        } else {
            l1(0, 4).sum(Kind::Float) / &num_pos
        };
        components.push(("loss_box", loss_box * p.bbox_heads_weight));
        if d == 6 && !(gaussian && self.config.ignore_direction) {
            let w = Tensor::f_from_slice(&angle_w)?.f_reshape([n, m, 1])?.f_to_device(device)?;
            let loss_angle = (l1(4, 2) * w).sum(Kind::Float) / &num_pos;
            components.push(("loss_angle", loss_angle * p.bbox_heads_weight));
        }
        Ok(Losses { components })
    }

    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], classes: &Classes) -> Result<Vec<DLResult>> {
        self.check_classes(classes)?;
        Ok(self
            .detections(outputs, maps)?
            .into_iter()
            .map(|d| self.described(d).into_result(classes))
            .collect())
    }

    fn infer(&self, images: &Tensor, maps: &[ImageMap], classes: &Classes) -> Result<Vec<DLResult>> {
        let views = self.params.test_time_augmentation.views();
        if views.len() == 1 {
            return self.postprocess(&self.forward_t(images, false), maps, classes);
        }
        self.check_classes(classes)?;
        let size = images.size();
        let (n, h, w) = (size[0] as usize, size[2] as usize, size[3] as usize);
        if n != maps.len() {
            return Err(Error::Targets(format!("{n} images and {} maps", maps.len())));
        }
        // Each view's detections after its own NMS, in the network input's coordinates, then mapped
        // back to the original image; fused there, then NMS and the cap as without views.
        let mut pooled: Vec<ImageDetections> =
            (0..n).map(|_| ImageDetections::empty(self.rotated())).collect();
        for view in views {
            let x = view.apply(images);
            let (vh, vw) = if view.turn { (w, h) } else { (h, w) };
            let identity = vec![ImageMap::new(0, 0, vw, vh, vw, vh); n];
            for ((all, dets), map) in
                pooled.iter_mut().zip(self.detections(&self.forward_t(&x, false), &identity)?).zip(maps)
            {
                all.extend_back(
                    dets,
                    |b| map.rect1_backward(&view.rect1_back(b, w, h)),
                    // A turned axis-parallel box comes back as φ = ±π/2: made φ = 0 again, so that
                    // fusion averages it with the other views' descriptions.
                    |b, class| map.rect2_backward(&self.fix_r2(view.rect2_back(b, w, h), class as usize)),
                );
            }
        }
        Ok(pooled
            .into_iter()
            .map(|all| self.described(self.fuse(all, views.len())).into_result(classes))
            .collect())
    }

    fn is_head_var(&self, name: &str) -> bool {
        name.starts_with("neck.") || name.starts_with("det_head.")
    }

    fn freeze_backbone(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    fn set_method_params(&mut self, params: &crate::network::MethodParams) -> Result<()> {
        match params {
            crate::network::MethodParams::Detection(p) => {
                self.params = p.clone();
                Ok(())
            }
            other => Err(Error::Targets(format!("{other:?} for a detection network"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ProbIoU's loss: about 0 for the same Gaussian (a half turn, a quarter turn with the sides
    /// swapped), growing with offsets and turns, below 1 for far boxes.
    #[test]
    fn probiou_loss_is_zero_for_equivalent_boxes_and_grows_with_offsets() {
        let b = |v: [f32; 5]| Tensor::from_slice(&v).reshape([1, 5]);
        let k = |p: [f32; 5], t: [f32; 5]| gaussian_probiou_loss(&b(p), &b(t)).double_value(&[0]);
        let base = [10.0, 20.0, 30.0, 10.0, 0.4];
        assert!(k(base, base) < 1e-3, "{}", k(base, base));
        assert!(k([10.0, 20.0, 30.0, 10.0, 0.4 + std::f32::consts::PI], base) < 2e-3);
        assert!(k([10.0, 20.0, 10.0, 30.0, 0.4 + std::f32::consts::FRAC_PI_2], base) < 2e-3);
        let shifted = k([12.0, 20.0, 30.0, 10.0, 0.4], base);
        let turned = k([10.0, 20.0, 30.0, 10.0, 0.6], base);
        assert!(shifted > 0.01 && turned > 0.01 && k([14.0, 20.0, 30.0, 10.0, 0.4], base) > shifted);
        let far = k([300.0, 20.0, 30.0, 10.0, 0.4], base);
        assert!(far > 0.99 && far < 1.0 + 1e-6, "{far}");
    }

    #[test]
    fn gaussian_kld_is_zero_for_equivalent_boxes_and_grows_with_offsets() {
        let b = |v: [f32; 5]| Tensor::from_slice(&v).reshape([1, 5]);
        let k = |p: [f32; 5], t: [f32; 5]| gaussian_kld(&b(p), &b(t)).double_value(&[0]);
        let base = [10.0, 20.0, 30.0, 10.0, 0.4];
        assert!(k(base, base).abs() < 1e-6);
        // A half turn, and a quarter turn with the sides swapped, are the same Gaussian.
        assert!(k([10.0, 20.0, 30.0, 10.0, 0.4 + std::f32::consts::PI], base).abs() < 1e-5);
        assert!(k([10.0, 20.0, 10.0, 30.0, 0.4 + std::f32::consts::FRAC_PI_2], base).abs() < 1e-5);
        let shifted = k([12.0, 20.0, 30.0, 10.0, 0.4], base);
        let turned = k([10.0, 20.0, 30.0, 10.0, 0.6], base);
        assert!(shifted > 0.0 && turned > 0.0 && k([14.0, 20.0, 30.0, 10.0, 0.4], base) > shifted);
        // Decoding zero deltas gives the anchor.
        let a = b([5.0, 6.0, 20.0, 8.0, 0.3]);
        let d = Tensor::from_slice(&[0f32, 0.0, 0.0, 0.0, 0.0, 1.0]).reshape([1, 6]);
        let back: Vec<f32> = Vec::try_from(decode_rotated_t(&d, &a, true).reshape([-1])).unwrap();
        assert!(
            back.len() == 5 && back.iter().zip([5.0, 6.0, 20.0, 8.0, 0.3]).all(|(x, y)| (x - y).abs() < 1e-6),
            "{back:?}"
        );
    }
}
