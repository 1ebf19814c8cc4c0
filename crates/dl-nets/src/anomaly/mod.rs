//! Anomaly detection trained on good images only. [`PatchCoreNet`] (`patchcore`): a frozen pretrained
//! backbone's feature maps at two strides (default 8 and 16), each averaged over a 3×3 neighbourhood,
//! the coarser one upsampled bilinearly to the finer one and concatenated — one feature vector per
//! position ("patch"). Fitting (see [`coreset`]) keeps a greedy k-center coreset of the good images'
//! patches as the memory bank. A patch's anomaly is its distance to the nearest memory entry (matrix
//! products), divided by the bank's coverage radius (the largest distance of a fitted patch to its
//! nearest entry), so good patches score about ≤ 1; the map is upsampled bilinearly to the input,
//! smoothed by a Gaussian (σ = 4 pixels), and the image score is its maximum.

pub mod coreset;
pub mod global;
pub mod student;

use crate::backbone::Backbone;
use crate::network::{Classes, Losses, MethodParams, Network, Outputs, Targets, wrong_targets};
use crate::{Error, Result};
use dl_data::preprocess::ImageMap;
use dl_data::{DLResult, HostImage, ModelType};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// The architecture of a PatchCore model; `memory_bank_size` and `score_scale` are set by fitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchCoreConfig {
    /// Strides of the backbone levels whose maps form the patch features (the first is the map's).
    pub strides: Vec<i64>,
    /// Side of the neighbourhood each map is averaged over.
    pub neighbourhood: i64,
    /// Share of the patches kept in the memory bank.
    pub coreset_ratio: f64,
    /// Patches per coreset chunk: the memory of fitting is bounded by this, not by the data.
    pub coreset_chunk_size: usize,
    /// σ (pixels of the network input) of the Gaussian smoothing of the anomaly map.
    pub blur_sigma: f64,
    /// Entries of the memory bank (0: not fitted).
    pub memory_bank_size: i64,
    /// The distance that is 1 in the anomaly image (the bank's coverage radius).
    pub score_scale: f64,
}

impl Default for PatchCoreConfig {
    fn default() -> Self {
        Self {
            strides: vec![8, 16],
            neighbourhood: 3,
            coreset_ratio: 0.01,
            coreset_chunk_size: 65_536,
            blur_sigma: 4.0,
            memory_bank_size: 0,
            score_scale: 1.0,
        }
    }
}

/// Thresholds of an anomaly model (`compute_dl_anomaly_thresholds`), applied to every result when set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AnomalyParams {
    /// Pixels above it form `anomaly_region`.
    pub anomaly_segmentation_threshold: Option<f64>,
    /// Images scoring above it are 'nok'.
    pub anomaly_classification_threshold: Option<f64>,
}

/// Patches and memory entries per block of the nearest-neighbour search
/// ([`PatchCoreNet::nearest_distances`]).
pub const NEAREST_BLOCK: i64 = 1024;

/// The variable name of the memory bank.
pub const MEMORY_BANK: &str = "anomaly.memory_bank";

/// A PatchCore model; see the module documentation.
#[derive(Debug)]
pub struct PatchCoreNet {
    backbone: Box<dyn Backbone>,
    config: PatchCoreConfig,
    /// Thresholds.
    pub params: AnomalyParams,
    /// Index of each tapped level among the backbone's.
    taps: Vec<usize>,
    /// `[memory_bank_size, feature_dim]` (a variable: stored in the model file).
    bank: Tensor,
}

impl PatchCoreNet {
    /// The network on `backbone` with the memory bank (of `config.memory_bank_size` rows) under `path`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for strides the backbone does not have, or out-of-range values.
    pub fn new(
        backbone: Box<dyn Backbone>,
        path: &nn::Path,
        config: PatchCoreConfig,
        params: AnomalyParams,
    ) -> Result<Self> {
        let bad =
            |key, value: String, expected| Error::InvalidConfig { config: "patchcore", key, value, expected };
        let levels = backbone.levels();
        let taps = level_indices(&levels, &config.strides, "patchcore")?;
        if !(config.coreset_ratio > 0.0 && config.coreset_ratio <= 1.0) {
            return Err(bad("coreset_ratio", config.coreset_ratio.to_string(), "in (0, 1]"));
        }
        if config.neighbourhood < 1 || config.neighbourhood % 2 == 0 {
            return Err(bad("neighbourhood", config.neighbourhood.to_string(), "an odd number ≥ 1"));
        }
        if config.coreset_chunk_size < 1024 {
            return Err(bad("coreset_chunk_size", config.coreset_chunk_size.to_string(), "at least 1024"));
        }
        if !(config.blur_sigma >= 0.0 && config.blur_sigma.is_finite()) {
            return Err(bad("blur_sigma", config.blur_sigma.to_string(), "a number ≥ 0"));
        }
        if !(config.score_scale > 0.0 && config.score_scale.is_finite()) {
            return Err(bad("score_scale", config.score_scale.to_string(), "a number > 0"));
        }
        let dim: i64 = taps.iter().map(|&i| levels[i].channels).sum();
        let bank = (path / "anomaly").zeros_no_train("memory_bank", &[config.memory_bank_size.max(0), dim]);
        Ok(Self { backbone, config, params, taps, bank })
    }

    /// The architecture.
    pub fn config(&self) -> &PatchCoreConfig {
        &self.config
    }

    /// Values per patch feature.
    pub fn feature_dim(&self) -> i64 {
        self.bank.size()[1]
    }

    /// Patch features `[N, D, h, w]` (the first tapped level's size) of images `[N, C, H, W]`, without
    /// gradients.
    pub fn features(&self, images: &Tensor) -> Tensor {
        patch_features(&*self.backbone, &self.taps, self.config.neighbourhood, images)
    }

    /// Distances of patch features `[P, D]` to their nearest memory entry `[P]`, in blocks of
    /// [`NEAREST_BLOCK`] patches × [`NEAREST_BLOCK`] entries: each block's ‖b‖² − 2 x·b table is one
    /// fused product (`addmm` with the bank scaled by −2) of 4 MiB, reduced to its row minima while it
    /// is in cache, and the running minimum over the entry blocks is kept per patch (measured on 2 cores: the nearest-neighbour search
    /// of 16 images at 224², 12 544 patches against 9 472 entries of 128 values, in about half the time
    /// of one product per 443 patches against the whole bank). ‖x‖² is added after the minimum, which
    /// it does not change.
    pub fn nearest_distances(&self, patches: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let (p, b) = (patches.size()[0], self.config.memory_bank_size);
            let bank_sq = self.bank_squares();
            let bank_m2 = &self.bank * -2.0;
            let blocks =
                |n: i64| (0..n).step_by(NEAREST_BLOCK as usize).map(move |s| (s, NEAREST_BLOCK.min(n - s)));
            let mut out = Vec::new();
            for (start, len) in blocks(p) {
                let x = patches.narrow(0, start, len);
                let mut best: Option<Tensor> = None;
                for (s, l) in blocks(b) {
                    let table =
                        bank_sq.narrow(0, s, l).view([1, -1]).addmm(&x, &bank_m2.narrow(0, s, l).tr());
                    let block_min = table.amin([1].as_slice(), false);
                    best = Some(match best {
                        None => block_min,
                        Some(m) => m.minimum(&block_min),
                    });
                }
                let x_sq = x.square().sum_dim_intlist([-1].as_slice(), false, Kind::Float);
                let nearest =
                    best.unwrap_or_else(|| Tensor::full([len], f64::INFINITY, (Kind::Float, x.device())));
                out.push((x_sq + nearest).clamp_min(0.0).sqrt());
            }
            if out.is_empty() {
                return Tensor::zeros([0], (Kind::Float, patches.device()));
            }
            Tensor::cat(&out, 0)
        })
    }

    /// The squared norms of the memory entries `[B]`.
    fn bank_squares(&self) -> Tensor {
        self.bank.square().sum_dim_intlist([-1].as_slice(), false, Kind::Float)
    }

    /// The distance of each feature (the last dimension of `x`, `[…, D]`) to its nearest memory entry,
    /// `[…]`, by ‖x‖² + min_b (‖b‖² − 2 x·b), in one product (the export's graph, which does not depend
    /// on the batch size). The bracket is one fused product (`baddbmm`: ‖b‖² added
    /// as it is written), so the `[…, B]` table is written once and read once by the minimum; ‖x‖² is
    /// added after the minimum, which it does not change.
    fn nearest(&self, x: &Tensor, bank_sq: &Tensor) -> Tensor {
        let x_sq = x.square().sum_dim_intlist([-1].as_slice(), false, Kind::Float);
        let rows = x.reshape([1, -1, *x.size().last().expect("features have a last dimension")]);
        let bank_t = self.bank.tr().unsqueeze(0);
        let table = bank_sq.view([1, 1, -1]).baddbmm(&rows, &bank_t, 1.0, -2.0);
        let nearest = table.min_dim(-1, false).0.view_as(&x_sq);
        (x_sq + nearest).clamp_min(0.0).sqrt()
    }

    /// Anomaly maps `[N, 1, H, W]` at the input size and image scores `[N]` (zero without a memory
    /// bank). `chunked`: the distances in chunks of patch rows, which bounds memory (the forward
    /// pass); otherwise in one product per image, whose graph does not depend on the batch size (the
    /// TorchScript export).
    pub fn anomaly_maps(&self, images: &Tensor, chunked: bool) -> Outputs {
        let s = images.size();
        if self.config.memory_bank_size == 0 {
            let maps = Tensor::zeros([s[0], 1, s[2], s[3]], (Kind::Float, images.device()));
            return Outputs::Anomaly { scores: maps.amax([1, 2, 3].as_slice(), false), maps };
        }
        let f = self.features(images);
        let fs = f.size();
        let maps = tch::no_grad(|| {
            let d = if chunked {
                let patches = f.permute([0, 2, 3, 1]).reshape([-1, fs[1]]);
                self.nearest_distances(&patches).view([-1, 1, fs[2], fs[3]])
            } else {
                let x = f.permute([0, 2, 3, 1]).reshape([-1, fs[2] * fs[3], fs[1]]);
                self.nearest(&x, &self.bank_squares()).view([-1, 1, fs[2], fs[3]])
            };
            let up = (d / self.config.score_scale).upsample_bilinear2d([s[2], s[3]], false, None, None);
            gaussian_blur(&up, self.config.blur_sigma)
        });
        Outputs::Anomaly { scores: maps.amax([1, 2, 3].as_slice(), false), maps }
    }

    /// Replaces the memory bank (rows of `[memory_bank_size, D]`) and the score scale.
    ///
    /// # Errors
    /// [`Error::Targets`] for a bank of another shape than the configured one.
    pub fn set_memory_bank(&mut self, bank: &Tensor, score_scale: f64) -> Result<()> {
        if bank.size() != self.bank.size() {
            return Err(Error::Targets(format!(
                "memory bank {:?}, the model has room for {:?}",
                bank.size(),
                self.bank.size()
            )));
        }
        tch::no_grad(|| self.bank.copy_(bank));
        self.config.score_scale = score_scale;
        Ok(())
    }
}

/// The indices of the backbone levels of `strides` (at least one).
///
/// # Errors
/// [`Error::InvalidConfig`] of `config` for no strides or a stride the backbone does not have.
pub fn level_indices(levels: &[crate::Level], strides: &[i64], config: &'static str) -> Result<Vec<usize>> {
    let bad = |value: String, expected| Error::InvalidConfig { config, key: "strides", value, expected };
    if strides.is_empty() {
        return Err(bad("[]".into(), "at least one stride"));
    }
    strides
        .iter()
        .map(|s| {
            levels
                .iter()
                .position(|l| l.stride == *s)
                .ok_or_else(|| bad(format!("{strides:?}"), "strides of the backbone's levels"))
        })
        .collect()
}

/// Patch features `[N, D, h, w]` of images: the maps of `backbone`'s levels `taps` (in inference mode,
/// without gradients), each averaged over a `k`×`k` neighbourhood, upsampled bilinearly to the first
/// one's size and concatenated.
pub fn patch_features(backbone: &dyn Backbone, taps: &[usize], k: i64, images: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let x = crate::device::channels_last(images);
        // The levels after the last tapped one are not needed.
        let count = taps.iter().max().map_or(0, |&i| i + 1);
        let levels = backbone.forward_first_levels(&x, false, count);
        let mut maps = Vec::with_capacity(taps.len());
        let mut size = None;
        for &i in taps {
            let f = levels[i].avg_pool2d([k, k], [1, 1], [k / 2, k / 2], false, false, None::<i64>);
            let s = *size.get_or_insert_with(|| (f.size()[2], f.size()[3]));
            let f = if (f.size()[2], f.size()[3]) == s {
                f
            } else {
                f.upsample_bilinear2d([s.0, s.1], false, None, None)
            };
            maps.push(f);
        }
        Tensor::cat(&maps, 1).contiguous()
    })
}

/// Gaussian smoothing of maps `[N, 1, H, W]` (separable, reflected borders).
pub fn gaussian_blur(maps: &Tensor, sigma: f64) -> Tensor {
    if sigma <= 0.0 {
        return maps.shallow_clone();
    }
    let radius = (4.0 * sigma).ceil() as i64;
    // The taps by tensor operations (in f64, then f32), not from host data: a traced graph (the
    // TorchScript export) records them as operations.
    let i = Tensor::arange_start(-radius, radius + 1, (Kind::Double, maps.device()));
    let taps = (-(&i * &i) / (2.0 * sigma * sigma)).exp().to_kind(Kind::Float);
    let k = &taps / taps.sum(Kind::Float);
    let s = maps.size();
    let pad_h = radius.min(s[2] - 1);
    let pad_w = radius.min(s[3] - 1);
    let x = maps.reflection_pad2d([pad_w, pad_w, pad_h, pad_h]);
    // Rows, then columns; a border narrower than the radius uses the kernel's centre part.
    let kh = k.narrow(0, radius - pad_h, 2 * pad_h + 1).view([1, 1, 2 * pad_h + 1, 1]);
    let kw = k.narrow(0, radius - pad_w, 2 * pad_w + 1).view([1, 1, 1, 2 * pad_w + 1]);
    let kh = &kh / kh.sum(Kind::Float);
    let kw = &kw / kw.sum(Kind::Float);
    x.conv2d(&kh, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1).conv2d(
        &kw,
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        1,
    )
}

impl Network for PatchCoreNet {
    fn model_type(&self) -> ModelType {
        ModelType::AnomalyDetection
    }

    /// Anomaly maps `[N, 1, H, W]` at the input size and image scores `[N]`; zero without a memory bank.
    fn forward_t(&self, images: &Tensor, _train: bool) -> Outputs {
        self.anomaly_maps(images, true)
    }

    fn loss(&self, _outputs: &Outputs, _targets: &Targets) -> Result<Losses> {
        Err(Error::Targets(
            "a patchcore model is fitted (one pass over the good images), not trained by gradient".into(),
        ))
    }

    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], _classes: &Classes) -> Result<Vec<DLResult>> {
        if self.config.memory_bank_size == 0 {
            return Err(Error::Targets(
                "the patchcore model is not fitted yet: train it on good images first".into(),
            ));
        }
        anomaly_results(outputs, maps, &[MapKind::Combined], &self.params)
    }

    fn is_head_var(&self, name: &str) -> bool {
        name == MEMORY_BANK
    }

    fn freeze_backbone(&mut self, _frozen: bool) {}

    fn set_method_params(&mut self, params: &MethodParams) -> Result<()> {
        match params {
            MethodParams::Anomaly(p) => {
                self.params = p.clone();
                Ok(())
            }
            other => Err(Error::Targets(format!("{other:?} for an anomaly network"))),
        }
    }
}

/// DLResults of anomaly outputs: the map resized bilinearly to the original region (0 outside it),
/// the image score, and with thresholds the region and class.
///
/// # Errors
/// [`Error::Targets`] for other outputs or a wrong number of maps; libtorch errors.
/// What one channel of an anomaly output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// `anomaly_image` and `anomaly_score`.
    Combined,
    /// `anomaly_image_local` and `anomaly_score_local` (Global Context).
    Local,
    /// `anomaly_image_global` and `anomaly_score_global` (Global Context).
    Global,
}

/// DLResults of anomaly outputs, whose channels hold `kinds`: each map resized to its image's region
/// and placed in the original image (0 outside the region), the score as it is; thresholded when both
/// thresholds are set.
///
/// # Errors
/// [`Error::Targets`] for other outputs, or maps and scores that do not match the images and kinds;
/// libtorch errors.
pub fn anomaly_results(
    outputs: &Outputs,
    maps: &[ImageMap],
    kinds: &[MapKind],
    params: &AnomalyParams,
) -> Result<Vec<DLResult>> {
    let Outputs::Anomaly { maps: images, scores } = outputs else {
        return Err(wrong_targets("anomaly post-processing", "anomaly outputs"));
    };
    let s = images.size();
    let k = kinds.len() as i64;
    if s.len() != 4 || s[0] != maps.len() as i64 || s[1] != k || scores.numel() as i64 != s[0] * k {
        return Err(Error::Targets(format!(
            "{s:?} anomaly maps and {:?} scores for {} images with {k} maps each",
            scores.size(),
            maps.len()
        )));
    }
    let (h, w) = (s[2] as usize, s[3] as usize);
    let scores: Vec<f64> =
        Vec::<f64>::try_from(scores.to_kind(Kind::Double).reshape([-1]).to_device(Device::Cpu))?;
    maps.iter()
        .enumerate()
        .map(|(i, map)| {
            let (rw, rh) = map.region;
            let mut m = images.f_get(i as i64)?.f_unsqueeze(0)?;
            if (rw, rh) != (w, h) {
                m = m.f_upsample_bilinear2d([rh as i64, rw as i64], false, None, None)?;
            }
            let m = m.f_to_device(Device::Cpu)?;
            let n = rw * rh;
            let (sw, sh) = map.source;
            let (r0, c0) = (map.row0 as usize, map.col0 as usize);
            // The region's rows into the original image (0 outside); the map itself when they agree.
            let image = |v: Vec<f32>| {
                let data = if (sw, sh, r0, c0) == (rw, rh, 0, 0) {
                    v
                } else {
                    let mut full = vec![0f32; sw * sh];
                    let cols = rw.min(sw.saturating_sub(c0));
                    for r in (0..rh.min(sh.saturating_sub(r0))).filter(|_| cols > 0) {
                        let at = (r0 + r) * sw + c0;
                        full[at..at + cols].copy_from_slice(&v[r * rw..r * rw + cols]);
                    }
                    full
                };
                Some(HostImage { width: sw, height: sh, channels: 1, bit_depth: 32, data })
            };
            let mut r = DLResult::default();
            for (j, kind) in kinds.iter().enumerate() {
                let mut v = vec![0f32; n];
                m.f_get(0)?.f_get(j as i64)?.f_contiguous()?.f_copy_data(&mut v, n)?;
                let score = Some(scores[i * kinds.len() + j]);
                match kind {
                    MapKind::Combined => (r.anomaly_image, r.anomaly_score) = (image(v), score),
                    MapKind::Local => (r.anomaly_image_local, r.anomaly_score_local) = (image(v), score),
                    MapKind::Global => (r.anomaly_image_global, r.anomaly_score_global) = (image(v), score),
                }
            }
            if let (Some(seg), Some(cls)) =
                (params.anomaly_segmentation_threshold, params.anomaly_classification_threshold)
            {
                r.threshold_anomaly(seg, cls);
            }
            Ok(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MobileNetV2Config;

    fn patchcore(config: PatchCoreConfig) -> (nn::VarStore, Result<PatchCoreNet>) {
        let vs = nn::VarStore::new(Device::Cpu);
        let backbone = Box::new(MobileNetV2Config::new(1, 3).build(&vs.root()).unwrap());
        let net = PatchCoreNet::new(backbone, &vs.root(), config, AnomalyParams::default());
        (vs, net)
    }

    /// Distances by matrix products equal brute force; features have the stride-8 size and 32 + 96
    /// channels; an unfitted model refuses to post-process; bad configurations name their key.
    #[test]
    fn distances_features_and_refusals() {
        let (vs, net) = patchcore(PatchCoreConfig { memory_bank_size: 50, ..Default::default() });
        let mut net = net.unwrap();
        let bank = Tensor::randn([50, 128], (Kind::Float, Device::Cpu));
        net.set_memory_bank(&bank, 2.0).unwrap();
        assert!(net.set_memory_bank(&Tensor::zeros([3, 128], (Kind::Float, Device::Cpu)), 1.0).is_err());
        let brute = |x: &Tensor, bank: &Tensor| {
            let rows: Vec<Tensor> = x
                .split(100, 0)
                .iter()
                .map(|x| {
                    x.unsqueeze(1)
                        .f_sub(&bank.unsqueeze(0))
                        .unwrap()
                        .square()
                        .sum_dim_intlist([2].as_slice(), false, Kind::Float)
                        .min_dim(1, false)
                        .0
                        .sqrt()
                })
                .collect();
            Tensor::cat(&rows, 0)
        };
        let x = Tensor::randn([300, 128], (Kind::Float, Device::Cpu));
        let d = net.nearest_distances(&x);
        assert!((d - brute(&x, &bank)).abs().max().double_value(&[]) < 1e-3);
        // More patches and entries than one block of the search holds, with partial blocks.
        let (_vs, big) = patchcore(PatchCoreConfig { memory_bank_size: 1300, ..Default::default() });
        let mut big = big.unwrap();
        let bank = Tensor::randn([1300, 128], (Kind::Float, Device::Cpu));
        big.set_memory_bank(&bank, 1.0).unwrap();
        let x = Tensor::randn([2100, 128], (Kind::Float, Device::Cpu));
        let d = big.nearest_distances(&x);
        assert_eq!(d.size(), [2100]);
        assert!((d - brute(&x, &bank)).abs().max().double_value(&[]) < 1e-3);
        let f = net.features(&Tensor::randn([1, 3, 64, 96], (Kind::Float, Device::Cpu)));
        assert_eq!(f.size(), [1, 128, 8, 12]);
        // The unchunked maps (the TorchScript export's graph) equal the chunked ones.
        let images = Tensor::randn([3, 3, 64, 96], (Kind::Float, Device::Cpu));
        let (Outputs::Anomaly { maps: a, .. }, Outputs::Anomaly { maps: b, .. }) =
            (net.anomaly_maps(&images, true), net.anomaly_maps(&images, false))
        else {
            panic!("anomaly outputs")
        };
        assert_eq!(a.size(), [3, 1, 64, 96]);
        let diff = (&a - &b).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "chunked and unchunked maps differ by {diff}");
        assert_eq!(vs.variables()[MEMORY_BANK].size(), [50, 128]);
        let (_, empty) = patchcore(PatchCoreConfig::default());
        let empty = empty.unwrap();
        let out = empty.forward_t(&Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu)), false);
        let map = ImageMap::new(0, 0, 64, 64, 64, 64);
        let classes = Classes { ids: vec![], names: vec![] };
        assert!(empty.postprocess(&out, &[map], &classes).unwrap_err().to_string().contains("not fitted"));
        for (c, key) in [
            (PatchCoreConfig { strides: vec![5], ..Default::default() }, "strides"),
            (PatchCoreConfig { coreset_ratio: 0.0, ..Default::default() }, "coreset_ratio"),
            (PatchCoreConfig { neighbourhood: 2, ..Default::default() }, "neighbourhood"),
        ] {
            let err = patchcore(c).1.unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    /// The blur keeps constants and the mass of an interior impulse, and spreads it.
    #[test]
    fn gaussian_blur_is_normalised() {
        let c = Tensor::full([1, 1, 40, 40], 3.0, (Kind::Float, Device::Cpu));
        assert!((gaussian_blur(&c, 4.0) - 3.0).abs().max().double_value(&[]) < 1e-5);
        let mut v = vec![0f32; 60 * 60];
        v[30 * 60 + 30] = 1.0;
        let imp = Tensor::from_slice(&v).view([1, 1, 60, 60]);
        let b = gaussian_blur(&imp, 2.0);
        assert!((b.sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-4);
        assert!(b.double_value(&[0, 0, 30, 30]) < 0.1 && b.double_value(&[0, 0, 30, 32]) > 0.01);
    }
}
