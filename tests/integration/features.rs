//! `features`: a layer's output against Keras's `Model(inputs, layer.output).predict`
//! (fixtures/features/, made by python-check/make_fixtures_features.py).

use crate::common::{assert_fails, fixture, ok, read_csv_f64, run, tempdir};
use keras_transfer::data::arrays::read_npy;

fn features(
    model: &str,
    layer: &str,
    input: &str,
    out: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let target = dir.path().join(out);
    let m = fixture(model);
    let i = fixture(input);
    ok(&run(
        dir.path(),
        &[
            "features",
            "--model",
            m.to_str().unwrap(),
            "--layer",
            layer,
            "--input",
            i.to_str().unwrap(),
            "--output",
            target.to_str().unwrap(),
        ],
    ));
    (dir, target)
}

fn close(model: &str, layer: &str, expected: &str, tol: f64) {
    close_on(
        &format!("features/{model}"),
        "features/x.npy",
        layer,
        expected,
        tol,
    );
}

/// `close` for a fixture model and input anywhere under fixtures/.
fn close_on(model: &str, input: &str, layer: &str, expected: &str, tol: f64) {
    let (_d, out) = features(model, layer, input, "f.npy");
    let got = read_npy(&out).unwrap();
    let want = read_npy(&fixture(&format!("features/{expected}"))).unwrap();
    assert_eq!(got.shape, want.shape, "{model} {layer}");
    assert_eq!(got.descr, "<f4", "a float32 model's features are float32");
    let diff = got
        .values
        .iter()
        .zip(&want.values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff <= tol, "{model} {layer}: {diff}");
}

#[test]
fn features_match_keras_by_name_index_and_nested_name() {
    close("cnn.keras", "base", "cnn_base.npy", 1e-6);
    close("cnn.keras", "gap", "cnn_gap.npy", 1e-6);
    // model.layers is [image, base, gap, head]: a Functional model's InputLayer is index 0.
    close("cnn.keras", "3", "cnn_index3.npy", 1e-6);
    close("cnn.keras", "base/bn1", "cnn_base_bn1.npy", 1e-6);
    close("cnn.h5", "base/bn1", "cnn_base_bn1.npy", 1e-6);
    close("cnn.keras", "0", "x.npy", 0.0);
}

#[test]
fn features_reach_layers_two_nested_models_deep() {
    // image -> convnext_mini (Functional) holding the Sequential convnext_mini_stem: the stem's
    // output and its first layer's, against Keras (python-check/make_fixtures_features_nested.py).
    let (m, x) = (
        "keras_convnext/mini/model.keras",
        "keras_convnext/mini/x.npy",
    );
    close_on(
        m,
        x,
        "convnext_mini/convnext_mini_stem",
        "convnext_stem.npy",
        1e-5,
    );
    let conv = "convnext_mini/convnext_mini_stem/convnext_mini_stem_conv";
    close_on(m, x, conv, "convnext_stem_conv.npy", 1e-5);
}

#[test]
fn features_as_csv_of_a_mlp_read_back_as_keras_gives() {
    let (_d, out) = features("features/mlp.keras", "h1", "features/mlp.csv", "h1.csv");
    let (head, rows) = read_csv_f64(&out);
    assert_eq!(head, ["f0", "f1", "f2", "f3", "f4"]);
    let want = read_npy(&fixture("features/mlp_h1.npy")).unwrap();
    let got: Vec<f64> = rows.concat();
    assert_eq!(got.len(), want.values.len());
    let diff = got
        .iter()
        .zip(&want.values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff <= 1e-6, "{diff}");
}

#[test]
fn features_refuses_bad_flags() {
    let dir = tempdir();
    let m = fixture("features/cnn.keras");
    let x = fixture("features/x.npy");
    let args = |layer: &'static str, input: String, out: &'static str| {
        run(
            dir.path(),
            &[
                "features",
                "--model",
                m.to_str().unwrap(),
                "--layer",
                layer,
                "--input",
                &input,
                "--output",
                out,
            ],
        )
    };
    let xs = x.to_str().unwrap().to_string();
    assert_fails(&args("nope", xs.clone(), "f.npy"), 2, &["--layer", "gap"]);
    assert_fails(&args("9", xs.clone(), "f.npy"), 2, &["--layer", "index 9"]);
    assert_fails(
        &args("base/nope", xs.clone(), "f.npy"),
        2,
        &["--layer", "bn1"],
    );
    assert_fails(&args("gap", xs.clone(), "f.txt"), 2, &["--output", ".npy"]);
    let out = args(
        "gap",
        dir.path().join("missing.npy").display().to_string(),
        "f.npy",
    );
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert!(!dir.path().join("f.npy").exists() && !dir.path().join("f.txt").exists());
}
