//! The global subnetwork of HALCON's Global Context model (`gc_anomaly_detection`), after the
//! student–teacher–autoencoder design of GCAD / EfficientAD (Bergmann et al.): the local subnetwork is
//! the student of [`super::student`], whose receptive field is a few dozen pixels, so it sees
//! structural defects (scratches, spots) but not a wrong arrangement of good-looking parts. The global
//! subnetwork adds an **autoencoder** that sees the whole image through a small bottleneck — five
//! stride-2 3×3 convolutions, an average pool to a `grid`×`grid` map, a linear layer to `latent_dim`
//! values and back, four bilinear-upsampling 3×3 convolutions to the teacher's map size — trained to
//! reproduce the standardised teacher features, and a second student head (1×1 on the student's trunk)
//! trained to predict the autoencoder's output. Where the image's global content is unusual, the
//! autoencoder's reconstruction and the student's prediction of it disagree: that disagreement is the
//! global anomaly map (the autoencoder's own error is not used: it is high on every image, where its
//! bottleneck blurs fine detail).
//!
//! The local and global maps are on different scales, so each is normalised by two quantiles of its
//! values on good train images (measured after every epoch: `q₉₀` ↦ 0, `q₉₉.₅` ↦ 1) before they are
//! combined (their mean) and clipped at 0. `gc_anomaly_networks` chooses which of them the anomaly image
//! is made of.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

/// The global subnetwork's architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Channels of the autoencoder's convolutions.
    pub channels: i64,
    /// Values of the bottleneck.
    pub latent_dim: i64,
    /// Side of the pooled map entering the bottleneck.
    pub grid: i64,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self { channels: 64, latent_dim: 64, grid: 4 }
    }
}

/// One subnetwork of the Global Context model (HALCON's `gc_anomaly_networks` values, `local` and
/// `global` as serde writes and reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GcNetwork {
    /// Structural anomalies (small receptive field).
    Local,
    /// Logical anomalies (the whole image).
    Global,
}

/// Both subnetworks, HALCON's default.
pub fn both_networks() -> Vec<GcNetwork> {
    vec![GcNetwork::Local, GcNetwork::Global]
}

/// The quantiles each map is normalised by (`q_low` ↦ 0, `q_high` ↦ 1).
pub const NORMALISATION_QUANTILES: [f64; 2] = [0.9, 0.995];

/// The autoencoder, the student's global head and the maps' normalisation.
#[derive(Debug)]
pub(crate) struct GlobalSubnet {
    encoder: Vec<nn::Conv2D>,
    to_latent: nn::Linear,
    from_latent: nn::Linear,
    decoder: Vec<nn::Conv2D>,
    out: nn::Conv2D,
    /// The student's second head (on its trunk): the prediction of the autoencoder's output.
    pub head: nn::Conv2D,
    config: GlobalConfig,
    /// `[q_low, q_high]` of the local map on good images.
    pub local_q: Tensor,
    /// `[q_low, q_high]` of the global map on good images.
    pub global_q: Tensor,
}

impl GlobalSubnet {
    /// The autoencoder under `student / "autoencoder"`, the head as `student / "global_head"`, the
    /// quantiles under `anomaly`.
    pub fn new(
        student: &nn::Path,
        anomaly: &nn::Path,
        in_channels: i64,
        student_channels: i64,
        dim: i64,
        config: GlobalConfig,
    ) -> Result<Self> {
        let bad = |key, value: String, expected| Error::InvalidConfig {
            config: "gc_anomaly_detection",
            key,
            value,
            expected,
        };
        if !(8..=512).contains(&config.channels) {
            return Err(bad("channels", config.channels.to_string(), "in 8 … 512"));
        }
        if !(1..=1024).contains(&config.latent_dim) {
            return Err(bad("latent_dim", config.latent_dim.to_string(), "in 1 … 1024"));
        }
        if !(1..=16).contains(&config.grid) {
            return Err(bad("grid", config.grid.to_string(), "in 1 … 16"));
        }
        let p = student / "autoencoder";
        let c = config.channels;
        let widths = [32.min(c), 32.min(c), c, c, c];
        let mut encoder = Vec::new();
        let mut cin = in_channels;
        for (i, &cout) in widths.iter().enumerate() {
            let cfg = nn::ConvConfig { stride: 2, padding: 1, ..Default::default() };
            encoder.push(nn::conv2d(&p / format!("enc{i}"), cin, cout, 3, cfg));
            cin = cout;
        }
        let cells = c * config.grid * config.grid;
        let to_latent = nn::linear(&p / "to_latent", cells, config.latent_dim, Default::default());
        let from_latent = nn::linear(&p / "from_latent", config.latent_dim, cells, Default::default());
        let pad = nn::ConvConfig { padding: 1, ..Default::default() };
        let decoder = (0..4).map(|i| nn::conv2d(&p / format!("dec{i}"), c, c, 3, pad)).collect();
        let out = nn::conv2d(&p / "out", c, dim, 3, pad);
        let head = nn::conv2d(student / "global_head", student_channels, dim, 1, Default::default());
        let q = |name| {
            let t = anomaly.zeros_no_train(name, &[2]);
            tch::no_grad(|| {
                let _ = t.get(1).fill_(1.0);
            });
            t
        };
        Ok(Self {
            encoder,
            to_latent,
            from_latent,
            decoder,
            out,
            head,
            local_q: q("local_quantiles"),
            global_q: q("global_quantiles"),
            config,
        })
    }

    /// The autoencoder's reconstruction `[N, D, h, w]` of images `[N, C, H, W]` (the network's layout)
    /// at the teacher's map size `(h, w)`.
    pub fn autoencoder(&self, x: &Tensor, size: (i64, i64)) -> Tensor {
        let mut y = x.shallow_clone();
        for conv in &self.encoder {
            y = y.apply(conv).relu();
        }
        let g = self.config.grid;
        // No batch size in the shapes: a traced graph (the TorchScript export) takes any.
        let z = y.adaptive_avg_pool2d([g, g]).flatten(1, -1).apply(&self.to_latent);
        let mut y = z.apply(&self.from_latent).relu().view([-1, self.config.channels, g, g]);
        y = crate::device::channels_last(&y);
        // Four steps from the grid to the map size, geometrically spaced.
        for (i, conv) in self.decoder.iter().enumerate() {
            let t = (i + 1) as f64 / self.decoder.len() as f64;
            let step = |full: i64| ((g as f64) * (full as f64 / g as f64).powf(t)).round().max(1.0) as i64;
            let s = if i + 1 == self.decoder.len() { size } else { (step(size.0), step(size.1)) };
            y = y.upsample_bilinear2d([s.0, s.1], false, None, None).apply(conv).relu();
        }
        y.apply(&self.out)
    }

    /// Maps `[N, 1, h, w]` normalised by quantiles `q` (`[q_low, q_high]`).
    pub fn normalise(maps: &Tensor, q: &Tensor) -> Tensor {
        let low = q.get(0);
        let span = (q.get(1) - &low).clamp_min(1e-12);
        (maps - low) / span
    }

    /// Sets the quantiles from raw local and global maps (any shape) of good images.
    pub fn set_quantiles(&mut self, local: &Tensor, global: &Tensor) {
        let q = Tensor::from_slice(&NORMALISATION_QUANTILES).to_kind(Kind::Float).to_device(local.device());
        // libtorch's quantile takes at most 2²⁴ values: every k-th beyond that.
        let values = |t: &Tensor| {
            let flat = t.flatten(0, -1);
            let k = (flat.size()[0] >> 23) + 1;
            if k > 1 { flat.slice(0, 0, None, k) } else { flat }
        };
        tch::no_grad(|| {
            self.local_q.copy_(&values(local).quantile(&q, None, false, "linear"));
            self.global_q.copy_(&values(global).quantile(&q, None, false, "linear"));
        });
    }
}
