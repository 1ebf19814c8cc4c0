//! Typed access to the box lists of a sample entry (`bbox_label_id` with the rectangle1 or rectangle2 keys).

use crate::{Error, Result, SampleEntry};
use dl_core::{ClassId, Rect1, Rect2};
use serde::{Deserialize, Serialize};

/// The box type of a detection dataset (HALCON's `instance_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InstanceType {
    /// Axis-aligned boxes: `bbox_row1`, `bbox_col1`, `bbox_row2`, `bbox_col2`.
    #[default]
    Rectangle1,
    /// Rotated boxes: `bbox_row`, `bbox_col`, `bbox_phi`, `bbox_length1`, `bbox_length2`.
    Rectangle2,
}

impl SampleEntry {
    /// The box type of this sample: rectangle2 when it has `bbox_phi`, rectangle1 when it has `bbox_row1`,
    /// none otherwise.
    pub fn instance_type(&self) -> Option<InstanceType> {
        if self.bbox_phi.is_some() {
            Some(InstanceType::Rectangle2)
        } else if self.bbox_row1.is_some() {
            Some(InstanceType::Rectangle1)
        } else {
            None
        }
    }

    /// Number of boxes (length of `bbox_label_id`).
    pub fn num_boxes(&self) -> usize {
        self.bbox_label_id.as_ref().map_or(0, Vec::len)
    }

    fn lists<'a, const N: usize>(
        &'a self,
        keys: [(&'static str, &'a Option<Vec<f64>>); N],
    ) -> Result<Option<[&'a [f64]; N]>> {
        let n = self.num_boxes();
        let present = keys.iter().filter(|(_, v)| v.is_some()).count();
        if present == 0 {
            return if n == 0 || self.bbox_label_id.is_none() {
                Ok(None)
            } else {
                Err(self.problem(format!("{n} box labels but no {} list", keys[0].0)))
            };
        }
        let mut out = [&[][..]; N];
        for (i, (key, values)) in keys.iter().enumerate() {
            let Some(values) = values else {
                return Err(self.problem(format!("box key `{key}` is missing")));
            };
            if values.len() != n {
                return Err(
                    self.problem(format!("`{key}` has {} values, bbox_label_id has {n}", values.len()))
                );
            }
            out[i] = values;
        }
        Ok(Some(out))
    }

    fn problem(&self, message: String) -> Error {
        Error::Sample { image_id: self.image_id, message }
    }

    /// The rectangle1 boxes with their class ids (empty when the sample has none).
    ///
    /// # Errors
    /// [`Error::Sample`] when the lists have different lengths or a key is missing, [`Error::InvalidBox`]
    /// (naming the box) for a box with no area.
    pub fn rect1_boxes(&self) -> Result<Vec<(ClassId, Rect1)>> {
        let Some([r1, c1, r2, c2]) = self.lists([
            ("bbox_row1", &self.bbox_row1),
            ("bbox_col1", &self.bbox_col1),
            ("bbox_row2", &self.bbox_row2),
            ("bbox_col2", &self.bbox_col2),
        ])?
        else {
            return Ok(Vec::new());
        };
        let labels = self.bbox_label_id.as_deref().unwrap_or_default();
        (0..labels.len())
            .map(|i| {
                Rect1::new(r1[i], c1[i], r2[i], c2[i])
                    .map(|b| (labels[i], b))
                    .map_err(|source| Error::InvalidBox { image_id: self.image_id, index: i, source })
            })
            .collect()
    }

    /// The rectangle2 boxes with their class ids (empty when the sample has none).
    ///
    /// # Errors
    /// As [`SampleEntry::rect1_boxes`].
    pub fn rect2_boxes(&self) -> Result<Vec<(ClassId, Rect2)>> {
        let Some([r, c, p, l1, l2]) = self.lists([
            ("bbox_row", &self.bbox_row),
            ("bbox_col", &self.bbox_col),
            ("bbox_phi", &self.bbox_phi),
            ("bbox_length1", &self.bbox_length1),
            ("bbox_length2", &self.bbox_length2),
        ])?
        else {
            return Ok(Vec::new());
        };
        let labels = self.bbox_label_id.as_deref().unwrap_or_default();
        (0..labels.len())
            .map(|i| {
                Rect2::new(r[i], c[i], p[i], l1[i], l2[i])
                    .map(|b| (labels[i], b))
                    .map_err(|source| Error::InvalidBox { image_id: self.image_id, index: i, source })
            })
            .collect()
    }

    /// Replaces the boxes by rectangle1 boxes (clearing rectangle2 keys).
    pub fn set_rect1_boxes(&mut self, boxes: &[(ClassId, Rect1)]) {
        self.bbox_label_id = Some(boxes.iter().map(|b| b.0).collect());
        self.bbox_row1 = Some(boxes.iter().map(|b| b.1.row1()).collect());
        self.bbox_col1 = Some(boxes.iter().map(|b| b.1.col1()).collect());
        self.bbox_row2 = Some(boxes.iter().map(|b| b.1.row2()).collect());
        self.bbox_col2 = Some(boxes.iter().map(|b| b.1.col2()).collect());
        (self.bbox_row, self.bbox_col, self.bbox_phi, self.bbox_length1, self.bbox_length2) =
            (None, None, None, None, None);
    }

    /// Replaces the boxes by rectangle2 boxes (clearing rectangle1 keys).
    pub fn set_rect2_boxes(&mut self, boxes: &[(ClassId, Rect2)]) {
        self.bbox_label_id = Some(boxes.iter().map(|b| b.0).collect());
        self.bbox_row = Some(boxes.iter().map(|b| b.1.row()).collect());
        self.bbox_col = Some(boxes.iter().map(|b| b.1.col()).collect());
        self.bbox_phi = Some(boxes.iter().map(|b| b.1.phi()).collect());
        self.bbox_length1 = Some(boxes.iter().map(|b| b.1.length1()).collect());
        self.bbox_length2 = Some(boxes.iter().map(|b| b.1.length2()).collect());
        (self.bbox_row1, self.bbox_col1, self.bbox_row2, self.bbox_col2) = (None, None, None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_core::ImageId;

    #[test]
    fn inconsistent_lists_name_the_sample_and_key() {
        let mut s = SampleEntry { image_id: ImageId(9), ..Default::default() };
        s.set_rect1_boxes(&[(ClassId::new(1).unwrap(), Rect1::new(0.0, 0.0, 1.0, 1.0).unwrap())]);
        s.bbox_col2 = Some(vec![]);
        let err = s.rect1_boxes().unwrap_err().to_string();
        assert!(err.contains("sample 9") && err.contains("bbox_col2"), "{err}");
        s.bbox_col2 = Some(vec![0.0]);
        let err = s.rect1_boxes().unwrap_err();
        assert!(matches!(err, Error::InvalidBox { index: 0, .. }), "{err}");
    }
}
