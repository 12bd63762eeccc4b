//! Initializers the tool does not draw from (VarianceScaling with arguments, Orthogonal,
//! TruncatedNormal, a seeded GlorotUniform: fixtures/keras_init, made by
//! python-check/make_fixtures_init.py) are kept exactly as Keras wrote them through `convert`, and a
//! fresh draw from one the tool cannot reproduce is refused naming the layer.

use crate::common::{fixture, run, tempdir};
use keras_transfer::checkpoint::load_model;
use keras_transfer::model::Model;
use serde_json::Value;
use std::io::Read;

/// (layer, key, initializer JSON) for every `*_initializer` in a `.keras` archive's config.json.
fn initializers(path: &std::path::Path) -> Vec<(String, String, Value)> {
    let file = std::fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut text = String::new();
    zip.by_name("config.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for layer in config["config"]["layers"].as_array().unwrap() {
        let cfg = layer["config"].as_object().unwrap();
        for (k, v) in cfg {
            if k.ends_with("_initializer") {
                out.push((
                    cfg["name"].as_str().unwrap().to_string(),
                    k.clone(),
                    v.clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn convert_keeps_every_keras_initializer_as_written() {
    let src = fixture("keras_init/model.keras");
    let before = initializers(&src);
    assert_eq!(before.len(), 6, "the fixture's three Dense layers");
    let dir = tempdir();
    let d = dir.path();
    for (from, to) in [(src.to_str().unwrap(), "a.h5"), ("a.h5", "b.keras")] {
        let out = run(d, &["convert", from, to]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(d, &["convert", src.to_str().unwrap(), "c.keras"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(initializers(&d.join("c.keras")), before);
    assert_eq!(initializers(&d.join("b.keras")), before);
}

#[test]
fn drawing_from_an_initializer_the_tool_cannot_reproduce_is_refused() {
    let m = load_model(&fixture("keras_init/model.keras")).unwrap();
    let err = Model::new(m.spec.clone(), 0)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("'vs'") && err.contains("VarianceScaling"),
        "{err}"
    );
    // The seeded GlorotUniform alone is drawn (the tool's own generator, as for any draw).
    let at = |name: &str| m.spec.layers.iter().position(|l| l.name() == name).unwrap();
    assert!(m.spec.check_drawable(at("seeded")).is_ok());
    assert!(m.spec.check_drawable(at("orth")).is_err());
}
