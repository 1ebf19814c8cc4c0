//! Heatmaps (`gen_dl_model_heatmap`, SPEC §5.4): Grad-CAM from the last convolutional layer, and the
//! confidence-based occlusion heatmap; results in original image coordinates, plus a jet overlay.

use crate::{Error, Model, Result};
use dl_data::preprocess::{geometry::resize_bilinear, preprocess_sample};
use dl_data::{DLSample, HostImage};
use tch::{Kind, Tensor};

/// How a heatmap is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatmapMethod {
    /// Grad-CAM: ReLU of the gradient-weighted last convolutional feature map.
    GradCam,
    /// Guided Grad-CAM: the guided-backpropagation gradient of the class score with respect to the
    /// input pixels, multiplied by the Grad-CAM map upsampled to the network input; the heatmap is its
    /// absolute value summed over channels (fine-grained, pixel-level).
    GuidedGradCam,
    /// The drop of the target class's confidence when a patch (30 px, step 10, in network
    /// coordinates) is replaced by the image mean, averaged per pixel.
    Occlusion,
}

impl std::str::FromStr for HeatmapMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "grad_cam" => Ok(Self::GradCam),
            "occlusion" => Ok(Self::Occlusion),
            "guided_grad_cam" => Ok(Self::GuidedGradCam),
            other => Err(Error::Param {
                name: "method".into(),
                message: format!("`{other}`: expected grad_cam, guided_grad_cam or occlusion"),
            }),
        }
    }
}

/// A heatmap in original image coordinates (values in [0, 1]) and the class it explains.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// One value per original pixel, row-major.
    pub values: Vec<f32>,
    /// Original width.
    pub width: usize,
    /// Original height.
    pub height: usize,
    /// Class id explained.
    pub class_id: i64,
}

impl Model {
    /// The heatmap of `image` for `class_id` (the top class when `None`).
    ///
    /// # Errors
    /// [`Error::Param`] for a class id the model does not have; preprocessing and libtorch errors.
    pub fn heatmap(
        &self,
        image: &HostImage,
        method: HeatmapMethod,
        class_id: Option<i64>,
    ) -> Result<Heatmap> {
        let d = self.description();
        let net = self.classifier()?;
        let cl = |x: &Tensor| dl_nets::device::channels_last(x);
        let (sample, _) =
            preprocess_sample(DLSample::from_image(dl_core::ImageId(0), image.clone()), &d.preprocess)?;
        let (c, h, w) = (sample.image.channels as i64, sample.image.height as i64, sample.image.width as i64);
        let device = self.var_store().device();
        let x = Tensor::from_slice(&sample.image.data).reshape([1, c, h, w]).to_device(device);
        let target = match class_id {
            Some(id) => d.class_ids.iter().position(|&c| c == id).ok_or_else(|| Error::Param {
                name: "class_id".into(),
                message: format!("{id} is not one of the model's classes {:?}", d.class_ids),
            })?,
            None => {
                let _g = tch::no_grad_guard();
                net.logits_t(&cl(&x), false).argmax(-1, false).int64_value(&[0]) as usize
            }
        };
        let (map, mh, mw) = match method {
            HeatmapMethod::GradCam => {
                let cam = grad_cam(net, &x, target as i64)?;
                let (fh, fw) = (cam.size()[0] as usize, cam.size()[1] as usize);
                (to_vec(&cam), fh, fw)
            }
            HeatmapMethod::GuidedGradCam => {
                let cam = grad_cam(net, &x, target as i64)?.unsqueeze(0).unsqueeze(0).upsample_bilinear2d(
                    [h, w],
                    false,
                    None,
                    None,
                );
                let guided = dl_nets::guided::guided_backprop(&x, |x, rec| {
                    net.forward_guided(&cl(x), rec).get(0).get(target as i64)
                })?;
                let map = (guided * cam).abs().sum_dim_intlist([1i64].as_slice(), false, Kind::Float).get(0);
                (to_vec(&map), h as usize, w as usize)
            }
            HeatmapMethod::Occlusion => {
                let _g = tch::no_grad_guard();
                let base =
                    net.logits_t(&cl(&x), false).softmax(-1, Kind::Float).double_value(&[0, target as i64]);
                let mean = x.mean(Kind::Float).double_value(&[]);
                let (patch, step) = (30i64.min(h).min(w), 10i64);
                let positions: Vec<(i64, i64)> = (0..=(h - patch).max(0))
                    .step_by(step as usize)
                    .flat_map(|r| (0..=(w - patch).max(0)).step_by(step as usize).map(move |q| (r, q)))
                    .collect();
                let mut sum = vec![0f32; (h * w) as usize];
                let mut count = vec![0f32; (h * w) as usize];
                for chunk in positions.chunks(d.params.batch_size.max(1)) {
                    let batch = Tensor::cat(
                        &chunk
                            .iter()
                            .map(|&(r, q)| {
                                let y = x.copy();
                                let _ = y.narrow(2, r, patch).narrow(3, q, patch).fill_(mean);
                                y
                            })
                            .collect::<Vec<_>>(),
                        0,
                    );
                    let probs = net.logits_t(&cl(&batch), false).softmax(-1, Kind::Float);
                    for (i, &(r, q)) in chunk.iter().enumerate() {
                        let drop = (base - probs.double_value(&[i as i64, target as i64])) as f32;
                        for rr in r..r + patch {
                            for qq in q..q + patch {
                                sum[(rr * w + qq) as usize] += drop;
                                count[(rr * w + qq) as usize] += 1.0;
                            }
                        }
                    }
                }
                let map = sum
                    .iter()
                    .zip(&count)
                    .map(|(s, n)| if *n > 0.0 { (s / n).max(0.0) } else { 0.0 })
                    .collect();
                (map, h as usize, w as usize)
            }
        };
        let max = map.iter().copied().fold(0.0f32, f32::max);
        let norm: Vec<f32> = map.iter().map(|v| if max > 0.0 { v / max } else { 0.0 }).collect();
        let values = resize_bilinear(&norm, mw, mh, image.width, image.height);
        Ok(Heatmap { values, width: image.width, height: image.height, class_id: d.class_ids[target] })
    }
}

/// The Grad-CAM map `[fh, fw]` of the last feature map (eval mode) for class index `target`.
fn grad_cam(net: &dyn dl_nets::Classifier, x: &Tensor, target: i64) -> Result<Tensor> {
    let features = net.features_t(&dl_nets::device::channels_last(x), false).detach().set_requires_grad(true);
    let logits = net.head_t(&features, false);
    logits.get(0).get(target).f_backward()?;
    let grad = features.grad();
    let weights = grad.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    Ok((features.detach() * weights).sum_dim_intlist([1i64].as_slice(), false, Kind::Float).relu().get(0))
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    let t = t.to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous().flatten(0, -1);
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.copy_data(&mut v, n);
    v
}

/// The jet colour of a value in [0, 1].
fn jet(v: f32) -> [f32; 3] {
    let v = v.clamp(0.0, 1.0);
    let c = |x: f32| (1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0);
    [c(3.0), c(2.0), c(1.0)]
}

/// The image with the heatmap in jet colours blended at 50 %, as 8-bit RGB (gray images are
/// replicated; values are clamped to 0 … 255).
pub fn heatmap_overlay(image: &HostImage, heatmap: &Heatmap) -> image::RgbImage {
    let (w, h) = (image.width, image.height);
    let n = w * h;
    let mut out = image::RgbImage::new(w as u32, h as u32);
    for i in 0..n {
        let color = jet(heatmap.values[i]);
        let px: [u8; 3] = std::array::from_fn(|c| {
            let base = image.data[(c.min(image.channels - 1)) * n + i];
            (0.5 * base.clamp(0.0, 255.0) + 0.5 * 255.0 * color[c]).round() as u8
        });
        out.put_pixel((i % w) as u32, (i / w) as u32, image::Rgb(px));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_data::ModelType;
    use dl_data::preprocess::DLPreprocessParam;
    use dl_train::{SolverParam, build_optimizer, train_dl_model_batch};

    /// A 48×48 gray image, with a bright 10×10 patch at (r, c) when `spot`.
    fn image(spot: Option<(usize, usize)>, noise: u64) -> HostImage {
        let mut rng = dl_core::Rng::new(noise);
        let mut data: Vec<f32> = (0..48 * 48).map(|_| 60.0 + rng.below(40) as f32).collect();
        if let Some((r, c)) = spot {
            for rr in r..r + 10 {
                for cc in c..c + 10 {
                    data[rr * 48 + cc] = 250.0;
                }
            }
        }
        HostImage { width: 48, height: 48, channels: 1, bit_depth: 8, data }
    }

    #[test]
    fn heatmaps_point_at_the_deciding_patch() {
        tch::manual_seed(0);
        let names = vec!["plain".to_owned(), "spot".to_owned()];
        let model = Model::create_classifier("compact", &names, &[0, 1], 48, 48, 1).unwrap();
        let param: DLPreprocessParam = model.description().preprocess.clone();
        let mut opt = build_optimizer(
            model.var_store(),
            SolverParam::Adam {
                learning_rate: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_prior: 0.0,
            },
        )
        .unwrap();
        let mut rng = dl_core::Rng::new(5);
        let class_ids = [dl_core::ClassId::new(0).unwrap(), dl_core::ClassId::new(1).unwrap()];
        for step in 0..60u64 {
            let samples: Vec<DLSample> = (0..16u64)
                .map(|i| {
                    let spot = (i % 2 == 1).then(|| (rng.below(38) as usize, rng.below(38) as usize));
                    let mut s = DLSample::from_image(dl_core::ImageId(i), image(spot, step * 100 + i));
                    s.image_label_id = Some(vec![class_ids[usize::from(spot.is_some())]]);
                    preprocess_sample(s, &param).unwrap().0
                })
                .collect();
            let batch =
                dl_data::preprocess::collate(&samples, &class_ids, Some(ModelType::Classification)).unwrap();
            train_dl_model_batch(&model, &mut opt, &batch).unwrap();
        }
        // Two patches far from the centre, in opposite corners: each heatmap's peak lies next to its
        // patch (within 6 px, the heatmaps' resolution) and so away from the centre and the other corner.
        for (r0, c0) in [(2usize, 34usize), (34, 2)] {
            let test = image(Some((r0, c0)), 12345 + r0 as u64);
            let r = model.apply(vec![test.clone()]).unwrap();
            assert_eq!(
                r[0].classification_class_names.as_ref().unwrap()[0],
                "spot",
                "the model learnt the task"
            );
            for method in [HeatmapMethod::Occlusion, HeatmapMethod::GradCam, HeatmapMethod::GuidedGradCam] {
                let hm = model.heatmap(&test, method, Some(1)).unwrap();
                assert_eq!((hm.width, hm.height, hm.class_id), (48, 48, 1));
                assert_eq!(hm.values.len(), 48 * 48);
                assert!(hm.values.iter().all(|v| v.is_finite()), "{method:?}: non-finite values");
                let peak =
                    (0..hm.values.len()).max_by(|&a, &b| hm.values[a].total_cmp(&hm.values[b])).unwrap();
                let (pr, pc) = (peak / 48, peak % 48);
                let near = |v: usize, start: usize| v + 6 >= start && v <= start + 9 + 6;
                assert!(
                    near(pr, r0) && near(pc, c0),
                    "{method:?}: patch at ({r0}, {c0}), peak at ({pr}, {pc})"
                );
                let overlay = heatmap_overlay(&test, &hm);
                assert_eq!(overlay.dimensions(), (48, 48));
            }
        }
        let test = image(Some((2, 34)), 1);
        assert!(model.heatmap(&test, HeatmapMethod::GradCam, Some(7)).is_err());
    }
}
