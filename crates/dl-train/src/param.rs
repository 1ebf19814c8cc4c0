//! `create_dl_train_param`: what `train_dl_model` does (SPEC §6.2), serialisable with HALCON's names.

use crate::{Error, Result};
use dl_data::preprocess::AugmentParams;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// Changes a model parameter during training: `initial_value` from the start, then `values[i]` from
/// epoch `epochs[i]` on (epochs may be fractional; they are applied at the first iteration at or after
/// them). Typical use: a learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeStrategy {
    /// The model parameter, by name (e.g. `learning_rate`, `momentum`).
    pub model_param: String,
    /// The value from epoch 0; `None` takes the model's value when training starts.
    #[serde(default)]
    pub initial_value: Option<Value>,
    /// Increasing epochs at which the values apply.
    pub epochs: Vec<f64>,
    /// The values, parallel to `epochs`.
    pub values: Vec<Value>,
}

impl ChangeStrategy {
    /// The value that applies at (fractional) epoch `epoch`.
    pub fn value_at(&self, epoch: f64) -> Option<&Value> {
        let mut value = self.initial_value.as_ref();
        for (e, v) in self.epochs.iter().zip(&self.values) {
            if epoch + 1e-9 >= *e {
                value = Some(v);
            }
        }
        value
    }

    /// A learning-rate step schedule: `initial`, multiplied by `factor` at each of `epochs`.
    pub fn learning_rate_steps(initial: f64, factor: f64, epochs: &[f64]) -> Self {
        let values = (1..=epochs.len()).map(|i| Value::from(initial * factor.powi(i as i32))).collect();
        Self {
            model_param: "learning_rate".into(),
            initial_value: Some(Value::from(initial)),
            epochs: epochs.to_vec(),
            values,
        }
    }
}

/// When a model file (plus its training-info file) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SerializationStrategy {
    /// `model_best.dlm` whenever the validation measure improves.
    Best,
    /// `model_final.dlm` when training ends.
    Final,
    /// `model_epoch_NNNN.dlm` every `every` epochs.
    Epochs {
        /// The interval in epochs (≥ 1).
        every: usize,
    },
    /// `model_current.dlm` after every epoch, overwritten.
    Current,
}

impl SerializationStrategy {
    /// The file stem of the model written at the end of (1-based) `epoch`.
    pub fn stem(&self, epoch: usize) -> String {
        match self {
            Self::Best => "model_best".into(),
            Self::Final => "model_final".into(),
            Self::Epochs { .. } => format!("model_epoch_{epoch:04}"),
            Self::Current => "model_current".into(),
        }
    }
}

/// HALCON's train param (`create_dl_train_param`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParam {
    /// Number of epochs (passes over the train split).
    pub num_epochs: usize,
    /// Evaluate on the validation split every this many epochs, and after the last (0: only after the
    /// last).
    pub evaluation_interval_epochs: usize,
    /// Seed of the epoch orders, augmentation and dropout.
    pub seed: u64,
    /// Augmentation of training samples (`None`: off). Its own seed is replaced by `seed`.
    pub augmentation: Option<AugmentParams>,
    /// Parameter schedules.
    pub change_strategies: Vec<ChangeStrategy>,
    /// Which model files are written.
    pub serialization_strategies: Vec<SerializationStrategy>,
    /// Where model files, the training log, the curves and the checkpoint go.
    pub output_dir: PathBuf,
    /// Classification: the k of the top-k errors evaluated (top-1 is the comparison key).
    pub evaluation_top_k: usize,
    /// Show a progress bar.
    pub display: bool,
    /// Batches prepared ahead by the data pipeline.
    pub prefetch_batches: usize,
    /// Stop after the first epoch whose mean loss falls below this (HALCON's `error_threshold` of
    /// anomaly training; `None`: run every epoch). That epoch counts as the last: the final model is
    /// written and a resume finds nothing left to do.
    pub error_threshold: Option<f64>,
    /// Anomaly detection: leave 'nok' images of the train split out (default: refuse them, naming the
    /// first; anomaly models learn from good images only).
    pub skip_nok_train: bool,
    /// An exponential moving average of the weights (Polyak averaging, as YOLOv5's and timm's
    /// `ModelEma`): after step t every variable's average moves toward it by 1 − d_t, with
    /// d_t = min(`ema_decay`, (1 + t) / (10 + t)) so that early averages are not dominated by the
    /// initial weights (the warm-up term stays below d for the first (10d − 1) / (1 − d) steps: 440
    /// for 0.98, so in shorter runs every decay from there up averages alike). Validation, the model
    /// files and the returned model use the average; training continues on the raw weights (both are
    /// in the checkpoint). `None` (default): off.
    pub ema_decay: Option<f64>,
}

impl Default for TrainParam {
    fn default() -> Self {
        Self {
            num_epochs: 10,
            evaluation_interval_epochs: 1,
            seed: 42,
            augmentation: None,
            change_strategies: Vec::new(),
            serialization_strategies: vec![SerializationStrategy::Best, SerializationStrategy::Final],
            output_dir: PathBuf::from("training"),
            evaluation_top_k: 1,
            display: true,
            prefetch_batches: 4,
            error_threshold: None,
            skip_nok_train: false,
            ema_decay: None,
        }
    }
}

impl TrainParam {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Param`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &'static str, message: String| Err(Error::Param { key, message });
        if self.num_epochs == 0 {
            return bad("num_epochs", "0: expected at least 1".into());
        }
        if self.evaluation_top_k == 0 {
            return bad("evaluation_top_k", "0: expected at least 1".into());
        }
        if let Some(a) = &self.augmentation {
            a.validate()?;
        }
        if let Some(t) = self.error_threshold
            && !(t >= 0.0 && t.is_finite())
        {
            return bad("error_threshold", format!("{t}: expected a finite number ≥ 0"));
        }
        for s in &self.change_strategies {
            if s.epochs.len() != s.values.len() {
                return bad(
                    "change_strategies",
                    format!("`{}`: {} epochs for {} values", s.model_param, s.epochs.len(), s.values.len()),
                );
            }
            if s.epochs.windows(2).any(|w| w[1] < w[0])
                || s.epochs.iter().any(|e| !(e.is_finite() && *e >= 0.0))
            {
                return bad(
                    "change_strategies",
                    format!("`{}`: epochs must be finite, ≥ 0 and increasing", s.model_param),
                );
            }
        }
        if let Some(d) = self.ema_decay
            && !(d > 0.0 && d < 1.0)
        {
            return bad("ema_decay", format!("{d}: expected a decay in (0, 1)"));
        }
        for s in &self.serialization_strategies {
            if let SerializationStrategy::Epochs { every: 0 } = s {
                return bad("serialization_strategies", "epochs every 0: expected at least 1".into());
            }
        }
        Ok(())
    }

    /// The keys a resumed run must keep: `seed` and `augmentation` (they fix the epoch orders and the
    /// augmented samples), and `ema_decay` (the checkpoint's average was taken with it). Schedules,
    /// epochs, evaluation and serialization may change on resume — e.g. a lower learning rate after a
    /// NaN stop.
    pub(crate) fn resume_key(&self) -> Value {
        serde_json::json!({
            "seed": self.seed,
            "augmentation": self.augmentation,
            "skip_nok_train": self.skip_nok_train,
            "ema_decay": self.ema_decay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn change_strategy_values_apply_from_their_epoch_on() {
        let s = ChangeStrategy::learning_rate_steps(0.1, 0.1, &[2.0, 3.5]);
        let at = |e| s.value_at(e).and_then(Value::as_f64).unwrap();
        assert_eq!(at(0.0), 0.1);
        assert_eq!(at(1.99), 0.1);
        assert!((at(2.0) - 0.01).abs() < 1e-15);
        assert!((at(3.49) - 0.01).abs() < 1e-15);
        assert!((at(3.5) - 0.001).abs() < 1e-15);
        assert!((at(100.0) - 0.001).abs() < 1e-15);
    }

    #[test]
    fn json_round_trip_and_validation() {
        let p = TrainParam {
            augmentation: Some(AugmentParams {
                mirror: Some(dl_data::preprocess::Mirror::Cols),
                ..Default::default()
            }),
            change_strategies: vec![ChangeStrategy::learning_rate_steps(0.01, 0.5, &[1.0])],
            serialization_strategies: vec![
                SerializationStrategy::Epochs { every: 2 },
                SerializationStrategy::Current,
            ],
            ..Default::default()
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["serialization_strategies"][0], json!({"type": "epochs", "every": 2}));
        assert_eq!(v["augmentation"]["mirror"], "c");
        assert_eq!(serde_json::from_value::<TrainParam>(v).unwrap(), p);
        assert!(serde_json::from_value::<TrainParam>(json!({"num_epoch": 3})).is_err());
        let bad = TrainParam { num_epochs: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("num_epochs"));
        for d in [0.0, 1.0, f64::NAN] {
            let bad = TrainParam { ema_decay: Some(d), ..Default::default() };
            assert!(bad.validate().unwrap_err().to_string().contains("ema_decay"), "{d}");
        }
        assert!(TrainParam { ema_decay: Some(0.99), ..Default::default() }.validate().is_ok());
        let mut bad = TrainParam::default();
        bad.change_strategies.push(ChangeStrategy {
            model_param: "momentum".into(),
            initial_value: None,
            epochs: vec![2.0, 1.0],
            values: vec![json!(0.5), json!(0.9)],
        });
        assert!(bad.validate().unwrap_err().to_string().contains("increasing"));
    }
}
