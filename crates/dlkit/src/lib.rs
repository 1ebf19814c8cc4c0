//! dlkit: deep learning for industrial machine vision, in HALCON's vocabulary.
//!
//! This facade re-exports the layered crates — [`core`] (ids, boxes, geometry), [`data`] (datasets),
//! [`eval`] (measures), [`io`] (file formats), [`nets`] (architectures) and [`train`] (training) — and
//! wraps their errors in one [`Error`]. [`Model`] is a network of one method (classification,
//! detection, segmentation, anomaly detection) with its classes, preprocessing and parameters: create,
//! get/set parameters, apply, write/read, train through [`train`] (anomaly models: `fit_patchcore`,
//! `train_dl_model_anomaly_dataset`).

#![warn(missing_docs)]

pub use dl_core as core;
pub use dl_data as data;
pub use dl_eval as eval;
pub use dl_io as io;
pub use dl_nets as nets;
pub use dl_train as train;

mod anomaly;
mod backbone;
mod detection;
pub mod fuzz;
mod heatmap;
mod model;
mod pretrained;
mod segmentation;
pub use anomaly::{ANOMALY_PARAM_NAMES, AnomalyTrainParam, AnomalyTrainResult, FitReport, NokInTrain};
pub use detection::{
    DETECTION_PARAM_NAMES, DetectionParamReport, DetectorOptions, determine_dl_model_detection_param,
};
pub use heatmap::{Heatmap, HeatmapMethod, heatmap_overlay};
pub use model::{Architecture, MethodConfig, Model, ModelDescription, ModelParams, PARAM_NAMES, SolverType};
pub use pretrained::{imagenet_class_names, pretrained_names, weights_path};
pub use segmentation::{SEGMENTATION_PARAM_NAMES, SegmenterOptions};

/// Any dlkit error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From dl-core.
    #[error(transparent)]
    Core(#[from] dl_core::Error),
    /// From dl-data.
    #[error(transparent)]
    Data(#[from] dl_data::Error),
    /// From dl-eval.
    #[error(transparent)]
    Eval(#[from] dl_eval::Error),
    /// From dl-io.
    #[error(transparent)]
    Io(#[from] dl_io::Error),
    /// From dl-nets.
    #[error(transparent)]
    Nets(#[from] dl_nets::Error),
    /// From dl-train.
    #[error(transparent)]
    Train(#[from] dl_train::Error),
    /// A model parameter that cannot be read or set.
    #[error("model parameter `{name}`: {message}")]
    Param {
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Facts about this build and machine, as `dlkit info` prints them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildInfo {
    /// dlkit's version.
    pub version: &'static str,
    /// Number of CUDA devices libtorch sees (0 on a CPU-only machine).
    pub cuda_devices: i64,
    /// Whether cuDNN is usable.
    pub cudnn: bool,
    /// Threads libtorch uses on the CPU.
    pub cpu_threads: i32,
}

impl BuildInfo {
    /// Reads the facts from libtorch.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            cuda_devices: tch::Cuda::device_count(),
            cudnn: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads(),
        }
    }
}
