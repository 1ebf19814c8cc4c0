//! Weights as safetensors bytes: export a VarStore (torchvision names), import into one with every
//! tensor's shape checked — never a silent partial load.

use crate::{Error, Result};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tch::{Kind, Tensor, nn};

/// Every variable of `vs` (trainable weights and batch-norm statistics) as safetensors bytes, f32,
/// names sorted, plus a zero int64 `num_batches_tracked` per batch norm, so the file is a complete
/// torchvision state dict.
///
/// # Errors
/// [`Error::Weights`] when serialisation fails.
pub fn export_safetensors(vs: &nn::VarStore) -> Result<Vec<u8>> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    // torchvision's state dicts hold a `num_batches_tracked` counter per batch norm (int64, 0-dim);
    // writing it lets `load_state_dict(strict=True)` take the file as it is.
    let counters: Vec<(String, Tensor)> = vars
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".running_mean"))
        .map(|bn| (format!("{bn}.num_batches_tracked"), Tensor::from(0i64)))
        .collect();
    vars.extend(counters);
    tensors_to_safetensors(vars)
}

/// Named tensors as safetensors bytes, names sorted (any device; copied to the CPU): int64 tensors as
/// I64, all others as F32.
///
/// # Errors
/// [`Error::Weights`] when serialisation fails (e.g. a repeated name).
pub fn tensors_to_safetensors(mut vars: Vec<(String, Tensor)>) -> Result<Vec<u8>> {
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vars
        .iter()
        .map(|(name, t)| {
            let shape = t.size().iter().map(|&d| d as usize).collect();
            if t.kind() == Kind::Int64 {
                let t = t.to_device(tch::Device::Cpu).contiguous();
                let n = t.numel();
                let mut values = vec![0i64; n];
                t.copy_data(&mut values, n);
                return (
                    name.clone(),
                    Dtype::I64,
                    shape,
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                );
            }
            let t = t.to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
            let n = t.numel();
            let mut values = vec![0f32; n];
            t.copy_data(&mut values, n);
            (name.clone(), Dtype::F32, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Weights(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))
}

/// The names and shapes safetensors bytes declare (checked against the buffer's length by the
/// parser; no tensor is read).
///
/// # Errors
/// [`Error::Weights`] for unreadable bytes.
pub fn safetensors_shapes(bytes: &[u8]) -> Result<Vec<(String, Vec<usize>)>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Weights(format!("not a safetensors buffer: {e}")))?;
    Ok(st.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect())
}

/// Every tensor of safetensors bytes, as f32 CPU tensors, in the file's order of names.
///
/// # Errors
/// [`Error::Weights`] for unreadable bytes or an unsupported dtype (naming the tensor).
pub fn safetensors_to_tensors(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Weights(format!("not a safetensors buffer: {e}")))?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let view = st.tensor(&name).map_err(|e| Error::Weights(format!("tensor `{name}`: {e}")))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let values = to_f32(&name, &view)?;
            Ok((name, Tensor::from_slice(&values).reshape(&shape)))
        })
        .collect()
}

fn to_f32(name: &str, view: &TensorView) -> Result<Vec<f32>> {
    let data = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => {
            data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
        }
        Dtype::F64 => {
            data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()
        }
        Dtype::F16 => data.chunks_exact(2).map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        Dtype::I64 => {
            data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()
        }
        other => return Err(Error::Weights(format!("tensor `{name}`: unsupported dtype {other:?}"))),
    })
}

/// Loads safetensors bytes into `vs`. Every variable of `vs` must be present with its exact shape;
/// tensors in the file that `vs` does not have are ignored only if `allow_extra`, otherwise they are an
/// error too (batch-norm `num_batches_tracked` counters, which dlkit does not use, are always ignored). F32, F64, F16 and BF16 data are converted.
///
/// # Errors
/// [`Error::Weights`] for unreadable bytes; [`Error::WeightShape`] naming the tensor with the expected
/// and found shapes; [`Error::MissingWeight`] / [`Error::UnexpectedWeight`] naming the tensor. Nothing
/// is changed in `vs` unless every tensor fits.
pub fn import_safetensors(vs: &nn::VarStore, bytes: &[u8], allow_extra: bool) -> Result<()> {
    import_filtered(vs, bytes, allow_extra, &[])
}

/// Loads a pretrained backbone: like [`import_safetensors`] (no extra tensors allowed), except that
/// the variables whose names start with `head_prefix` keep their fresh values and the file's tensors
/// under that prefix (e.g. an ImageNet classifier) are ignored.
///
/// # Errors
/// As [`import_safetensors`].
pub fn import_backbone(vs: &nn::VarStore, bytes: &[u8], head_prefix: &str) -> Result<()> {
    import_filtered(vs, bytes, false, &[head_prefix])
}

/// As [`import_backbone`], leaving out every variable (and file tensor) whose name starts with one of
/// `prefixes` (a classifier's head, a detector's neck and heads).
///
/// # Errors
/// As [`import_backbone`].
pub fn import_except(vs: &nn::VarStore, bytes: &[u8], prefixes: &[&str]) -> Result<()> {
    import_filtered(vs, bytes, false, prefixes)
}

fn import_filtered(vs: &nn::VarStore, bytes: &[u8], allow_extra: bool, skip: &[&str]) -> Result<()> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Weights(format!("not a safetensors buffer: {e}")))?;
    let skipped = |name: &str| skip.iter().any(|p| name.starts_with(p));
    let vars: std::collections::HashMap<String, Tensor> =
        vs.variables().into_iter().filter(|(n, _)| !skipped(n)).collect();
    let mut loaded = Vec::with_capacity(vars.len());
    // In name order, so the error for a file that does not fit is always the same one.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for (name, var) in names.into_iter().map(|n| (n, &vars[n])) {
        let view = st.tensor(name).map_err(|_| Error::MissingWeight(name.clone()))?;
        let expected: Vec<i64> = var.size();
        let found: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if expected != found {
            return Err(Error::WeightShape { name: name.clone(), expected, found });
        }
        let values = to_f32(name, &view)?;
        loaded.push((var.shallow_clone(), Tensor::from_slice(&values).reshape(&expected)));
    }
    let unexpected = st
        .names()
        .into_iter()
        .find(|n| !vars.contains_key(*n) && !n.ends_with(".num_batches_tracked") && !skipped(n));
    if !allow_extra && let Some(extra) = unexpected {
        return Err(Error::UnexpectedWeight(extra.to_string()));
    }
    tch::no_grad(|| {
        for (mut var, src) in loaded {
            var.copy_(&src.to_device(var.device()));
        }
    });
    Ok(())
}

fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompactConfig, ResNetConfig};
    use tch::{Device, nn::ModuleT};

    #[test]
    fn export_import_gives_bit_identical_outputs_and_checks_shapes() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNetConfig::resnet18(5, 1).build(&vs.root()).unwrap();
        let bytes = export_safetensors(&vs).unwrap();
        let vs2 = nn::VarStore::new(Device::Cpu);
        let net2 = ResNetConfig::resnet18(5, 1).build(&vs2.root()).unwrap();
        import_safetensors(&vs2, &bytes, false).unwrap();
        let x = Tensor::randn([2, 1, 64, 64], (Kind::Float, Device::Cpu));
        assert!(net.forward_t(&x, false).equal(&net2.forward_t(&x, false)));
        // Another class count: the fc shapes differ and the error names the tensor.
        let vs3 = nn::VarStore::new(Device::Cpu);
        let _ = ResNetConfig::resnet18(7, 1).build(&vs3.root()).unwrap();
        let err = import_safetensors(&vs3, &bytes, false).unwrap_err().to_string();
        assert!(err.contains("fc.") && err.contains("[7") && err.contains("[5"), "{err}");
        // A different architecture: a missing tensor.
        let vs4 = nn::VarStore::new(Device::Cpu);
        let _ = CompactConfig::new(5, 1).build(&vs4.root()).unwrap();
        assert!(import_safetensors(&vs4, &bytes, true).is_err());
        assert!(import_safetensors(&vs2, &bytes[..bytes.len() / 2], false).is_err());
    }

    #[test]
    fn half_precision_conversion() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
    }
}
