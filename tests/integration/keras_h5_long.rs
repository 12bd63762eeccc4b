//! Long models in Keras's legacy `.h5`: 121 layers (Dense, BatchNormalization, Dropout) saved by
//! Keras 3 and tf.keras 2 with long layer names, so that `layer_names` is split into numbered
//! chunks and `model_config` is a long variable-length string
//! (`python-check/make_fixtures_h5long.py`). Read and predicted as Keras did; written back in both
//! dialects and read again (`make_fixtures_h5long.py --check DIR` loads such files in Keras).

use crate::common::*;
use keras_transfer::keras::{Format, load_h5, save_h5};

#[test]
fn long_keras_models_read_predict_and_write_as_keras_does() {
    let dir = tempdir();
    for case in cases("keras_h5_long") {
        let m = load_h5(&case.join("model.h5")).unwrap_or_else(|e| panic!("{e}"));
        let meta = read_json(&case.join("meta.json"));
        assert_eq!(m.spec.layers.len() as u64, meta["layers"].as_u64().unwrap());
        assert_eq!(
            meta["layer_name_attributes"],
            serde_json::json!(["layer_names0", "layer_names1"]),
            "the fixture exercises Keras's chunking"
        );
        let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
        let (_, preds) = read_csv_f64(&case.join("predictions.csv"));
        let x: Vec<f64> = inputs.concat();
        let want: Vec<f32> = preds.concat().iter().map(|&v| v as f32).collect();
        let got = m.to_model().unwrap().predict(&x).unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= 1e-6,
            "{}: predictions differ from Keras by {d}",
            case.display()
        );
        for format in [Format::Keras3, Format::Universal] {
            let name = format!(
                "{}_{format:?}.h5",
                case.file_name().unwrap().to_str().unwrap()
            );
            let out = dir.path().join(&name);
            let mut w = m.clone();
            w.format = format;
            save_h5(&out, &w).unwrap_or_else(|e| panic!("{e}"));
            // Keras's rule: the names in numbered chunks, none over 64512 bytes.
            let f = hdf5::File::open(&out).unwrap();
            let mw = f.group("model_weights").unwrap();
            let attrs = mw.attr_names().unwrap();
            assert!(
                !attrs.contains(&"layer_names".to_string()),
                "{name}: {attrs:?}"
            );
            assert!(
                attrs.contains(&"layer_names1".to_string()),
                "{name}: {attrs:?}"
            );
            drop(mw);
            drop(f);
            let back = load_h5(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(back.spec, m.spec, "{name}");
            assert_eq!(back.weights, m.weights, "{name}");
        }
    }
}
