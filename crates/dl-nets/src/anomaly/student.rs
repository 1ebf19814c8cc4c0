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

use super::{AnomalyParams, anomaly_results, gaussian_blur, level_indices, patch_features};
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
}

impl Default for StudentParams {
    fn default() -> Self {
        Self { domain_ratio: 0.1, regularization_noise: 1e-4, thresholds: AnomalyParams::default() }
    }
}

#[derive(Debug)]
struct Block {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
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
}

/// The variable prefix of the student.
pub const STUDENT_PREFIX: &str = "student.";

impl StudentTeacherNet {
    /// The student under `path / "student"`, the teacher statistics under `path / "anomaly"`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for strides the backbone does not have or out-of-range values.
    pub fn new(
        teacher: Box<dyn Backbone>,
        path: &nn::Path,
        in_channels: i64,
        config: StudentConfig,
        params: StudentParams,
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
            });
            cin = cout;
        }
        let head = nn::conv2d(&p / "head", c, dim, 1, Default::default());
        let a = path / "anomaly";
        let mean = a.zeros_no_train("teacher_mean", &[dim]);
        let std = a.ones_no_train("teacher_std", &[dim]);
        Ok(Self { teacher, taps, config, params, blocks, head, mean, std })
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
    /// the input when training), and the input's (height, width).
    fn student_teacher(&self, images: &Tensor, train: bool) -> (Tensor, Tensor, (i64, i64)) {
        let s = images.size();
        let teacher = tch::no_grad(|| {
            let f = self.teacher_features(images);
            (f - self.mean.view([1, -1, 1, 1])) / self.std.view([1, -1, 1, 1])
        });
        let x = crate::device::channels_last(images);
        let x = if train && self.params.regularization_noise > 0.0 {
            &x + x.randn_like() * self.params.regularization_noise
        } else {
            x
        };
        let mut student = self.student(&x, train);
        let (ts, ss) = (teacher.size(), student.size());
        if (ts[2], ts[3]) != (ss[2], ss[3]) {
            student = student.upsample_bilinear2d([ts[2], ts[3]], false, None, None);
        }
        (student, teacher, (s[2], s[3]))
    }

    /// The anomaly maps (per-position mean squared difference, upsampled to `image_size`, smoothed)
    /// and the image scores (their maxima).
    fn anomaly_maps(&self, student: &Tensor, teacher: &Tensor, image_size: (i64, i64)) -> Outputs {
        let maps = tch::no_grad(|| {
            let sq = (student - teacher).square().mean_dim([1].as_slice(), true, Kind::Float);
            let up = sq.upsample_bilinear2d([image_size.0, image_size.1], false, None, None);
            gaussian_blur(&up, self.config.blur_sigma)
        });
        Outputs::Anomaly { scores: maps.amax([1, 2, 3].as_slice(), false), maps }
    }

    fn student(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for b in &self.blocks {
            y = y.apply(&b.conv).apply_t(&b.bn, train).relu();
        }
        y.apply(&self.head)
    }
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
    Ok(())
}

impl Network for StudentTeacherNet {
    fn model_type(&self) -> ModelType {
        ModelType::AnomalyDetection
    }

    /// Training: the standardised teacher features and the student's prediction of them (what the
    /// loss compares). Inference: the anomaly maps `[N, 1, H, W]` at the input size and the image scores
    /// `[N]`, as PatchCore's.
    fn forward_t(&self, images: &Tensor, train: bool) -> Outputs {
        let (student, teacher, image_size) = self.student_teacher(images, train);
        if train {
            Outputs::StudentTeacher { student, teacher, image_size }
        } else {
            self.anomaly_maps(&student, &teacher, image_size)
        }
    }

    /// `loss_anomaly`: the mean squared difference over `domain_ratio` of the positions (drawn anew at
    /// each call).
    fn loss(&self, outputs: &Outputs, targets: &Targets) -> Result<Losses> {
        let Outputs::StudentTeacher { student, teacher, .. } = outputs else {
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
        Ok(Losses { components: vec![("loss_anomaly", loss)] })
    }

    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], _classes: &Classes) -> Result<Vec<DLResult>> {
        // The inference forward pass gives anomaly maps (anomaly_results refuses other outputs).
        anomaly_results(outputs, maps, &self.params.thresholds)
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
