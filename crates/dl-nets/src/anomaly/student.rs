//! HALCON's `anomaly_detection` model type, as a student–teacher network: the teacher is a frozen
//! pretrained backbone whose patch features (as PatchCore's: two levels, 3×3-averaged, concatenated)
//! are standardised per channel with statistics of the good training images; the student is a small
//! network trained from scratch (three stride-2 and two stride-1 3×3 convolutions with batch norm and
//! ReLU, a 1×1 projection) to regress them on good images only. Where an image differs from the good
//! ones, the student fails to predict the teacher: the anomaly image is the per-position mean squared
//! difference, upsampled bilinearly to the input and smoothed (σ = 4), the score its maximum.
//!
//! Training (`train_dl_model`, as every model; `train_dl_model_anomaly_dataset` is HALCON's name for
//! it): `domain_ratio` of the positions of each image (drawn
//! anew per step) enter the loss; `regularization_noise` is the standard deviation of Gaussian noise
//! added to the student's input.
//!
//! The same network with a global subnetwork is HALCON's Global Context model (`gc_anomaly_detection`;
//! see [`super::global`]): the student's trunk then has a second head, the anomaly output has the
//! combined, local and global maps, and the loss three parts.

use super::global::{GcNetwork, GlobalConfig, GlobalSubnet, both_networks};
use super::{AnomalyParams, MapKind, anomaly_results, gaussian_blur, level_indices, patch_features};
use crate::backbone::Backbone;
use crate::network::{Classes, Losses, MethodParams, Network, Outputs, Targets, wrong_targets};
use crate::{Error, Result};
use dl_data::preprocess::ImageMap;
use dl_data::{DLResult, ModelType};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

/// The architecture of a student–teacher anomaly model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentConfig {
    /// Strides of the teacher levels (the first is the map's).
    pub strides: Vec<i64>,
    /// Channels of the student's convolutions.
    pub student_channels: i64,
    /// σ (pixels of the network input) of the Gaussian smoothing of the anomaly map.
    pub blur_sigma: f64,
}

impl Default for StudentConfig {
    fn default() -> Self {
        Self { strides: vec![8, 16], student_channels: 128, blur_sigma: 4.0 }
    }
}

/// Training parameters and thresholds of a student–teacher model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentParams {
    /// Share of each image's positions in the loss per step (HALCON's default 0.1).
    pub domain_ratio: f64,
    /// Standard deviation of the noise added to the student's input while training (default 1e−4).
    pub regularization_noise: f64,
    /// Thresholds.
    #[serde(default)]
    pub thresholds: AnomalyParams,
    /// The Global Context model: the subnetworks the anomaly image is made of (default both; ignored
    /// by `anomaly_detection`).
    #[serde(default = "both_networks", skip_serializing_if = "is_both")]
    pub gc_anomaly_networks: Vec<GcNetwork>,
}

fn is_both(v: &[GcNetwork]) -> bool {
    v == both_networks().as_slice()
}

impl Default for StudentParams {
    fn default() -> Self {
        Self {
            domain_ratio: 0.1,
            regularization_noise: 1e-4,
            thresholds: AnomalyParams::default(),
            gc_anomaly_networks: both_networks(),
        }
    }
}

#[derive(Debug)]
struct Block {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
}

/// A student–teacher anomaly network; see the module documentation.
#[derive(Debug)]
pub struct StudentTeacherNet {
    teacher: Box<dyn Backbone>,
    taps: Vec<usize>,
    config: StudentConfig,
    /// Training parameters and thresholds.
    pub params: StudentParams,
    blocks: Vec<Block>,
    head: nn::Conv2D,
    mean: Tensor,
    std: Tensor,
    global: Option<GlobalSubnet>,
}

/// The variable prefix of the student.
pub const STUDENT_PREFIX: &str = "student.";

impl StudentTeacherNet {
    /// The student under `path / "student"`, the teacher statistics under `path / "anomaly"`; with
    /// `global`, the Global Context model (its autoencoder and second head under `path / "student"`,
    /// the maps' quantiles under `path / "anomaly"`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for strides the backbone does not have or out-of-range values.
    pub fn new(
        teacher: Box<dyn Backbone>,
        path: &nn::Path,
        in_channels: i64,
        config: StudentConfig,
        params: StudentParams,
        global: Option<GlobalConfig>,
    ) -> Result<Self> {
        let bad = |key, value: String, expected| Error::InvalidConfig {
            config: "anomaly_detection",
            key,
            value,
            expected,
        };
        let levels = teacher.levels();
        let taps = level_indices(&levels, &config.strides, "anomaly_detection")?;
        let first = config.strides[0];
        if first < 2 || first.count_ones() != 1 {
            return Err(bad("strides", first.to_string(), "a first stride that is a power of two ≥ 2"));
        }
        if !(8..=1024).contains(&config.student_channels) {
            return Err(bad("student_channels", config.student_channels.to_string(), "in 8 … 1024"));
        }
        check_params(&params)?;
        let dim: i64 = taps.iter().map(|&i| levels[i].channels).sum();
        let p = path / "student";
        let c = config.student_channels;
        let mut blocks = Vec::new();
        let mut cin = in_channels;
        let downs = first.trailing_zeros() as usize;
        for i in 0..downs + 2 {
            let stride = if i < downs { 2 } else { 1 };
            let cout = if i < downs { (c >> (downs - 1 - i)).max(16) } else { c };
            let cfg = nn::ConvConfig { stride, padding: 1, bias: false, ..Default::default() };
            blocks.push(Block {
                conv: nn::conv2d(&p / format!("conv{i}"), cin, cout, 3, cfg),
                bn: nn::batch_norm2d(&p / format!("bn{i}"), cout, Default::default()),
                stride,
            });
            cin = cout;
        }
        let head = nn::conv2d(&p / "head", c, dim, 1, Default::default());
        let a = path / "anomaly";
        let mean = a.zeros_no_train("teacher_mean", &[dim]);
        let std = a.ones_no_train("teacher_std", &[dim]);
        let global = global.map(|g| GlobalSubnet::new(&p, &a, in_channels, c, dim, g)).transpose()?;
        Ok(Self { teacher, taps, config, params, blocks, head, mean, std, global })
    }

    /// The architecture.
    pub fn config(&self) -> &StudentConfig {
        &self.config
    }

    /// The teacher's raw patch features `[N, D, h, w]` (no gradients).
    pub fn teacher_features(&self, images: &Tensor) -> Tensor {
        patch_features(&*self.teacher, &self.taps, 3, images)
    }

    /// Sets the per-channel standardisation of the teacher's features from features `[N, D, h, w]` of
    /// good images.
    pub fn set_teacher_statistics(&mut self, features: &Tensor) {
        tch::no_grad(|| {
            let d = features.size()[1];
            let rows = features.transpose(0, 1).reshape([d, -1]);
            self.mean.copy_(&rows.mean_dim([1].as_slice(), false, Kind::Float));
            self.std.copy_(&rows.std_dim([1].as_slice(), false, false).clamp_min(1e-6));
        });
    }

    /// The student's prediction and the standardised teacher features, both `[N, D, h, w]` (noise on
    /// the input when training), the Global Context model's autoencoder output and the student's
    /// prediction of it (unless only the local subnetwork is used at inference), and the input's
    /// (height, width).
    fn student_teacher(&self, images: &Tensor, train: bool) -> StudentTeacher {
        self.forward_parts(images, train, train || self.uses(GcNetwork::Global))
    }

    /// [`Self::student_teacher`], the global subnetwork run when `with_global` (and present).
    fn forward_parts(&self, images: &Tensor, train: bool, with_global: bool) -> StudentTeacher {
        let s = images.size();
        let teacher = tch::no_grad(|| {
            let f = self.teacher_features(images);
            (f - self.mean.view([1, -1, 1, 1])) / self.std.view([1, -1, 1, 1])
        });
        let clean = crate::device::channels_last(images);
        let x = if train && self.params.regularization_noise > 0.0 {
            &clean + clean.randn_like() * self.params.regularization_noise
        } else {
            clean.shallow_clone()
        };
        let ts = teacher.size();
        let fit = |t: Tensor| {
            let ss = t.size();
            if (ts[2], ts[3]) == (ss[2], ss[3]) {
                t
            } else {
                t.upsample_bilinear2d([ts[2], ts[3]], false, None, None)
            }
        };
        let trunk = self.trunk(&x, train);
        let student = fit(trunk.apply(&self.head));
        let global = self.global.as_ref().filter(|_| with_global).map(|g| {
            let ae = g.autoencoder(&clean, (ts[2], ts[3]));
            (ae, fit(trunk.apply(&g.head)))
        });
        StudentTeacher { student, teacher, global, image_size: (s[2], s[3]) }
    }

    /// Whether the anomaly image uses `network` (always the local one for `anomaly_detection`).
    fn uses(&self, network: GcNetwork) -> bool {
        self.global.is_none() || self.params.gc_anomaly_networks.contains(&network)
    }

    /// The raw local and global maps `[N, 1, h, w]` (per-position mean squared differences).
    fn raw_maps(&self, st: &StudentTeacher) -> (Tensor, Option<Tensor>) {
        let sq = |a: &Tensor, b: &Tensor| (a - b).square().mean_dim([1].as_slice(), true, Kind::Float);
        (sq(&st.student, &st.teacher), st.global.as_ref().map(|(ae, s)| sq(ae, s)))
    }

    /// The anomaly maps (per-position mean squared difference, upsampled to `image_size`, smoothed)
    /// and the image scores (their maxima). The Global Context model's maps are `[N, k, H, W]`: the
    /// combination, then the local and / or global map ([`Self::map_kinds`]), each normalised by its
    /// quantiles and clipped at 0; the scores `[N, k]`.
    fn anomaly_maps(&self, st: &StudentTeacher) -> Outputs {
        let maps = tch::no_grad(|| {
            let (local, global) = self.raw_maps(st);
            let low = match (&self.global, global) {
                (None, _) => local,
                (Some(g), global) => {
                    let mut parts = Vec::new();
                    if self.uses(GcNetwork::Local) {
                        parts.push(GlobalSubnet::normalise(&local, &g.local_q));
                    }
                    if let Some(global) = global {
                        parts.push(GlobalSubnet::normalise(&global, &g.global_q));
                    }
                    let combined = Tensor::stack(&parts, 0).mean_dim([0].as_slice(), false, Kind::Float);
                    parts.insert(0, combined);
                    Tensor::cat(&parts, 1)
                }
            };
            let (h, w) = st.image_size;
            let up = low.upsample_bilinear2d([h, w], false, None, None);
            let k = up.size()[1];
            // The blur is per map: channels as images.
            let blurred =
                gaussian_blur(&up.reshape([-1, 1, h, w]), self.config.blur_sigma).reshape([-1, k, h, w]);
            if self.global.is_some() { blurred.clamp_min(0.0) } else { blurred }
        });
        let scores = maps.amax([2, 3].as_slice(), false);
        let scores = if self.global.is_some() { scores } else { scores.squeeze_dim(1) };
        Outputs::Anomaly { scores, maps }
    }

    /// What the channels of the anomaly maps hold.
    pub fn map_kinds(&self) -> Vec<MapKind> {
        let mut kinds = vec![MapKind::Combined];
        if self.global.is_some() {
            if self.uses(GcNetwork::Local) {
                kinds.push(MapKind::Local);
            }
            if self.uses(GcNetwork::Global) {
                kinds.push(MapKind::Global);
            }
        }
        kinds
    }

    /// The student's trunk (every block), `[N, student_channels, h, w]`.
    fn trunk(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for b in &self.blocks {
            let g = crate::fold::Geometry::same(3, b.stride);
            y = crate::fold::conv_bn(&y, &b.conv, g, &b.bn, 1e-5, train).relu_();
        }
        y
    }
}

/// What one forward pass of the student and the teacher gives.
struct StudentTeacher {
    student: Tensor,
    teacher: Tensor,
    /// The autoencoder's output and the student's prediction of it.
    global: Option<(Tensor, Tensor)>,
    image_size: (i64, i64),
}

fn check_params(p: &StudentParams) -> Result<()> {
    let bad = |key, value: String, expected| Error::InvalidConfig {
        config: "anomaly_detection",
        key,
        value,
        expected,
    };
    if !(p.domain_ratio > 0.0 && p.domain_ratio <= 1.0) {
        return Err(bad("domain_ratio", p.domain_ratio.to_string(), "in (0, 1]"));
    }
    if !(p.regularization_noise >= 0.0 && p.regularization_noise.is_finite()) {
        return Err(bad("regularization_noise", p.regularization_noise.to_string(), "a number ≥ 0"));
    }
    let mut networks = p.gc_anomaly_networks.clone();
    networks.sort();
    networks.dedup();
    if networks.is_empty() || networks.len() != p.gc_anomaly_networks.len() {
        return Err(bad(
            "gc_anomaly_networks",
            format!("{:?}", p.gc_anomaly_networks),
            "local, global or both, each once",
        ));
    }
    Ok(())
}

impl Network for StudentTeacherNet {
    fn model_type(&self) -> ModelType {
        ModelType::AnomalyDetection
    }

    /// The Global Context model normalises its maps after every epoch.
    fn epoch_statistics_images(&self) -> usize {
        if self.global.is_some() { self.statistics_images() } else { 0 }
    }

    /// The quantiles of the local and global maps on good train images (inference mode).
    fn fit_epoch_statistics(&mut self, images: &[Tensor]) -> Result<()> {
        if self.global.is_none() || images.is_empty() {
            return Ok(());
        }
        let (mut locals, mut globals) = (Vec::new(), Vec::new());
        for i in images {
            // Both subnetworks, also when the anomaly image uses one of them now.
            let (l, g) = self.raw_maps(&self.forward_parts(i, false, true));
            locals.push(l);
            globals.extend(g);
        }
        let (l, g) = (Tensor::cat(&locals, 0), Tensor::cat(&globals, 0));
        self.global.as_mut().expect("checked above").set_quantiles(&l, &g);
        Ok(())
    }

    /// Training: the standardised teacher features and the student's prediction of them (what the
    /// loss compares). Inference: the anomaly maps `[N, 1, H, W]` at the input size and the image scores
    /// `[N]`, as PatchCore's.
    fn forward_t(&self, images: &Tensor, train: bool) -> Outputs {
        let st = self.student_teacher(images, train);
        if train {
            let StudentTeacher { student, teacher, global, image_size } = st;
            let (autoencoder, global_student) = global.unzip();
            Outputs::StudentTeacher { student, teacher, image_size, autoencoder, global_student }
        } else {
            self.anomaly_maps(&st)
        }
    }

    /// `loss_anomaly`: the mean squared difference over `domain_ratio` of the positions (drawn anew at
    /// each call). The Global Context model: that as `loss_local`, the autoencoder's mean squared
    /// error against the teacher (`loss_autoencoder`) and the student's against the autoencoder
    /// (`loss_global`), both over every position.
    fn loss(&self, outputs: &Outputs, targets: &Targets) -> Result<Losses> {
        let Outputs::StudentTeacher { student, teacher, autoencoder, global_student, .. } = outputs else {
            return Err(wrong_targets("anomaly loss", "student–teacher outputs"));
        };
        if !matches!(targets, Targets::Anomaly { .. } | Targets::None) {
            return Err(wrong_targets("anomaly loss", "anomaly labels"));
        }
        let sq = (student - teacher).square().mean_dim([1].as_slice(), false, Kind::Float);
        let loss = if self.params.domain_ratio < 1.0 {
            let mask = sq.rand_like().lt(self.params.domain_ratio).to_kind(Kind::Float);
            (&sq * &mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)
        } else {
            sq.mean(Kind::Float)
        };
        let (Some(ae), Some(gs)) = (autoencoder, global_student) else {
            if self.global.is_some() {
                return Err(wrong_targets("global context loss", "the autoencoder's outputs"));
            }
            return Ok(Losses { components: vec![("loss_anomaly", loss)] });
        };
        let mse = |a: &Tensor, b: &Tensor| (a - b).square().mean(Kind::Float);
        Ok(Losses {
            components: vec![
                ("loss_local", loss),
                ("loss_autoencoder", mse(ae, teacher)),
                ("loss_global", mse(gs, ae)),
            ],
        })
    }

    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], _classes: &Classes) -> Result<Vec<DLResult>> {
        // The inference forward pass gives anomaly maps (anomaly_results refuses other outputs).
        anomaly_results(outputs, maps, &self.map_kinds(), &self.params.thresholds)
    }

    fn is_head_var(&self, name: &str) -> bool {
        name.starts_with(STUDENT_PREFIX)
    }

    /// The teacher's features are standardised over the first 64 good train images.
    fn statistics_images(&self) -> usize {
        64
    }

    fn fit_statistics(&mut self, images: &[Tensor]) -> Result<()> {
        if images.is_empty() {
            return Err(Error::Targets("no images for the teacher's statistics".into()));
        }
        let features: Vec<Tensor> = images.iter().map(|i| self.teacher_features(i)).collect();
        self.set_teacher_statistics(&Tensor::cat(&features, 0));
        Ok(())
    }

    /// The teacher is always frozen (see the model's `freeze_backbone`); nothing to switch here.
    fn freeze_backbone(&mut self, _frozen: bool) {}

    fn set_method_params(&mut self, params: &MethodParams) -> Result<()> {
        match params {
            MethodParams::StudentTeacher(p) => {
                check_params(p)?;
                self.params = p.clone();
                Ok(())
            }
            MethodParams::Anomaly(t) => {
                self.params.thresholds = t.clone();
                Ok(())
            }
            other => Err(Error::Targets(format!("{other:?} for an anomaly network"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MobileNetV2Config;
    use tch::Device;

    fn net(global: Option<GlobalConfig>) -> (nn::VarStore, StudentTeacherNet) {
        let vs = nn::VarStore::new(Device::Cpu);
        let teacher = Box::new(MobileNetV2Config::new(1, 3).build(&vs.root()).unwrap());
        let config = StudentConfig { student_channels: 32, ..Default::default() };
        let net =
            StudentTeacherNet::new(teacher, &vs.root(), 3, config, StudentParams::default(), global).unwrap();
        (vs, net)
    }

    fn maps(net: &StudentTeacherNet, x: &Tensor) -> (Tensor, Tensor) {
        let Outputs::Anomaly { maps, scores } = net.forward_t(x, false) else { panic!("anomaly outputs") };
        (maps, scores)
    }

    /// The Global Context model: training gives the autoencoder's output and the student's prediction
    /// of it at the teacher's size and three named losses; inference gives the combined, local and
    /// global maps at the input size (≥ 0) with one score each (each map's maximum); after the epoch
    /// statistics, the local map's 90 % quantile on those
    /// images is at the normalisation's zero; `gc_anomaly_networks` chooses the maps, and results carry
    /// HALCON's keys; `anomaly_detection` keeps one map and one loss.
    #[test]
    fn global_context_outputs_losses_and_normalisation() {
        tch::manual_seed(3);
        let (vs, mut gc) = net(Some(GlobalConfig::default()));
        for name in
            ["student.autoencoder.enc0.weight", "student.global_head.weight", "anomaly.local_quantiles"]
        {
            assert!(vs.variables().contains_key(name), "{name}");
        }
        let x = Tensor::randn([2, 3, 96, 64], (Kind::Float, Device::Cpu));
        let out = gc.forward_t(&x, true);
        let Outputs::StudentTeacher { teacher, autoencoder: Some(ae), global_student: Some(gs), .. } = &out
        else {
            panic!("global context training outputs")
        };
        assert_eq!((ae.size(), gs.size()), (teacher.size(), teacher.size()));
        assert_eq!(teacher.size(), [2, 128, 12, 8]);
        let losses = gc.loss(&out, &Targets::None).unwrap();
        let names: Vec<&str> = losses.components.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["loss_local", "loss_autoencoder", "loss_global"]);
        assert!(losses.total().double_value(&[]) > 0.0);

        let images = vec![Tensor::randn([4, 3, 96, 64], (Kind::Float, Device::Cpu))];
        gc.fit_statistics(&images).unwrap();
        gc.fit_epoch_statistics(&images).unwrap();
        let q = gc.global.as_ref().unwrap().local_q.shallow_clone();
        let (low, high) = (q.double_value(&[0]), q.double_value(&[1]));
        assert!(0.0 < low && low < high, "quantiles {low} {high}");
        let (raw, _) = gc.raw_maps(&gc.forward_parts(&images[0], false, true));
        let normalised = GlobalSubnet::normalise(&raw, &q);
        let below = normalised.le(0.0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        assert!((below - 0.9).abs() < 0.02, "{below} of the positions at or below the 90 % quantile");

        let (m, s) = maps(&gc, &x);
        assert_eq!((m.size(), s.size()), (vec![2, 3, 96, 64], vec![2, 3]));
        assert!(m.min().double_value(&[]) >= 0.0);
        let max = m.amax([2, 3].as_slice(), false);
        assert!((max - &s).abs().max().double_value(&[]) < 1e-6);
        assert_eq!(gc.map_kinds(), [MapKind::Combined, MapKind::Local, MapKind::Global]);
        let region = ImageMap::new(0, 0, 64, 96, 64, 96);
        let classes = Classes { ids: vec![], names: vec![] };
        let out = gc.forward_t(&x, false);
        let r = gc.postprocess(&out, &[region, region], &classes).unwrap();
        assert!(r[1].anomaly_image_local.is_some() && r[1].anomaly_image_global.is_some());
        assert_eq!(r[1].anomaly_score_global, Some(s.double_value(&[1, 2])));

        for (networks, kinds) in [
            (vec![GcNetwork::Local], vec![MapKind::Combined, MapKind::Local]),
            (vec![GcNetwork::Global], vec![MapKind::Combined, MapKind::Global]),
        ] {
            let p = StudentParams { gc_anomaly_networks: networks, ..Default::default() };
            gc.set_method_params(&MethodParams::StudentTeacher(p)).unwrap();
            assert_eq!(gc.map_kinds(), kinds);
            let (one, _) = maps(&gc, &x);
            assert_eq!(one.size(), [2, 2, 96, 64]);
            // The combination of one map is that map.
            assert!((one.get(0).get(0) - one.get(0).get(1)).abs().max().double_value(&[]) < 1e-6);
            let chosen = if kinds[1] == MapKind::Local { 1 } else { 2 };
            assert!((one.narrow(1, 1, 1) - m.narrow(1, chosen, 1)).abs().max().double_value(&[]) < 1e-5);
        }
        for bad in [vec![], vec![GcNetwork::Local, GcNetwork::Local]] {
            let p = StudentParams { gc_anomaly_networks: bad, ..Default::default() };
            let err = gc.set_method_params(&MethodParams::StudentTeacher(p)).unwrap_err().to_string();
            assert!(err.contains("gc_anomaly_networks"), "{err}");
        }

        let (_, plain) = net(None);
        let (m, s) = maps(&plain, &x);
        assert_eq!((m.size(), s.size()), (vec![2, 1, 96, 64], vec![2]));
        let losses = plain.loss(&plain.forward_t(&x, true), &Targets::None).unwrap();
        assert_eq!(losses.components.len(), 1);
        assert_eq!(plain.epoch_statistics_images(), 0);
    }
}
