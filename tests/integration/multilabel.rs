//! Multi-label data as Keras 3 trains it: several sigmoid units under binary cross-entropy on
//! several 0/1 label columns (`--label y0,y1,y2`), in finetune, train, evaluate and predict, with
//! Keras's `accuracy` resolved by shapes (categorical: arg-max of the labels against arg-max of the
//! outputs). Fixture: `fixtures/metrics/multilabel` (python-check/make_fixtures_metrics.py).

use crate::common::*;

fn dir() -> std::path::PathBuf {
    fixture("metrics/multilabel")
}

/// Keras's `fit(epochs=3, batch_size=16, shuffle=False)` of the compiled `model0.h5`: the same
/// weights within 1e-5 and the same history (loss, and `accuracy` as Keras resolves it).
#[test]
fn multi_label_training_tracks_keras() {
    let t = tempdir();
    let d = dir();
    let (model0, train) = (d.join("model0.h5"), d.join("train.csv"));
    let out = ok(&run(
        t.path(),
        &[
            "finetune",
            "--from",
            model0.to_str().unwrap(),
            "--train",
            train.to_str().unwrap(),
            "--label",
            "y0,y1,y2",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--no-shuffle",
            "--history",
            "h.csv",
            "--out",
            "m.h5",
        ],
    ));
    assert!(out.contains("Train"), "{out}");
    let keras = read_json(&d.join("trained.json"));
    let m = keras_transfer::load_model(&t.path().join("m.h5"))
        .unwrap()
        .to_model()
        .unwrap();
    let diff = weights_diff(&m.weights().unwrap(), &json_weights(&keras["weights"]));
    assert!(diff < 1e-5, "weights {diff} from Keras's");
    let (header, rows) = read_csv_f64(&t.path().join("h.csv"));
    for key in ["loss", "accuracy"] {
        let j = header.iter().position(|h| h == key).expect(key);
        let got: Vec<f64> = rows.iter().map(|r| r[j]).collect();
        let want = flat_f64s(&keras["history"][key]);
        assert!(
            max_abs_diff_f64(&got, &want) < 1e-6,
            "{key}: {got:?} vs Keras {want:?}"
        );
    }
}

/// Keras's `evaluate` and `predict` of the trained model: the loss and categorical `accuracy` with
/// the progress bar's digits, each label's probability within 1e-6 and its 0/1 class (p > 0.5).
#[test]
fn multi_label_evaluate_and_predict_as_keras() {
    let d = dir();
    let want = read_json(&d.join("expected.json"));
    let out = ok(&run(
        &d,
        &[
            "evaluate", "--model", "model.h5", "--data", "test.csv", "--label", "y0,y1,y2",
        ],
    ));
    let list = flat_f64s(&want["evaluate"]["list"]);
    assert!(
        out.contains(&format!("loss: {:.4}, accuracy: {:.4}", list[0], list[1])),
        "{out} vs Keras {list:?}"
    );
    let t = tempdir();
    let p = t.path().join("p.csv");
    ok(&run(
        &d,
        &[
            "predict",
            "--model",
            "model.h5",
            "--input",
            "test.csv",
            "--ignore",
            "y0,y1,y2",
            "--output",
            p.to_str().unwrap(),
        ],
    ));
    let (header, rows) = read_csv_f64(&p);
    assert_eq!(
        header,
        [
            "predicted_0",
            "predicted_1",
            "predicted_2",
            "p_0",
            "p_1",
            "p_2"
        ]
    );
    let keras: Vec<Vec<f64>> = want["p"]
        .as_array()
        .unwrap()
        .iter()
        .map(flat_f64s)
        .collect();
    assert_eq!(rows.len(), keras.len());
    for (r, k) in rows.iter().zip(&keras) {
        assert!(max_abs_diff_f64(&r[3..], k) < 1e-6, "{r:?} vs {k:?}");
        let classes: Vec<f64> = k.iter().map(|&v| f64::from(u8::from(v > 0.5))).collect();
        assert_eq!(r[..3], classes[..]);
    }
}

/// A new model on multi-label data: one sigmoid unit per label column, named after them; predict
/// leaves the label columns of its input out by the names it kept.
#[test]
fn a_new_multi_label_model_has_one_sigmoid_unit_per_label() {
    let t = tempdir();
    let d = dir();
    let (train, test) = (d.join("train.csv"), d.join("test.csv"));
    ok(&run(
        t.path(),
        &[
            "train",
            "--train",
            train.to_str().unwrap(),
            "--label",
            "y0,y1,y2",
            "--loss",
            "binary_crossentropy",
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--out",
            "m.keras",
        ],
    ));
    let m = keras_transfer::load_model(&t.path().join("m.keras")).unwrap();
    assert_eq!(m.spec.output_dim(), 3);
    assert_eq!(
        m.spec.output_activation(),
        keras_transfer::model::Activation::Sigmoid
    );
    let out = ok(&run(
        t.path(),
        &[
            "predict",
            "--model",
            "m.keras",
            "--input",
            test.to_str().unwrap(),
        ],
    ));
    assert!(
        out.starts_with("predicted_y0,predicted_y1,predicted_y2,p_y0,p_y1,p_y2\n"),
        "{out}"
    );
    // The model reads the labels by the names it kept: evaluate needs no --label.
    let e = ok(&run(
        t.path(),
        &[
            "evaluate",
            "--model",
            "m.keras",
            "--data",
            test.to_str().unwrap(),
        ],
    ));
    assert!(e.starts_with("loss: "), "{e}");
}

/// What multi-label data cannot mean is refused in one line naming the flag.
#[test]
fn multi_label_settings_that_cannot_work_are_refused() {
    let t = tempdir();
    let d = dir();
    let train = d.join("train.csv");
    let train = train.to_str().unwrap();
    let model0 = d.join("model0.h5");
    let model0 = model0.to_str().unwrap();
    let base = [
        "train", "--train", train, "--label", "y0,y1,y2", "--epochs", "1",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let go = |args: Vec<String>| {
        run(
            t.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    assert_fails(
        &go(with(&["--loss", "categorical_crossentropy"])),
        2,
        &["--loss", "several"],
    );
    assert_fails(
        &go(with(&[
            "--loss",
            "binary_crossentropy",
            "--missing",
            "mean",
        ])),
        2,
        &["--missing", "label columns"],
    );
    assert_fails(
        &run(
            t.path(),
            &[
                "train",
                "--train",
                train,
                "--label",
                "y0,nope",
                "--loss",
                "binary_crossentropy",
            ],
        ),
        3,
        &["no label column 'nope'"],
    );
    assert_fails(
        &run(
            t.path(),
            &[
                "compare",
                "--from",
                model0,
                "--train",
                train,
                "--label",
                "y0,y1,y2",
                "--repeats",
                "1",
            ],
        ),
        2,
        &["--label", "compare takes one label column"],
    );
    // Three sigmoid units and one label column.
    assert_fails(
        &run(
            t.path(),
            &[
                "finetune", "--from", model0, "--train", train, "--label", "y0", "--ignore",
                "y1,y2", "--epochs", "1",
            ],
        ),
        2,
        &["--label", "3 label columns"],
    );
}
