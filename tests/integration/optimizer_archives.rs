//! The optimizer's variables in Keras 3's own files: every Keras-made `fitted.keras` of
//! fixtures/keras_compile (one optimizer each, fitted by real Keras) read exactly and continued one
//! epoch as Keras continued it; keras-transfer's archives and weights files carrying the state;
//! `convert` keeping it between every pair of formats.

use crate::common::*;
use keras_transfer::checkpoint::{load_model, load_model_with_weights, save_model};
use keras_transfer::data::csv::read_train_test;
use keras_transfer::data::targets::read_regression;
use keras_transfer::{Dataset, KerasModel, OptimizerState, Target};
use serde_json::Value;
use std::path::Path;

/// One more epoch from a Keras-made state ends within this of Keras's (measured: 6e-8 at most).
const TOL: f32 = 1e-6;

/// Cases whose fit used options a model file does not hold (not compile settings).
const FIT_OPTION_CASES: &[&str] = &["class_weight", "validation_split"];

fn flat(v: &Value) -> Vec<f64> {
    flat_f64s(v)
}

/// The case's training data, as the model's loss reads it.
fn case_data(dir: &Path, m: &KerasModel) -> Dataset {
    let csv = dir.join("train.csv");
    match m.compile().unwrap().unwrap().loss.target() {
        Target::Numeric => read_regression(&csv, None).unwrap(),
        _ => read_train_test(&csv, None, None).unwrap().0,
    }
}

/// Checks `state` is Keras's `optimizer.variables` (case.json's list) exactly: the step count, the
/// learning rate and every slot, in order, bit for bit.
fn assert_state_is_keras(name: &str, state: &OptimizerState, keras: &[Value]) {
    assert_eq!(keras[0]["name"], "iteration", "{name}");
    assert_eq!(
        state.iterations,
        keras[0]["values"].as_u64().unwrap(),
        "{name}"
    );
    let mut rest = &keras[1..];
    if rest.first().is_some_and(|v| v["name"] == "learning_rate") {
        assert_eq!(
            state.learning_rate,
            Some(rest[0]["values"].as_f64().unwrap()),
            "{name}: learning rate"
        );
        rest = &rest[1..];
    } else {
        assert_eq!(state.learning_rate, None, "{name}: a schedule has none");
    }
    assert_eq!(state.variables.len(), rest.len(), "{name}: variable count");
    for ((ours, values), k) in state.variables.iter().zip(rest) {
        let kname = k["name"].as_str().unwrap();
        // Keras prefixes the model's name (sequential_dense_kernel_momentum).
        assert!(kname.ends_with(ours.as_str()), "{name}: {kname} vs {ours}");
        let want = flat(&k["values"]);
        assert_eq!(values.len(), want.len(), "{name}: {ours}");
        assert!(
            values
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: {ours} differs from Keras's"
        );
    }
}

fn one_more_epoch(dir: &Path, m: &KerasModel) -> Vec<Vec<f64>> {
    let start = m.optimizer_state.clone().unwrap().unwrap();
    fit_more(m, &case_data(dir, m), 1, 32, Some(&start))
}

/// Keras's weights after one more epoch, in layer order.
fn keras_one_more(case: &Value, m: &KerasModel) -> Vec<Vec<f64>> {
    m.spec
        .layers
        .iter()
        .flat_map(|l| {
            let w = &case["after_one_more_epoch"]["weights"][l.name()];
            ["kernel", "bias"]
                .iter()
                .filter_map(|k| w.get(*k).map(flat))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every Keras-made `fitted.keras` (20 epochs of one optimizer each) restores Keras's optimizer
/// variables bit for bit, and one more epoch from it ends where Keras's one more epoch ended.
#[test]
fn keras_fitted_archives_restore_the_optimizer_and_continue_as_keras() {
    let mut failures = Vec::new();
    let mut continued = 0;
    for dir in cases("keras_compile") {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = read_json(&dir.join("case.json"));
        let m = match load_model(&dir.join("fitted.keras")) {
            Ok(m) => m,
            Err(e) => {
                // Settings this tool refuses as .h5 it refuses as .keras too (archives.rs).
                eprintln!("{name}: refused: {e}");
                continue;
            }
        };
        let state = match &m.optimizer_state {
            Some(Ok(s)) => s.clone(),
            other => panic!("{name}: no optimizer state read: {other:?}"),
        };
        assert_state_is_keras(
            &name,
            &state,
            case["optimizer_variables"].as_array().unwrap(),
        );
        if FIT_OPTION_CASES.contains(&name.as_str()) {
            continue;
        }
        let d = vecs_max_diff(&one_more_epoch(&dir, &m), &keras_one_more(&case, &m));
        eprintln!("{name}: one more epoch from fitted.keras {d:e}");
        continued += 1;
        if d > TOL || d.is_nan() {
            failures.push(format!("{name}: {d:e}"));
        }
    }
    assert!(continued >= 25, "only {continued} cases continued");
    assert!(failures.is_empty(), "beyond tolerance: {failures:#?}");
}

/// keras-transfer's `.keras` and `.weights.h5` hold the optimizer state it has (here Keras's, read
/// from `fitted.keras`), and read it back identically; a `.weights.h5` put into an architecture
/// brings its state along, as `model.load_weights` does.
#[test]
fn our_archives_and_weights_files_keep_the_optimizer_state() {
    let tmp = tempdir();
    for case in [
        "adam",
        "nadam",
        "rmsprop_centered_momentum",
        "sgd_momentum",
        "adam_cosine_decay",
    ] {
        let dir = fixture(&format!("keras_compile/{case}"));
        let m = load_model(&dir.join("fitted.keras")).unwrap();
        let state = m.optimizer_state.clone().unwrap().unwrap();
        let k = tmp.path().join(format!("{case}.keras"));
        save_model(&k, &m).unwrap();
        let back = load_model(&k).unwrap();
        assert_eq!(back.optimizer_state, m.optimizer_state, "{case}: .keras");
        assert_eq!(back.weights, m.weights, "{case}");
        let w = tmp.path().join(format!("{case}.weights.h5"));
        save_model(&w, &m).unwrap();
        // Into the untrained architecture (compiled alike, no state of its own).
        let put = load_model_with_weights(&dir.join("model.keras"), &w).unwrap();
        assert_eq!(put.weights, m.weights, "{case}: .weights.h5");
        assert_eq!(
            put.optimizer_state.unwrap().unwrap(),
            state,
            "{case}: .weights.h5 state"
        );
    }
}

/// `convert` keeps the optimizer state between every pair of formats (`.h5`, `.keras`,
/// `.safetensors`, and `.weights.h5` put back into an architecture with `--weights`); a target that
/// cannot hold it (the universal `.h5` dialect) is written without it, said once on stderr.
#[test]
fn convert_keeps_the_optimizer_state_between_every_pair_of_formats() {
    let tmp = tempdir();
    let d = tmp.path();
    let src = fixture("keras_compile/adam/fitted.keras");
    let original = load_model(&src).unwrap();
    let out = run(
        d,
        &[
            "convert",
            src.to_str().unwrap(),
            "u.h5",
            "--format",
            "universal",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("optimizer state is not kept").count(),
        1,
        "{err}"
    );
    assert!(err.contains("u.h5") && err.contains("universal"), "{err}");
    assert!(
        load_model(&d.join("u.h5"))
            .unwrap()
            .optimizer_state
            .is_none()
    );
    let exts = ["h5", "keras", "safetensors"];
    for a in exts {
        let first = format!("first.{a}");
        let out = run(d, &["convert", src.to_str().unwrap(), &first]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for b in exts {
            let second = format!("from-{a}.{b}");
            let out = run(d, &["convert", &first, &second]);
            assert!(out.status.success(), "{a}->{b}");
            let m = load_model(&d.join(&second)).unwrap();
            assert_eq!(m.weights, original.weights, "{a}->{b}");
            assert_eq!(m.compile(), original.compile(), "{a}->{b}");
            let s = m.optimizer_state.clone().unwrap().unwrap();
            let o = original.optimizer_state.clone().unwrap().unwrap();
            assert_eq!(s.iterations, o.iterations, "{a}->{b}");
            assert_eq!(s.learning_rate, o.learning_rate, "{a}->{b}");
            let values = |s: &OptimizerState| -> Vec<Vec<f64>> {
                s.variables.iter().map(|(_, v)| v.clone()).collect()
            };
            assert_eq!(values(&s), values(&o), "{a}->{b}: slot values");
        }
        // A .weights.h5 holds the optimizer's variables too (Keras's save_weights writes them and
        // load_weights restores them): through it and back into the architecture.
        let w = format!("from-{a}.weights.h5");
        let out = run(d, &["convert", &first, &w]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back = format!("back-{a}.keras");
        let arch = fixture("keras_compile/adam/model.keras");
        let out = run(
            d,
            &["convert", arch.to_str().unwrap(), &back, "--weights", &w],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = load_model(&d.join(&back)).unwrap();
        assert_eq!(m.weights, original.weights, "{a} via .weights.h5");
        assert_eq!(
            m.optimizer_state.unwrap().unwrap().iterations,
            original
                .optimizer_state
                .clone()
                .unwrap()
                .unwrap()
                .iterations,
            "{a} via .weights.h5"
        );
    }
}

/// `finetune --from fitted.keras` continues Keras's Adam from the archive's state: one epoch with
/// shuffle off ends where Keras's `load_model` + `fit` ended, and the saved archive holds the
/// state after it (one more step count per batch).
#[test]
fn finetune_from_a_keras_archive_continues_its_optimizer() {
    let dir = fixture("keras_compile/adam");
    let case = read_json(&dir.join("case.json"));
    let tmp = tempdir();
    let (from, csv) = (dir.join("fitted.keras"), dir.join("train.csv"));
    let out = run(
        tmp.path(),
        &[
            "finetune",
            "--from",
            from.to_str().unwrap(),
            "--train",
            csv.to_str().unwrap(),
            "--no-shuffle",
            "--epochs",
            "1",
            "--out",
            "more.keras",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("afresh"), "{err}");
    let more = load_model(&tmp.path().join("more.keras")).unwrap();
    let got: Vec<Vec<f64>> = more.weights.iter().flatten().cloned().collect();
    let d = vecs_max_diff(&got, &keras_one_more(&case, &more));
    assert!(d <= TOL, "finetune from .keras: {d:e}");
    let s = more.optimizer_state.unwrap().unwrap();
    let keras_after = case["after_one_more_epoch"]["optimizer_variables"]
        .as_array()
        .unwrap();
    assert_eq!(s.iterations, keras_after[0]["values"].as_u64().unwrap());
}

/// fixtures/keras_archive's optimizer cases (Keras-made, 2 epochs; each as `.keras` and as legacy
/// `.h5`): the saved variables read exactly (none for BatchNormalization's moving statistics or a frozen layer), and `finetune` one
/// more epoch ends where Keras's `load_model` + `fit` ended, weights and optimizer variables. An
/// optimizer built before a layer was frozen is not restored, as Keras does not restore it: the
/// fine-tune says so and starts afresh, as Keras does. (`--freeze` gives the file's own frozen
/// layers: without it `finetune` trains every layer, a change of the model that restarts the
/// optimizer.)
#[test]
fn keras_archive_optimizer_cases_continue_as_keras() {
    let tmp = tempdir();
    for name in [
        "adam_batchnorm",
        "sgd_momentum_frozen",
        "adam_frozen_after_fit",
    ] {
        for file in ["model.keras", "model.h5"] {
            let dir = fixture(&format!("keras_archive/{name}"));
            let case = read_json(&dir.join("case.json"));
            let m = load_model(&dir.join(file)).unwrap();
            let restores = case["load_model"]["restores_optimizer"].as_bool().unwrap();
            match &m.optimizer_state {
                Some(Ok(s)) if restores => {
                    assert_state_is_keras(name, s, case["optimizer_variables"].as_array().unwrap())
                }
                Some(Err(e)) if !restores => assert!(e.contains("frozen"), "{name}: {e}"),
                other => panic!("{name}: {other:?}"),
            }
            // `--freeze N` sets the layers' trainable flags (model.layers[:N] frozen, the rest trained):
            // the file's own, for a fit as load_model + fit.
            let frozen = m.spec.layers.iter().take_while(|l| !l.trainable()).count();
            assert!(m.spec.layers[frozen..].iter().all(|l| l.trainable()));
            let out_name = format!("{name}-{file}");
            let out = run(
                tmp.path(),
                &[
                    "finetune",
                    "--from",
                    dir.join(file).to_str().unwrap(),
                    "--train",
                    dir.join("train.csv").to_str().unwrap(),
                    "--no-shuffle",
                    "--epochs",
                    "1",
                    "--batch-size",
                    &case["fit"]["batch_size"].to_string(),
                    "--freeze",
                    &frozen.to_string(),
                    "--out",
                    &out_name,
                ],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{name}: {err}");
            assert_eq!(err.contains("afresh"), !restores, "{name}: {err}");
            let more = load_model(&tmp.path().join(&out_name)).unwrap();
            let after = &case["after_one_more_epoch"];
            let got: Vec<Vec<f64>> = more.weights.iter().flatten().cloned().collect();
            let dw = vecs_max_diff(&got, &keras_named(&after["weights"], &more));
            let s = more.optimizer_state.clone().unwrap().unwrap();
            let keras_vars = after["optimizer_variables"].as_array().unwrap();
            assert_eq!(s.iterations, keras_vars[0]["values"].as_u64().unwrap());
            let slots: Vec<&Value> = keras_vars
                .iter()
                .filter(|v| v["name"] != "iteration" && v["name"] != "learning_rate")
                .collect();
            assert_eq!(slots.len(), s.variables.len(), "{name}");
            let ds = s
                .variables
                .iter()
                .zip(&slots)
                .map(|((_, v), k)| max_abs_diff(v, &flat(&k["values"])))
                .fold(0f32, f32::max);
            eprintln!("{name} {file}: one more epoch: weights {dw:e}, optimizer variables {ds:e}");
            assert!(
                dw <= TOL && ds <= TOL,
                "{name} {file}: weights {dw:e}, state {ds:e}"
            );
        }
    }
}

/// The shapes of `optimizer_weights`'s datasets of an `.h5`, in `weight_names` order.
fn h5_optimizer_shapes(path: &Path) -> Vec<Vec<usize>> {
    let f = hdf5::File::open(path).unwrap();
    let g = f.group("optimizer_weights").unwrap();
    let names = hdf5_names(&g);
    names
        .iter()
        .map(|n| g.dataset(n.as_str()).unwrap().shape())
        .collect()
}

/// A Keras-made `.h5`'s optimizer state (Keras's own `sequential_dense_kernel_momentum` names) is
/// the state of its `.keras` twin, and is written back, to `.h5` and `.keras`, in the shapes Keras
/// gave it.
#[test]
fn a_keras_h5_state_converts_in_keras_shapes() {
    let dir = fixture("keras_archive/adam_batchnorm");
    let tmp = tempdir();
    let h5 = load_model(&dir.join("model.h5")).unwrap();
    let keras = load_model(&dir.join("model.keras")).unwrap();
    let (a, b) = (
        h5.optimizer_state.clone().unwrap().unwrap(),
        keras.optimizer_state.clone().unwrap().unwrap(),
    );
    assert_eq!(a.iterations, b.iterations);
    let values = |s: &OptimizerState| -> Vec<Vec<f64>> {
        s.variables.iter().map(|(_, v)| v.clone()).collect()
    };
    assert_eq!(values(&a), values(&b));
    let out = tmp.path().join("again.h5");
    save_model(&out, &h5).unwrap();
    assert_eq!(
        h5_optimizer_shapes(&out),
        h5_optimizer_shapes(&dir.join("model.h5"))
    );
    let k = tmp.path().join("again.keras");
    save_model(&k, &h5).unwrap();
    assert_eq!(
        load_model(&k).unwrap().optimizer_state,
        keras.optimizer_state
    );
}

/// A model Keras compiled but never fitted has an optimizer that is not built yet: its archive holds
/// the iteration count (0) and the learning rate only, which Keras's `load_model` skips for a fresh
/// optimizer (case.json lists the datasets). It reads as no state, and is written back the same way.
#[test]
fn a_compiled_unfitted_archive_has_no_state() {
    for case in ["adam", "nadam", "sgd_momentum", "adam_cosine_decay"] {
        let dir = fixture(&format!("keras_compile/{case}"));
        let meta = read_json(&dir.join("case.json"));
        let datasets: Vec<&str> = meta["files"]["model.keras"]["weights_h5_datasets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .filter(|d| d.starts_with("optimizer/"))
            .collect();
        assert!(datasets.len() <= 2, "{case}: {datasets:?}");
        let m = load_model(&dir.join("model.keras")).unwrap();
        assert_eq!(m.optimizer_state, None, "{case}");
        let tmp = tempdir();
        let out = tmp.path().join("m.keras");
        save_model(&out, &m).unwrap();
        assert_eq!(load_model(&out).unwrap().optimizer_state, None, "{case}");
    }
}

/// A legacy `.h5`'s `optimizer_weights` is checked as an archive's is: a slot of the wrong shape, or
/// a count the compiled optimizer does not build, is an error naming the file and what is wrong.
#[test]
fn a_legacy_h5_with_ill_fitting_optimizer_weights_is_refused() {
    use hdf5::types::VarLenUnicode;
    let src = fixture("keras_archive/adam_batchnorm/model.h5");
    let tmp = tempdir();
    type Edit = fn(&hdf5::Group);
    let edits: [(&str, Edit, &str); 2] = [
        (
            "shape",
            |g| {
                let a = g.group("adam").unwrap();
                a.unlink("sequential_dense_kernel_velocity").unwrap();
                a.new_dataset::<f32>()
                    .shape([24])
                    .create("sequential_dense_kernel_velocity")
                    .unwrap();
            },
            "'adam/sequential_dense_kernel_velocity' has shape [24], Adam on this model needs [4, 6]",
        ),
        (
            "count",
            |g| {
                let mut names = hdf5_names(g);
                names.pop();
                g.delete_attr("weight_names").unwrap();
                g.new_attr::<VarLenUnicode>()
                    .shape([names.len()])
                    .create("weight_names")
                    .unwrap()
                    .write_raw(&names)
                    .unwrap();
            },
            "'optimizer_weights' holds 13 variables, but Adam on this model has 14",
        ),
    ];
    for (what, edit, needle) in edits {
        let p = tmp.path().join(format!("{what}.h5"));
        std::fs::copy(&src, &p).unwrap();
        {
            let f = h5_open_rw(&p);
            edit(&f.group("optimizer_weights").unwrap());
        }
        let e = load_model(&p).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        let e = e.to_string();
        assert!(
            e.contains(&*p.to_string_lossy()) && e.contains(needle),
            "{what}: {e}"
        );
    }
}

/// A state too large for text metadata (10M Adam slot values: about 110 MB as JSON, past the
/// safetensors header limit of 100 MB; a ResNet50 fine-tuned with Adam holds 47M) goes through the
/// safetensors bytes the command line's model reader hands back, and through a `.safetensors` file.
#[test]
fn a_large_optimizer_state_survives_safetensors() {
    use keras_transfer::checkpoint::{from_safetensors_bytes, to_safetensors_bytes};
    use keras_transfer::model::{Activation, ModelSpec};
    let spec = ModelSpec::classifier(2500, &[2000], &[Activation::Relu], 2).unwrap();
    let model = keras_transfer::Model::new(spec.clone(), 1).unwrap();
    let mut m = KerasModel::new(spec, model.weights().unwrap(), None);
    let slot = |w: &[f64], k: f64| -> Vec<f64> {
        w.iter()
            .enumerate()
            .map(|(i, _)| f64::from(((i as f64 * 0.37 + k).sin()) as f32))
            .collect()
    };
    let mut variables = Vec::new();
    for (l, lw) in m.spec.layers.iter().zip(&m.weights) {
        for (j, w) in lw.iter().enumerate() {
            for (s, k) in [("momentum", 0.1), ("velocity", 0.2)] {
                variables.push((format!("{}_{j}_{s}", l.name()), slot(w, k)));
            }
        }
    }
    let state = OptimizerState {
        iterations: 7,
        learning_rate: Some(f64::from(0.001f32)),
        variables,
    };
    m.optimizer_state = Some(Ok(state.clone()));
    let back = from_safetensors_bytes(&to_safetensors_bytes(&m).unwrap()).unwrap();
    assert_eq!(back.optimizer_state, Some(Ok(state.clone())));
    assert_eq!(back.weights, m.weights);
    let tmp = tempdir();
    let f = tmp.path().join("big.safetensors");
    save_model(&f, &m).unwrap();
    assert_eq!(load_model(&f).unwrap().optimizer_state, Some(Ok(state)));
}
