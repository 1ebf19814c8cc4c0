//! Our ResNet-18/50 and MobileNetV2 give torchvision's logits (fixtures/torchvision_logits.json, made
//! by fixtures/scripts/torchvision_logits.py with the same formula-filled weights), and weights survive
//! a safetensors export/import.

use dl_nets::weights::{export_safetensors, import_safetensors};
use dl_nets::{MobileNetV2Config, ResNetConfig};
use tch::{Device, Tensor, nn, nn::ModuleT};

/// The fixture script's `fill`: sin(i·0.7 + k·1.3)·scale in f64, then f32.
fn fill(shape: &[i64], k: usize, scale: f64) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.7 + k as f64 * 1.3).sin() * scale) as f32).collect();
    Tensor::from_slice(&v).reshape(shape)
}

fn set_weights(vs: &nn::VarStore) -> usize {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    tch::no_grad(|| {
        for (k, name) in names.iter().enumerate() {
            let mut t = vars[*name].shallow_clone();
            let shape = t.size();
            let fan_in: i64 = if shape.len() > 1 { shape[1..].iter().product() } else { 1 };
            let v = if name.ends_with("running_var") {
                fill(&shape, k, 1.0).abs() * 0.5 + 1.0
            } else if name.ends_with("running_mean") || name.ends_with("bias") {
                fill(&shape, k, 0.1)
            } else if shape.len() == 1 {
                fill(&shape, k, 0.1) + 1.0
            } else {
                fill(&shape, k, (0.5 / fan_in as f64).sqrt())
            };
            t.copy_(&v);
        }
    });
    names.len()
}

#[test]
fn logits_equal_torchvision() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torchvision_logits.json");
    let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let x = fill(&[2, 3, 64, 64], 99, 1.0);
    for arch in ["resnet18", "resnet50", "mobilenet_v2"] {
        let vs = nn::VarStore::new(Device::Cpu);
        let net: Box<dyn ModuleT> = match arch {
            "resnet18" => Box::new(ResNetConfig::resnet18(10, 3).build(&vs.root()).unwrap()),
            "resnet50" => Box::new(ResNetConfig::resnet50(10, 3).build(&vs.root()).unwrap()),
            _ => Box::new(MobileNetV2Config::new(10, 3).build(&vs.root()).unwrap()),
        };
        let want = &fixture["models"][arch];
        assert_eq!(
            set_weights(&vs) as u64,
            want["num_tensors"].as_u64().unwrap(),
            "{arch}: tensor count differs from torchvision"
        );
        let logits = net.forward_t(&x, false);
        let want_logits: Vec<f64> = want["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        let ours: Vec<f64> = Vec::try_from(logits.to_kind(tch::Kind::Double).reshape([-1])).unwrap();
        let worst = dl_testkit::max_abs_diff(&ours, &want_logits);
        assert!(worst <= 1e-4, "{arch}: max |ours − torchvision| = {worst:e}");
        // Export and re-import into a fresh network: bit-identical logits.
        let bytes = export_safetensors(&vs).unwrap();
        // The export is a complete torchvision state dict: the same names, shapes and dtypes, so
        // torchvision's load_state_dict(strict=True) takes it (and, with the logits above, gives ours).
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut ours: Vec<(String, Vec<usize>, String)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| {
                let dtype = match v.dtype() {
                    safetensors::Dtype::F32 => "float32",
                    safetensors::Dtype::I64 => "int64",
                    other => panic!("{n}: {other:?}"),
                };
                (n, v.shape().to_vec(), dtype.to_owned())
            })
            .collect();
        ours.sort();
        let theirs: Vec<(String, Vec<usize>, String)> = want["state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let shape = e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (e[0].as_str().unwrap().to_owned(), shape, e[2].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(ours, theirs, "{arch}: exported layout differs from torchvision's state dict");
        let vs2 = nn::VarStore::new(Device::Cpu);
        let net2: Box<dyn ModuleT> = match arch {
            "resnet18" => Box::new(ResNetConfig::resnet18(10, 3).build(&vs2.root()).unwrap()),
            "resnet50" => Box::new(ResNetConfig::resnet50(10, 3).build(&vs2.root()).unwrap()),
            _ => Box::new(MobileNetV2Config::new(10, 3).build(&vs2.root()).unwrap()),
        };
        import_safetensors(&vs2, &bytes, false).unwrap();
        assert!(net2.forward_t(&x, false).equal(&logits), "{arch}: round trip changed the logits");
    }
}
