//! Image folders as the commands read them for a model whose input is an image: Keras's
//! `image_dataset_from_directory` order and class numbering, Keras's predictions, evaluation and a
//! 3-epoch fit (fixtures/images/model, made by python-check/make_fixtures_folder_model.py).

use crate::common::*;
use keras_transfer::checkpoint::load_model;

fn case() -> serde_json::Value {
    read_json(&fixture("images/model/case.json"))
}

/// The folder's files in Keras's order, as `case.json` lists them.
fn case_files(c: &serde_json::Value) -> Vec<&str> {
    c["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

/// `predict` on the folder names each file in Keras's order and gives Keras's probabilities, from
/// the `.keras` archive and the `.h5` file alike.
#[test]
fn predict_on_a_folder_names_each_file_and_matches_keras() {
    let c = case();
    let folder = fixture("images/folder");
    let dir = tempdir();
    for file in ["model.keras", "model.h5"] {
        let model = fixture(&format!("images/model/{file}"));
        let out = ok(&run(
            dir.path(),
            &[
                "predict",
                "--model",
                model.to_str().unwrap(),
                "--input",
                folder.to_str().unwrap(),
            ],
        ));
        let files = case_files(&c);
        predicted_as_keras(&out, &files, &c);
    }
}

/// `predict`'s output `out` names `files` in order, each with Keras's probabilities (`case.json`'s
/// `predict`, in the same order).
fn predicted_as_keras(out: &str, files: &[&str], c: &serde_json::Value) {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("file,predicted,p_Dog,p_cat,p_eel"));
    let want = c["predict"].as_array().unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), files.len(), "{out}");
    for ((row, f), p) in rows.iter().zip(files).zip(want) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[0], *f, "Keras's file order");
        let got: Vec<f64> = fields[2..].iter().map(|v| v.parse().unwrap()).collect();
        // float32 softmax of a 90-term dot product: Keras's own rounding differs by ~1 ulp.
        let d = max_abs_diff_f64(&got, &flat_f64s(p));
        assert!(d < 1e-6, "{row}: {d}");
    }
}

/// `evaluate` on the folder labels each image by its class subfolder, numbered in sorted order as
/// Keras numbers them, and gives Keras's loss and accuracy.
#[test]
fn evaluate_on_a_folder_matches_keras() {
    let c = case();
    let dir = tempdir();
    let model = fixture("images/model/model.h5");
    let folder = fixture("images/folder");
    let out = ok(&run(
        dir.path(),
        &[
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--data",
            folder.to_str().unwrap(),
        ],
    ));
    let line = out.lines().find(|l| l.starts_with("loss")).unwrap();
    let nums: Vec<f64> = line
        .split([',', ' ', ':'])
        .filter_map(|w| w.parse().ok())
        .collect();
    let want = flat_f64s(&c["evaluate"]);
    assert!((nums[0] - want[0]).abs() < 1e-4, "{out} vs {want:?}");
    assert!((nums[1] - want[1]).abs() < 1e-3, "{out} vs {want:?}");
}

/// `finetune --train FOLDER` (batches of 4, no shuffling) ends where Keras's `fit` on
/// `image_dataset_from_directory(shuffle=False)` ends, and the written model keeps its image input.
#[test]
fn finetune_on_a_folder_matches_keras_fit() {
    let c = case();
    let dir = tempdir();
    let model = fixture("images/model/model.keras");
    let folder = fixture("images/folder");
    let out = dir.path().join("tuned.keras");
    finetune_in_order(dir.path(), &model, &folder, 3, 4, &out);
    let m = load_model(&out).unwrap();
    assert_eq!(m.spec.image_input(), Some([6, 5, 3]));
    let w = &m.weights[m.weights.len() - 1];
    let dk = max_abs_diff_f64(&w[0], &flat_f64s(&c["fitted_kernel"]));
    let db = max_abs_diff_f64(&w[1], &flat_f64s(&c["fitted_bias"]));
    assert!(dk < 1e-6 && db < 1e-6, "kernel {dk}, bias {db}");
}

/// `--classes` may reorder a folder's classes (Keras's `class_names`), not rename them; a model
/// whose input is flat refuses a folder, naming it.
#[test]
fn folder_classes_and_flat_models_are_checked() {
    let dir = tempdir();
    let model = fixture("images/model/model.h5");
    let folder = fixture("images/folder");
    let out = run(
        dir.path(),
        &[
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--data",
            folder.to_str().unwrap(),
            "--classes",
            "Dog,cat,fish",
        ],
    );
    assert_fails(&out, 2, &["--classes", "fish", "may only reorder"]);
    let reordered = run(
        dir.path(),
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            folder.to_str().unwrap(),
            "--classes",
            "eel,cat,Dog",
        ],
    );
    let text = ok(&reordered);
    assert!(
        text.starts_with("file,predicted,p_eel,p_cat,p_Dog"),
        "{text}"
    );
    let flat = fixture("cli/frozen/model.h5");
    let out = run(
        dir.path(),
        &[
            "predict",
            "--model",
            flat.to_str().unwrap(),
            "--input",
            folder.to_str().unwrap(),
        ],
    );
    assert_fails(&out, 3, &["folder", "flat"]);
}

/// `predict` on a folder of images without class subfolders (Keras's
/// `image_dataset_from_directory(folder, labels=None)`): every image, sorted by name, named by its
/// file name, with Keras's probabilities; a folder with class subfolders says which images at its
/// top it leaves out (Keras's `labels="inferred"` ignores them).
#[test]
fn predict_on_a_flat_folder_lists_it_as_keras_labels_none() {
    let c = case();
    let files = case_files(&c);
    let dir = tempdir();
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    // Renamed so that their names sort in the order Keras listed them from the class subfolders.
    let mut expected = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let name = format!("{i:03}_{}", f.rsplit('/').next().unwrap());
        std::fs::copy(fixture("images/folder").join(f), flat.join(&name)).unwrap();
        expected.push(name);
    }
    let model = fixture("images/model/model.keras");
    let out = ok(&run(
        dir.path(),
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            flat.to_str().unwrap(),
            // A Keras-made model keeps no class names, and a flat folder has no class subfolders.
            "--classes",
            "Dog,cat,eel",
        ],
    ));
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    predicted_as_keras(&out, &expected, &c);
    // The fixture folder has class subfolders and a stray image at its top: left out, and said.
    let out = run(
        dir.path(),
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            fixture("images/folder").to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 image(s) at the top of the folder left out"),
        "{err}"
    );
}

/// A model fine-tuned on a folder keeps the folder's label name and classes, and is evaluated and
/// fine-tuned again on a folder with no flags (its stored label name is the folder's own).
#[test]
fn a_model_trained_on_a_folder_reads_folders_again() {
    let dir = tempdir();
    let model = fixture("images/model/model.keras");
    let folder = fixture("images/folder");
    let (model, folder) = (model.to_str().unwrap(), folder.to_str().unwrap());
    ok(&run(
        dir.path(),
        &[
            "finetune", "--from", model, "--train", folder, "--epochs", "1", "--out", "t.keras",
        ],
    ));
    let out = ok(&run(
        dir.path(),
        &["evaluate", "--model", "t.keras", "--data", folder],
    ));
    assert!(out.starts_with("loss: "), "{out}");
    ok(&run(
        dir.path(),
        &[
            "finetune", "--from", "t.keras", "--train", folder, "--epochs", "1", "--out", "u.keras",
        ],
    ));
}
