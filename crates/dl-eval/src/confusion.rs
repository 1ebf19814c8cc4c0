//! Classification confusion matrix: rows = predicted class, columns = ground-truth class.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A streaming confusion matrix over class indices 0 … n−1. Rows are predicted classes, columns
/// ground-truth classes (SPEC §1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    num_classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self { num_classes, counts: vec![0; num_classes * num_classes] }
    }

    /// A matrix from row-major counts (rows predicted), e.g. a segmentation's pixel confusion matrix.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when there are not `num_classes²` counts.
    pub fn from_counts(num_classes: usize, counts: Vec<u64>) -> Result<Self> {
        if counts.len() != num_classes * num_classes {
            return Err(Error::InvalidInput(format!("{} counts for {num_classes} classes", counts.len())));
        }
        Ok(Self { num_classes, counts })
    }

    /// Counts one prediction.
    ///
    /// # Errors
    /// [`Error::ClassOutOfRange`] when an index is ≥ the number of classes.
    pub fn add(&mut self, predicted: usize, ground_truth: usize) -> Result<()> {
        for (index, role) in [(predicted, "predicted"), (ground_truth, "ground truth")] {
            if index >= self.num_classes {
                return Err(Error::ClassOutOfRange { index, num_classes: self.num_classes, role });
            }
        }
        self.counts[predicted * self.num_classes + ground_truth] += 1;
        Ok(())
    }

    /// Adds the counts of `other` (accumulators of parallel workers).
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the class counts differ.
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.num_classes != self.num_classes {
            return Err(Error::SizeMismatch(self.num_classes, other.num_classes));
        }
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Count of samples predicted as `predicted` whose ground truth is `ground_truth`.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn get(&self, predicted: usize, ground_truth: usize) -> u64 {
        assert!(predicted < self.num_classes && ground_truth < self.num_classes, "index out of range");
        self.counts[predicted * self.num_classes + ground_truth]
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Total number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Top-1 error: the fraction of samples off the diagonal; `None` before any sample.
    pub fn top1_error(&self) -> Option<f64> {
        let total = self.total();
        let correct: u64 = (0..self.num_classes).map(|c| self.get(c, c)).sum();
        (total > 0).then(|| (total - correct) as f64 / total as f64)
    }

    /// The relative matrix: each column divided by its ground-truth count (a class without ground truth
    /// gives a zero column). Row-major, rows = predicted.
    pub fn relative(&self) -> Vec<f64> {
        let n = self.num_classes;
        let column_sums: Vec<u64> = (0..n).map(|gt| (0..n).map(|p| self.get(p, gt)).sum()).collect();
        (0..n * n)
            .map(|i| {
                let sum = column_sums[i % n];
                if sum == 0 { 0.0 } else { self.counts[i] as f64 / sum as f64 }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rows_are_predictions_and_columns_sum_to_one() {
        let mut m = ConfusionMatrix::new(3);
        for (p, g) in [(0, 0), (1, 0), (1, 1), (2, 1), (2, 1)] {
            m.add(p, g).unwrap();
        }
        assert_eq!(m.get(1, 0), 1);
        assert_eq!(m.get(2, 1), 2);
        assert_eq!(m.top1_error(), Some(3.0 / 5.0));
        let rel = m.relative();
        assert_eq!(&rel[..], &[0.5, 0.0, 0.0, 0.5, 1.0 / 3.0, 0.0, 0.0, 2.0 / 3.0, 0.0]);
        assert_eq!(m.add(3, 0), Err(Error::ClassOutOfRange { index: 3, num_classes: 3, role: "predicted" }));
    }

    proptest! {
        #[test]
        fn merged_equals_single(pairs in proptest::collection::vec((0usize..4, 0usize..4), 0..60), cut in 0usize..60) {
            let cut = cut.min(pairs.len());
            let mut all = ConfusionMatrix::new(4);
            let (mut a, mut b) = (ConfusionMatrix::new(4), ConfusionMatrix::new(4));
            for (i, &(p, g)) in pairs.iter().enumerate() {
                all.add(p, g).unwrap();
                if i < cut { a.add(p, g).unwrap() } else { b.add(p, g).unwrap() }
            }
            a.merge(&b).unwrap();
            prop_assert_eq!(a, all);
        }
    }
}
