//! Command-line options of detection models, shared by `dlkit model create` and `dlkit train`, and the
//! drawing of detections for `dlkit apply --overlay`.

use anyhow::{Context, Result, bail};
use clap::Args;
use dlkit::DetectorOptions;
use dlkit::data::{DLResult, InstanceType};
use dlkit::eval::plots::DrawnBox;

/// OD parameters (SPEC §5.2); unset ones keep HALCON's defaults.
#[derive(Debug, Args, Default)]
pub struct DetectionArgs {
    /// Detection: rectangle1 (axis-aligned) | rectangle2 (rotated) boxes (default: the dataset's).
    #[arg(long)]
    pub instance_type: Option<String>,
    /// Detection: finest pyramid level, stride 2^level (default 2).
    #[arg(long)]
    pub min_level: Option<i64>,
    /// Detection: coarsest pyramid level (default 4).
    #[arg(long)]
    pub max_level: Option<i64>,
    /// Detection: anchor sizes per level (default 3).
    #[arg(long)]
    pub anchor_num_subscales: Option<usize>,
    /// Detection: anchor aspect ratios height/width, comma-separated (default 1,2,0.5).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub anchor_aspect_ratios: Vec<f64>,
    /// Detection, rectangle2: anchor angles in radians, comma-separated (default 0).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub anchor_angles: Vec<f64>,
    /// Detection: high | medium (head width and depth; default high).
    #[arg(long)]
    pub capacity: Option<String>,
    /// Detection, rectangle2: boxes have no front (φ modulo π).
    #[arg(long)]
    pub ignore_direction: bool,
    /// Detection, rectangle2: class ids whose boxes are axis-parallel, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub class_ids_no_orientation: Vec<i64>,
    /// Detection, rectangle2: periodic | kld | probiou (the box loss; default periodic).
    #[arg(long)]
    pub rotated_box_loss: Option<String>,
    /// Detection, rectangle1: l1 | giou (the box loss; default l1).
    #[arg(long)]
    pub box_loss: Option<String>,
    /// Detection: iou | atss (how training matches anchors to boxes; default iou).
    #[arg(long)]
    pub anchor_assignment: Option<String>,
    /// Detection: detections kept per image (default 100).
    #[arg(long)]
    pub max_num_detections: Option<usize>,
    /// Detection: NMS IoU within a class (default 0.5).
    #[arg(long)]
    pub max_overlap: Option<f64>,
    /// Detection: NMS IoU across classes (default 1.0 = off).
    #[arg(long)]
    pub max_overlap_class_agnostic: Option<f64>,
    /// Detection: lowest confidence kept (default 0.5).
    #[arg(long)]
    pub min_confidence: Option<f64>,
    /// Detection: none | mirror | dihedral (views fused at inference; default none).
    #[arg(long)]
    pub test_time_augmentation: Option<String>,
}

impl DetectionArgs {
    /// The detector options, `instance_type` defaulting to `default`.
    pub fn options(&self, default: InstanceType) -> Result<DetectorOptions> {
        let instance_type = match self.instance_type.as_deref() {
            None => default,
            Some("rectangle1") => InstanceType::Rectangle1,
            Some("rectangle2") => InstanceType::Rectangle2,
            Some(other) => bail!("--instance-type {other}: expected rectangle1 or rectangle2"),
        };
        let mut o = DetectorOptions { instance_type, ..Default::default() };
        if let Some(v) = self.min_level {
            o.min_level = v;
        }
        if let Some(v) = self.max_level {
            o.max_level = v;
        }
        if let Some(v) = self.anchor_num_subscales {
            o.anchor_num_subscales = v;
        }
        if !self.anchor_aspect_ratios.is_empty() {
            o.anchor_aspect_ratios.clone_from(&self.anchor_aspect_ratios);
        }
        if !self.anchor_angles.is_empty() {
            o.anchor_angles.clone_from(&self.anchor_angles);
        }
        o.capacity = match self.capacity.as_deref() {
            None | Some("high") => dlkit::nets::Capacity::High,
            Some("medium") => dlkit::nets::Capacity::Medium,
            Some(other) => bail!("--capacity {other}: expected high or medium"),
        };
        o.ignore_direction = self.ignore_direction;
        if let Some(loss) = &self.rotated_box_loss {
            o.rotated_box_loss = serde_json::from_value(serde_json::json!(loss)).map_err(|_| {
                anyhow::anyhow!("--rotated-box-loss {loss}: expected periodic, kld or probiou")
            })?;
        }
        if let Some(loss) = &self.box_loss {
            o.box_loss = serde_json::from_value(serde_json::json!(loss))
                .map_err(|_| anyhow::anyhow!("--box-loss {loss}: expected l1 or giou"))?;
        }
        if let Some(a) = &self.anchor_assignment {
            o.anchor_assignment = serde_json::from_value(serde_json::json!(a))
                .map_err(|_| anyhow::anyhow!("--anchor-assignment {a}: expected iou or atss"))?;
        }
        o.class_ids_no_orientation.clone_from(&self.class_ids_no_orientation);
        let p = &mut o.params;
        if let Some(v) = self.max_num_detections {
            p.max_num_detections = v;
        }
        if let Some(v) = self.max_overlap {
            p.max_overlap = v;
        }
        if let Some(v) = self.max_overlap_class_agnostic {
            p.max_overlap_class_agnostic = v;
        }
        if let Some(v) = self.min_confidence {
            p.min_confidence = v;
        }
        if let Some(t) = &self.test_time_augmentation {
            p.test_time_augmentation = serde_json::from_value(serde_json::json!(t)).map_err(|_| {
                anyhow::anyhow!("--test-time-augmentation {t}: expected none, mirror or dihedral")
            })?;
        }
        Ok(o)
    }
}

/// The box type of a dataset's first sample with boxes (rectangle1 when none has any).
pub fn instance_type_of(ds: &dlkit::data::DLDataset) -> InstanceType {
    ds.samples.iter().find_map(dlkit::data::SampleEntry::instance_type).unwrap_or_default()
}

/// The boxes of a detection result to draw: corners at their true angle, colour by class, label
/// "name confidence".
pub fn drawn_boxes(r: &DLResult, class_ids: &[i64]) -> Result<Vec<DrawnBox>> {
    let ids = r.bbox_class_id.as_deref().unwrap_or_default();
    let names = r.bbox_class_name.as_deref().unwrap_or_default();
    let conf = r.bbox_confidence.as_deref().unwrap_or_default();
    let color = |i: usize| class_ids.iter().position(|&c| c == i64::from(ids[i].get())).unwrap_or(0);
    let label = |i: usize| format!("{} {:.0}%", names.get(i).map_or("", String::as_str), 100.0 * conf[i]);
    let mut out = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        let corners = if let (Some(r1), Some(c1), Some(r2), Some(c2)) =
            (&r.bbox_row1, &r.bbox_col1, &r.bbox_row2, &r.bbox_col2)
        {
            vec![(r1[i], c1[i]), (r1[i], c2[i]), (r2[i], c2[i]), (r2[i], c1[i])]
        } else {
            let get = |v: &Option<Vec<f64>>| {
                v.as_ref().and_then(|v| v.get(i).copied()).context("a rotated box key")
            };
            let b = dlkit::core::Rect2::new(
                get(&r.bbox_row)?,
                get(&r.bbox_col)?,
                get(&r.bbox_phi)?,
                get(&r.bbox_length1)?,
                get(&r.bbox_length2)?,
            )?;
            b.corners().to_vec()
        };
        out.push(DrawnBox { corners, color: color(i), label: label(i) });
    }
    Ok(out)
}
