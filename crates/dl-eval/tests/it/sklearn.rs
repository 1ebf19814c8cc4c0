//! Classification and anomaly measures equal scikit-learn (fixtures/sklearn_measures.json, made by
//! fixtures/scripts/classification_sklearn.py).

use dl_eval::ClassificationAccumulator;
use dl_eval::anomaly::auroc;

fn fixture() -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sklearn_measures.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ints(v: &serde_json::Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

#[test]
fn precision_recall_f1_and_confusion_equal_sklearn() {
    let f = fixture();
    let c = &f["classification"];
    let (y_true, y_pred) = (ints(&c["y_true"]), ints(&c["y_pred"]));
    let mut acc = ClassificationAccumulator::new(8, 1);
    for (&t, &p) in y_true.iter().zip(&y_pred) {
        acc.add(&[p], t).unwrap();
    }
    let e = acc.compute();
    for (ours, key) in
        [(&e.class_precision, "precision"), (&e.class_recall, "recall"), (&e.class_f_score, "f1")]
    {
        assert_eq!(ours.len(), c[key].as_array().unwrap().len(), "{key}: number of classes");
        for (k, (o, s)) in ours.iter().zip(c[key].as_array().unwrap()).enumerate() {
            match s.as_f64() {
                Some(s) => assert!((o - s).abs() <= 1e-12, "{key} of class {k}: {o} vs {s}"),
                None => assert_eq!(*o, -1.0, "{key} of class {k} is undefined in scikit-learn"),
            }
        }
    }
    // scikit-learn's rows are ground truth; ours are predictions.
    let cm = c["confusion_true_rows"].as_array().unwrap();
    for (t, row) in cm.iter().enumerate() {
        for (p, v) in row.as_array().unwrap().iter().enumerate() {
            assert_eq!(e.absolute_confusion_matrix[p * 8 + t], v.as_u64().unwrap());
        }
    }
}

#[test]
fn auroc_equals_sklearn() {
    let f = fixture();
    let a = &f["anomaly"];
    let scores: Vec<f64> = a["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let positive: Vec<bool> =
        a["positive"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() == 1).collect();
    let want = a["roc_auc"].as_f64().unwrap();
    let got = auroc(&scores, &positive).unwrap();
    assert!((got - want).abs() <= 1e-12, "{got} vs {want}");
}
