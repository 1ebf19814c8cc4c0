//! Segmentation measures (SPEC §7): pixel accuracy, class pixel accuracy, mean accuracy, class IoU,
//! mean IoU (over classes with ground truth), frequency-weighted IoU, pixel confusion matrix;
//! ignore classes excluded.

use crate::{Error, Result};
use serde::Serialize;

/// A streaming segmentation accumulator: pixel confusion counts over class indices 0 … n−1.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationAccumulator {
    n: usize,
    /// counts[predicted * n + ground_truth]
    counts: Vec<u64>,
}

/// Segmentation measures with HALCON's key names; −1 where undefined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentationEvaluation {
    /// Correct pixels / all counted pixels.
    pub pixel_accuracy: f64,
    /// Per class: correct / ground-truth pixels of the class (−1 without ground truth).
    pub class_pixel_accuracy: Vec<f64>,
    /// Mean of the defined class pixel accuracies.
    pub mean_accuracy: f64,
    /// Per class: TP / (TP + FP + FN) (−1 without ground truth).
    pub class_iou: Vec<f64>,
    /// Mean of the defined class IoUs (classes with ground truth).
    pub mean_iou: f64,
    /// Σ_c freq_c · IoU_c over classes with ground truth.
    pub frequency_weighted_iou: f64,
    /// Pixel confusion matrix, rows = predicted, columns = ground truth.
    pub pixel_confusion_matrix: Vec<u64>,
}

impl SegmentationAccumulator {
    /// An empty accumulator for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self { n: num_classes, counts: vec![0; num_classes * num_classes] }
    }

    /// Adds one image: predicted and ground-truth class indices per pixel; pixels whose ground truth
    /// is in `ignore` (or negative) are skipped.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for different lengths; [`Error::ClassOutOfRange`] for an index ≥ n.
    pub fn add(&mut self, predicted: &[i64], ground_truth: &[i64], ignore: &[i64]) -> Result<()> {
        if predicted.len() != ground_truth.len() {
            return Err(Error::InvalidInput(format!(
                "{} predicted pixels, {} ground-truth pixels",
                predicted.len(),
                ground_truth.len()
            )));
        }
        for (&p, &g) in predicted.iter().zip(ground_truth) {
            if g < 0 || ignore.contains(&g) {
                continue;
            }
            for (index, role) in [(p, "predicted"), (g, "ground truth")] {
                if index < 0 || index as usize >= self.n {
                    return Err(Error::ClassOutOfRange {
                        index: index.max(0) as usize,
                        num_classes: self.n,
                        role,
                    });
                }
            }
            self.counts[p as usize * self.n + g as usize] += 1;
        }
        Ok(())
    }

    /// Adds another accumulator's counts.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] for different class counts.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.n != self.n {
            return Err(Error::SizeMismatch(self.n, other.n));
        }
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// The measures.
    pub fn compute(&self) -> SegmentationEvaluation {
        let n = self.n;
        let get = |p: usize, g: usize| self.counts[p * n + g];
        let total: u64 = self.counts.iter().sum();
        let correct: u64 = (0..n).map(|c| get(c, c)).sum();
        let gt: Vec<u64> = (0..n).map(|c| (0..n).map(|p| get(p, c)).sum()).collect();
        let pred: Vec<u64> = (0..n).map(|c| (0..n).map(|g| get(c, g)).sum()).collect();
        let class_pixel_accuracy: Vec<f64> =
            (0..n).map(|c| if gt[c] == 0 { -1.0 } else { get(c, c) as f64 / gt[c] as f64 }).collect();
        let class_iou: Vec<f64> = (0..n)
            .map(|c| if gt[c] == 0 { -1.0 } else { get(c, c) as f64 / (gt[c] + pred[c] - get(c, c)) as f64 })
            .collect();
        let mean = |v: &[f64]| {
            let d: Vec<f64> = v.iter().copied().filter(|&x| x >= 0.0).collect();
            if d.is_empty() { -1.0 } else { d.iter().sum::<f64>() / d.len() as f64 }
        };
        let fw = if total == 0 {
            -1.0
        } else {
            (0..n).filter(|&c| gt[c] > 0).map(|c| gt[c] as f64 / total as f64 * class_iou[c]).sum()
        };
        SegmentationEvaluation {
            pixel_accuracy: if total == 0 { -1.0 } else { correct as f64 / total as f64 },
            mean_accuracy: mean(&class_pixel_accuracy),
            mean_iou: mean(&class_iou),
            class_pixel_accuracy,
            class_iou,
            frequency_weighted_iou: fw,
            pixel_confusion_matrix: self.counts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values_with_ignore() {
        let mut acc = SegmentationAccumulator::new(3);
        acc.add(&[0, 0, 1, 1, 2, 0], &[0, 1, 1, 1, 2, 2], &[2]).unwrap();
        let e = acc.compute();
        assert_eq!(e.pixel_accuracy, 3.0 / 4.0);
        assert_eq!(e.class_pixel_accuracy, vec![1.0, 2.0 / 3.0, -1.0]);
        assert_eq!(e.class_iou, vec![0.5, 2.0 / 3.0, -1.0]);
        assert!((e.mean_iou - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
        assert!((e.frequency_weighted_iou - (0.25 * 0.5 + 0.75 * 2.0 / 3.0)).abs() < 1e-15);
        assert!(acc.add(&[5], &[0], &[]).is_err());
    }
}
