//! Classification measures (SPEC §7): top-k error, per-class precision / recall / F-score and their
//! means, absolute and relative confusion matrices. Undefined values are −1, as in HALCON.

use crate::{ConfusionMatrix, Error, Result};
use serde::Serialize;

/// A streaming classification accumulator over class indices 0 … n−1.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationAccumulator {
    confusion: ConfusionMatrix,
    /// For k = 1 … max_k: samples whose ground truth is not among the top k.
    topk_misses: Vec<u64>,
    count: u64,
}

/// Classification measures with HALCON's key names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationEvaluation {
    /// Top-k error for k = 1 … max_k (`top1_error` is the first).
    pub topk_error: Vec<f64>,
    /// top-1 error.
    pub top1_error: f64,
    /// Per class: TP / (TP + FP), −1 when nothing was predicted as the class.
    pub class_precision: Vec<f64>,
    /// Per class: TP / (TP + FN), −1 when the class has no ground truth.
    pub class_recall: Vec<f64>,
    /// Per class: 2TP / (2TP + FP + FN) (= 2PR / (P + R) where both are defined; 0 when the class was
    /// predicted or present but never right), −1 when the class was neither predicted nor present.
    pub class_f_score: Vec<f64>,
    /// Mean of the defined class precisions (−1 if none).
    pub mean_precision: f64,
    /// Mean of the defined class recalls.
    pub mean_recall: f64,
    /// Mean of the defined class F-scores.
    pub mean_f_score: f64,
    /// Absolute confusion matrix, row-major, rows = predicted, columns = ground truth.
    pub absolute_confusion_matrix: Vec<u64>,
    /// Relative confusion matrix (columns sum to 1; zero column for classes without ground truth).
    pub relative_confusion_matrix: Vec<f64>,
    /// Number of samples.
    pub num_samples: u64,
}

fn mean_defined(v: &[f64]) -> f64 {
    let d: Vec<f64> = v.iter().copied().filter(|&x| x >= 0.0).collect();
    if d.is_empty() { -1.0 } else { d.iter().sum::<f64>() / d.len() as f64 }
}

impl ClassificationAccumulator {
    /// An empty accumulator for `num_classes` classes, tracking top-k errors up to `max_k` (≥ 1).
    pub fn new(num_classes: usize, max_k: usize) -> Self {
        Self { confusion: ConfusionMatrix::new(num_classes), topk_misses: vec![0; max_k.max(1)], count: 0 }
    }

    /// Adds one sample: its classes ranked by confidence (best first) and its ground truth.
    ///
    /// # Errors
    /// [`Error::ClassOutOfRange`] for an index ≥ the number of classes; [`Error::InvalidInput`] for an
    /// empty ranking.
    pub fn add(&mut self, ranked: &[usize], ground_truth: usize) -> Result<()> {
        let top = *ranked.first().ok_or_else(|| Error::InvalidInput("empty class ranking".into()))?;
        self.confusion.add(top, ground_truth)?;
        let pos = ranked.iter().position(|&c| c == ground_truth).unwrap_or(usize::MAX);
        for (k, miss) in self.topk_misses.iter_mut().enumerate() {
            if pos > k {
                *miss += 1;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Adds the counts of another accumulator.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] for different class counts or k.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.topk_misses.len() != self.topk_misses.len() {
            return Err(Error::SizeMismatch(self.topk_misses.len(), other.topk_misses.len()));
        }
        self.confusion.merge(&other.confusion)?;
        self.topk_misses.iter_mut().zip(&other.topk_misses).for_each(|(a, b)| *a += b);
        self.count += other.count;
        Ok(())
    }

    /// The measures.
    pub fn compute(&self) -> ClassificationEvaluation {
        let n = self.confusion.num_classes();
        let m = &self.confusion;
        let (mut precision, mut recall, mut f) = (vec![-1.0; n], vec![-1.0; n], vec![-1.0; n]);
        for c in 0..n {
            let tp = m.get(c, c) as f64;
            let predicted: u64 = (0..n).map(|g| m.get(c, g)).sum();
            let actual: u64 = (0..n).map(|p| m.get(p, c)).sum();
            if predicted > 0 {
                precision[c] = tp / predicted as f64;
            }
            if actual > 0 {
                recall[c] = tp / actual as f64;
            }
            let denominator = (predicted + actual) as f64;
            if denominator > 0.0 {
                f[c] = 2.0 * tp / denominator;
            }
        }
        let topk_error: Vec<f64> = self
            .topk_misses
            .iter()
            .map(|&x| if self.count == 0 { -1.0 } else { x as f64 / self.count as f64 })
            .collect();
        ClassificationEvaluation {
            top1_error: topk_error[0],
            topk_error,
            mean_precision: mean_defined(&precision),
            mean_recall: mean_defined(&recall),
            mean_f_score: mean_defined(&f),
            class_precision: precision,
            class_recall: recall,
            class_f_score: f,
            absolute_confusion_matrix: (0..n * n).map(|i| m.get(i / n, i % n)).collect(),
            relative_confusion_matrix: m.relative(),
            num_samples: self.count,
        }
    }

    /// The confusion matrix so far.
    pub fn confusion(&self) -> &ConfusionMatrix {
        &self.confusion
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values_and_undefined() {
        let mut acc = ClassificationAccumulator::new(3, 2);
        // gt 0 predicted 0; gt 0 predicted 1 (0 second); gt 1 predicted 1; class 2 never seen.
        acc.add(&[0, 1, 2], 0).unwrap();
        acc.add(&[1, 0, 2], 0).unwrap();
        acc.add(&[1, 2, 0], 1).unwrap();
        let e = acc.compute();
        assert_eq!(e.topk_error, vec![1.0 / 3.0, 0.0]);
        assert_eq!(e.class_precision, vec![1.0, 0.5, -1.0]);
        assert_eq!(e.class_recall, vec![0.5, 1.0, -1.0]);
        assert!((e.class_f_score[0] - 2.0 / 3.0).abs() < 1e-15);
        assert!((e.mean_precision - 0.75).abs() < 1e-15);
        assert_eq!(e.absolute_confusion_matrix, vec![1, 0, 0, 1, 1, 0, 0, 0, 0]);
    }
}
