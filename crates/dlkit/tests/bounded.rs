//! Hostile model files cannot exhaust memory: a container declaring a 100 GB payload, a model file and
//! a safetensors import whose tensor claims 2^40 values, a checkpoint with the same, descriptions declaring
//! a billion-channel layer, 2^40 classes, 100 000 stages or a 2^31-pixel-wide input. Each is a typed error
//! and the process's peak resident memory grows by less than 64 MiB over all of them. (Its own test
//! binary, so that no other test shares the process's peak.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use dlkit::Model;

#[test]
fn hostile_model_files_are_errors_and_memory_stays_small() {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let mut model = Model::create_classifier("compact", &names, &[0, 1], 16, 16, 1).unwrap();
    let good = model.serialize().unwrap();
    Model::deserialize(&good, "good").unwrap();
    let start = dl_testkit::peak_rss_mib();
    assert!(start.is_finite(), "peak memory is readable");

    // The container's header declares a 100 GB payload: refused from the header, nothing allocated.
    let mut huge = good.clone();
    huge[12..20].copy_from_slice(&100_000_000_000u64.to_le_bytes());
    let err = Model::deserialize(&huge, "huge.dlm").unwrap_err().to_string();
    assert!(err.contains("huge.dlm"), "{err}");

    // safetensors whose one tensor claims 2^40 f32 values (4 TiB) in a buffer of a few bytes.
    let header =
        br#"{"features.0.weight":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header);
    st.extend_from_slice(&[0u8; 16]);
    assert!(model.import_weights(&st).is_err());
    let mut file = dlkit::io::ModelFile::from_bytes(&good, "good").unwrap();
    file.weights = st.clone();
    let err = Model::deserialize(&file.to_bytes(), "claims.dlm").unwrap_err().to_string();
    assert!(err.contains("claims.dlm") || err.contains("safetensors"), "{err}");
    file.description = serde_json::json!({"kind": "checkpoint", "epochs_done": 1});
    assert!(dlkit::train::inspect_checkpoint(&file.to_bytes(), "claims.dlc").is_err());

    // Descriptions declaring huge networks (built before any weight is read): refused by name.
    let original = dlkit::io::ModelFile::from_bytes(&good, "good").unwrap();
    let hostile = |edit: &dyn Fn(&mut serde_json::Value), what: &str| {
        let mut f = original.clone();
        edit(&mut f.description);
        let err = Model::deserialize(&f.to_bytes(), what).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
        err
    };
    let method = |key: &'static str, v: serde_json::Value| {
        move |d: &mut serde_json::Value| d["method"]["network"]["config"][key] = v.clone()
    };
    let err = hostile(&method("widths", serde_json::json!([4, 1_000_000_000])), "widths.dlm");
    assert!(err.contains("`widths` 1000000000"), "{err}");
    let err = hostile(&method("num_classes", serde_json::json!(1u64 << 40)), "classes.dlm");
    assert!(err.contains("`num_classes`"), "{err}");
    let err = hostile(&method("widths", serde_json::json!(vec![4; 100_000])), "list.dlm");
    assert!(err.contains("100000 values"), "{err}");
    let err = hostile(
        &|d: &mut serde_json::Value| {
            d["preprocess"]["image_width"] = serde_json::json!(1u64 << 31);
            d["preprocess"]["image_height"] = serde_json::json!(1u64 << 31);
        },
        "pixels.dlm",
    );
    assert!(err.contains("image_width"), "{err}");

    let grown = dl_testkit::peak_rss_mib() - start;
    eprintln!("peak resident memory grew by {grown:.1} MiB");
    assert!(grown < 64.0, "peak resident memory grew by {grown:.1} MiB");
}
