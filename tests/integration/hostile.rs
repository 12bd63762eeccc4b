//! Hostile input: a corpus of over 200 damaged and foreign model files run through `inspect`,
//! `predict`, `evaluate` and `finetune` (each must end in exit 0 or a one-line error with a code
//! below 100, within seconds: no panic, abort, signal or hang); bad CSVs and flags; and SIGKILL
//! while a checkpoint is being written over an old one.

use crate::common::*;
use keras_transfer::keras::{Format, load_h5};
use keras_transfer::model::{Model, ModelSpec};
use keras_transfer::rng::NumpyRandomState;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Whether a damaged file must be refused, or may still be a valid model (a flipped byte in the
/// weights' data, say, leaves a loadable file with other numbers).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    Refused,
    NoCrash,
}

/// The damaged files, in a temporary folder `root` (which also holds `x.csv` for `predict`).
struct Corpus {
    root: PathBuf,
    files: Vec<(String, PathBuf, Expect)>,
}

/// The corpus, built by the first sweep that needs it and shared by all four (they only read it).
static CORPUS: OnceLock<Corpus> = OnceLock::new();

unsafe extern "C" {
    /// The C library's `atexit`: `f` runs when the process exits.
    safe fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
}

/// Removes the shared corpus's folder; a static is never dropped, so nothing else would.
extern "C" fn remove_corpus() {
    if let Some(c) = CORPUS.get() {
        let _ = std::fs::remove_dir_all(&c.root);
    }
}

/// The corpus, built once per test process; its folder lives until the process exits.
fn shared_corpus() -> &'static Corpus {
    CORPUS.get_or_init(|| {
        let c = corpus();
        assert_eq!(atexit(remove_corpus), 0, "atexit");
        c
    })
}

fn copy_to(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(src, &p).unwrap();
    p
}

/// Edits a copy of `src` with `edit` (an HDF5-level change).
fn edited(src: &Path, dir: &Path, name: &str, edit: impl FnOnce(&hdf5::File)) -> PathBuf {
    let p = copy_to(src, dir, name);
    {
        let f = h5_open_rw(&p);
        edit(&f);
    }
    p
}

pub(crate) fn set_str_attr(loc: &hdf5::Location, name: &str, value: &str) {
    if loc.attr_names().unwrap().iter().any(|n| n == name) {
        loc.delete_attr(name).unwrap();
    }
    let v: hdf5::types::VarLenUnicode = value.parse().unwrap();
    loc.new_attr::<hdf5::types::VarLenUnicode>()
        .create(name)
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

pub(crate) fn set_str_list(loc: &hdf5::Location, name: &str, values: &[&str]) {
    if loc.attr_names().unwrap().iter().any(|n| n == name) {
        loc.delete_attr(name).unwrap();
    }
    let v: Vec<hdf5::types::VarLenUnicode> = values.iter().map(|s| s.parse().unwrap()).collect();
    loc.new_attr::<hdf5::types::VarLenUnicode>()
        .shape([v.len()])
        .create(name)
        .unwrap()
        .write_raw(&v)
        .unwrap();
}

fn model_config(f: &hdf5::File) -> String {
    let m = load_h5(Path::new(&f.filename())).ok();
    let _ = m;
    f.attr("model_config")
        .unwrap()
        .read_raw::<hdf5::types::FixedAscii<65536>>()
        .unwrap()[0]
        .as_str()
        .to_string()
}

const KERNEL: &str = "model_weights/dense/sequential/dense/kernel";

fn replace_kernel(f: &hdf5::File, build: impl FnOnce(&hdf5::Group, &str)) {
    let g = f.group("model_weights/dense/sequential/dense").unwrap();
    g.unlink("kernel").unwrap();
    build(&g, "kernel");
}

fn corpus() -> Corpus {
    let dir = tempdir();
    let root = dir.path().to_path_buf();
    let d = root.join("files");
    std::fs::create_dir(&d).unwrap();
    let mut files = Vec::new();
    let base = d.join("base.h5");
    save_h5_model(
        &base,
        &Model::new(ModelSpec::tutorial(), 1).unwrap(),
        Format::Keras3,
    );

    // Truncated at many lengths: Keras 3 and Keras 2 files.
    for (tag, src) in [
        ("k3", fixture("keras_h5/k3_tutorial/model.h5")),
        ("k2", fixture("keras_h5/k2_tutorial/model.h5")),
    ] {
        let bytes = std::fs::read(&src).unwrap();
        for j in 0..40 {
            let len = bytes.len() * j / 40 + (j % 7) * 3;
            let p = d.join(format!("trunc_{tag}_{len}.h5"));
            std::fs::write(&p, &bytes[..len.min(bytes.len() - 1)]).unwrap();
            files.push((format!("truncated {tag} at {len}"), p, Expect::Refused));
        }
    }

    // Bytes changed in the superblock, the object headers and attributes near the start, anywhere.
    let bytes = std::fs::read(&base).unwrap();
    for i in 0..100u32 {
        let mut rng = NumpyRandomState::new(i);
        let region = match i % 3 {
            0 => 0..96.min(bytes.len()),
            1 => 96..4096.min(bytes.len()),
            _ => 0..bytes.len(),
        };
        let mut b = bytes.clone();
        for _ in 0..1 + rng.bounded(7) {
            let at = region.start + rng.bounded((region.len() - 1) as u64) as usize;
            b[at] = rng.bounded(255) as u8;
        }
        let p = d.join(format!("flip_{i}.h5"));
        std::fs::write(&p, &b).unwrap();
        files.push((format!("bytes changed #{i}"), p, Expect::NoCrash));
    }

    // Structural damage, made with libhdf5.
    let cfg = model_config(&hdf5::File::open(&base).unwrap());
    type Edit = Box<dyn FnOnce(&hdf5::File)>;
    let mut structural: Vec<(&str, Edit)> = vec![
        (
            "kernel_wrong_shape",
            Box::new(|f| {
                replace_kernel(f, |g, n| {
                    g.new_dataset::<f32>().shape([2, 7]).create(n).unwrap();
                })
            }),
        ),
        (
            "kernel_wrong_rank",
            Box::new(|f| {
                replace_kernel(f, |g, n| {
                    g.new_dataset::<f32>().shape([2, 5, 1]).create(n).unwrap();
                })
            }),
        ),
        (
            "kernel_int_dtype",
            Box::new(|f| {
                replace_kernel(f, |g, n| {
                    g.new_dataset::<i32>().shape([2, 5]).create(n).unwrap();
                })
            }),
        ),
        (
            "kernel_absurd_size",
            Box::new(|f| {
                replace_kernel(f, |g, n| {
                    g.new_dataset::<f32>()
                        .chunk([1, 5])
                        .shape([1usize << 40, 5])
                        .create(n)
                        .unwrap();
                })
            }),
        ),
        (
            "kernel_is_a_group",
            Box::new(|f| {
                replace_kernel(f, |g, n| {
                    g.create_group(n).unwrap();
                })
            }),
        ),
        ("kernel_missing", Box::new(|f| replace_kernel(f, |_, _| {}))),
        (
            "bias_absurd_size",
            Box::new(|f| {
                let g = f.group("model_weights/dense/sequential/dense").unwrap();
                g.unlink("bias").unwrap();
                g.new_dataset::<f32>()
                    .chunk([1024])
                    .shape([1usize << 50])
                    .create("bias")
                    .unwrap();
            }),
        ),
        (
            "kernel_nan",
            Box::new(|f| {
                f.dataset(KERNEL)
                    .unwrap()
                    .write_raw(&[f32::NAN; 10])
                    .unwrap();
            }),
        ),
        (
            "layer_names_missing",
            Box::new(|f| {
                f.group("model_weights")
                    .unwrap()
                    .delete_attr("layer_names")
                    .unwrap()
            }),
        ),
        (
            "layer_names_extra",
            Box::new(|f| {
                set_str_list(
                    &f.group("model_weights").unwrap(),
                    "layer_names",
                    &["dense", "dense_1", "dense_2", "ghost"],
                )
            }),
        ),
        (
            "layer_names_wrong_group",
            Box::new(|f| {
                set_str_list(
                    &f.group("model_weights").unwrap(),
                    "layer_names",
                    &["dense", "nope", "dense_2"],
                )
            }),
        ),
        (
            "layer_names_too_few",
            Box::new(|f| {
                set_str_list(
                    &f.group("model_weights").unwrap(),
                    "layer_names",
                    &["dense", "dense_2"],
                )
            }),
        ),
        (
            "layer_names_numbers",
            Box::new(|f| {
                let g = f.group("model_weights").unwrap();
                g.delete_attr("layer_names").unwrap();
                g.new_attr::<f64>()
                    .shape([3])
                    .create("layer_names")
                    .unwrap()
                    .write_raw(&[1.0, 2.0, 3.0])
                    .unwrap();
            }),
        ),
        (
            "weight_names_missing_datasets",
            Box::new(|f| {
                set_str_list(
                    &f.group("model_weights/dense_1").unwrap(),
                    "weight_names",
                    &["x/kernel", "x/bias"],
                )
            }),
        ),
        (
            "weight_names_three",
            Box::new(|f| {
                set_str_list(
                    &f.group("model_weights/dense_1").unwrap(),
                    "weight_names",
                    &[
                        "sequential/dense_1/kernel",
                        "sequential/dense_1/bias",
                        "sequential/dense_1/bias",
                    ],
                )
            }),
        ),
        (
            "weight_names_missing",
            Box::new(|f| {
                f.group("model_weights/dense_1")
                    .unwrap()
                    .delete_attr("weight_names")
                    .unwrap()
            }),
        ),
        (
            "model_weights_missing",
            Box::new(|f| f.unlink("model_weights").unwrap()),
        ),
        (
            "model_config_missing",
            Box::new(|f| f.delete_attr("model_config").unwrap()),
        ),
        (
            "model_config_not_json",
            Box::new(|f| set_str_attr(f, "model_config", "{\"class_name\": \"Seq")),
        ),
        (
            "model_config_empty",
            Box::new(|f| set_str_attr(f, "model_config", "")),
        ),
        (
            "model_config_a_number",
            Box::new(|f| {
                f.delete_attr("model_config").unwrap();
                f.new_attr::<i64>()
                    .create("model_config")
                    .unwrap()
                    .write_scalar(&42i64)
                    .unwrap();
            }),
        ),
    ];
    let edits: [(&str, &str, &str); 9] = [
        ("config_lstm", "\"Dense\"", "\"LSTM\""),
        ("config_functional", "\"Sequential\"", "\"Functional\""),
        (
            "config_units_absurd",
            "\"units\":5",
            "\"units\":1000000000000",
        ),
        ("config_units_negative", "\"units\":5", "\"units\":-5"),
        ("config_units_zero", "\"units\":5", "\"units\":0"),
        ("config_units_text", "\"units\":5", "\"units\":\"five\""),
        ("config_activation", "\"relu\"", "\"sparsemax\""),
        (
            "config_input_shape",
            "\"batch_shape\":[null,2]",
            "\"batch_shape\":[null,2,2]",
        ),
        ("config_no_layers", "\"layers\"", "\"strata\""),
    ];
    for (name, from, to) in edits {
        assert!(cfg.contains(from), "{name}: the config has no {from}");
        let text = cfg.replacen(from, to, 1);
        structural.push((
            name,
            Box::new(move |f| set_str_attr(f, "model_config", &text)),
        ));
    }
    for (name, edit) in structural {
        let p = edited(&base, &d, &format!("{name}.h5"), edit);
        files.push((name.to_string(), p, Expect::Refused));
    }

    // Foreign inputs.
    let foreign = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    files.push((
        "empty file".into(),
        foreign("empty.h5", b""),
        Expect::Refused,
    ));
    files.push((
        "text".into(),
        foreign("text.h5", b"model_config = not really\n"),
        Expect::Refused,
    ));
    files.push((
        "png".into(),
        foreign("picture.h5", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        Expect::Refused,
    ));
    files.push((
        "hdf5 signature only".into(),
        foreign("sig.h5", b"\x89HDF\r\n\x1a\n"),
        Expect::Refused,
    ));
    files.push((
        "garbage safetensors".into(),
        foreign("g.safetensors", &[0xff; 64]),
        Expect::Refused,
    ));
    files.push((
        ".keras zip named .h5".into(),
        copy_to(
            &fixture("keras_h5_bad/keras_zip/model.h5"),
            &d,
            "keras_zip.h5",
        ),
        Expect::Refused,
    ));
    std::fs::create_dir(d.join("dir.h5")).unwrap();
    files.push(("directory".into(), d.join("dir.h5"), Expect::Refused));
    let fifo = d.join("fifo.h5");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    files.push(("fifo".into(), fifo, Expect::Refused));
    files.push((
        "missing path".into(),
        d.join("does-not-exist.h5"),
        Expect::Refused,
    ));
    assert!(files.len() >= 200, "{} files", files.len());
    std::fs::write(root.join("x.csv"), "x0,x1\n1.5,-2\n0,3\n").unwrap();
    // From here on the folder outlives `dir`: `remove_corpus` removes it when the process exits.
    Corpus {
        root: dir.keep(),
        files,
    }
}

/// Runs one command over the whole corpus.
fn sweep(command: &[&str]) {
    let c = shared_corpus();
    let mut refused = 0;
    for (what, path, expect) in &c.files {
        let p = path.to_str().unwrap();
        let args: Vec<&str> = command
            .iter()
            .map(|a| if *a == "FILE" { p } else { a })
            .collect();
        let out = run_limited(&c.root, &args, 20);
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("{what}: killed by a signal ({:?})", out.status));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(code < 100, "{what}: exit {code}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        if code == 0 {
            assert_eq!(
                *expect,
                Expect::NoCrash,
                "{what}: {command:?} accepted a file it must refuse"
            );
        } else {
            refused += 1;
            assert!(code == 2 || code == 3, "{what}: exit {code}: {err}");
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{what}: not one line: {err}"
            );
            assert!(err.starts_with("error: "), "{what}: {err}");
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                err.contains(name),
                "{what}: the error does not name the file: {err}"
            );
        }
    }
    assert!(refused >= 100, "only {refused} files refused");
}

#[test]
fn damaged_files_through_inspect() {
    sweep(&["inspect", "FILE"]);
}

#[test]
fn damaged_files_through_predict() {
    sweep(&["predict", "--model", "FILE", "--input", "x.csv"]);
}

#[test]
fn damaged_files_through_evaluate() {
    sweep(&["evaluate", "--model", "FILE", "--problem", "1"]);
}

#[test]
fn damaged_files_through_finetune() {
    sweep(&[
        "finetune",
        "--from",
        "FILE",
        "--problem",
        "2",
        "--epochs",
        "1",
    ]);
}

#[test]
fn bad_data_and_flags_each_have_their_message() {
    let dir = tempdir();
    let d = dir.path();
    let model = fixture("keras_h5/k3_tutorial/model.h5");
    let m = model.to_str().unwrap();
    let csv = |name: &str, text: &str| {
        std::fs::write(d.join(name), text).unwrap();
        name.to_string()
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "train".into(),
                "--train".into(),
                csv("nan.csv", "a,b,y\n1,nan,0\n2,3,1\n"),
            ],
            3,
            "line 2, column 'b': missing value",
        ),
        (
            vec![
                "train".into(),
                "--train".into(),
                csv("inf.csv", "a,b,y\n1,-inf,0\n2,3,1\n"),
            ],
            3,
            "not a finite number",
        ),
        (
            vec![
                "train".into(),
                "--train".into(),
                csv("huge.csv", "a,b,y\n1,1e400,0\n2,3,1\n"),
            ],
            3,
            "not a finite number",
        ),
        (
            vec!["train".into(), "--train".into(), csv("empty.csv", "")],
            3,
            "empty",
        ),
        (
            vec![
                "train".into(),
                "--train".into(),
                csv("ragged.csv", "a,b,y\n1,2,0\n2,1\n"),
            ],
            3,
            "ragged row",
        ),
        (
            vec![
                "evaluate".into(),
                "--model".into(),
                m.into(),
                "--data".into(),
                csv("unseen.csv", "a,b,y\n1,2,0\n2,1,7\n"),
            ],
            3,
            "label '7' is not among the known classes",
        ),
        (
            vec![
                "predict".into(),
                "--model".into(),
                m.into(),
                "--input".into(),
                csv("wide.csv", "a,b,c\n1,2,3\n"),
            ],
            3,
            "the model expects 2 inputs",
        ),
        (
            vec![
                "evaluate".into(),
                "--model".into(),
                m.into(),
                "--data".into(),
                csv("three.csv", "a,b,c,y\n1,2,3,0\n"),
            ],
            3,
            "three.csv: has 3 feature columns ('a', 'b', 'c'), the model expects 2 inputs",
        ),
        (
            vec![
                "finetune".into(),
                "--from".into(),
                m.into(),
                "--freeze".into(),
                "9".into(),
            ],
            2,
            "--freeze",
        ),
        (
            vec![
                "compare".into(),
                "--from".into(),
                m.into(),
                "--freeze".into(),
                "4".into(),
                "--repeats".into(),
                "1".into(),
            ],
            2,
            "--freeze",
        ),
        (
            vec!["train".into(), "--epochs".into(), "0".into()],
            2,
            "--epochs",
        ),
        (
            vec!["train".into(), "--lr".into(), "-0.5".into()],
            2,
            "--lr",
        ),
        (vec!["train".into(), "--lr".into(), "nan".into()], 2, "--lr"),
        (
            vec!["train".into(), "--batch-size".into(), "0".into()],
            2,
            "--batch-size",
        ),
        (
            vec![
                "compare".into(),
                "--from".into(),
                m.into(),
                "--repeats".into(),
                "0".into(),
            ],
            2,
            "--repeats",
        ),
        (
            vec!["train".into(), "--hidden".into(), "0".into()],
            2,
            "units",
        ),
        (
            vec![
                "blobs".into(),
                "--seed".into(),
                "1".into(),
                "--samples".into(),
                "0".into(),
            ],
            2,
            "--samples",
        ),
        (vec!["blobs".into(), "--seed".into(), "-1".into()], 2, "-1"),
        (
            vec![
                "train".into(),
                "--problem".into(),
                "1".into(),
                "--plot".into(),
                "curves.jpg".into(),
                "--epochs".into(),
                "1".into(),
            ],
            2,
            "png",
        ),
    ];
    for (args, code, needle) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_limited(d, &a, 30);
        assert_fails(&out, code, &[needle]);
    }
}

#[test]
fn divergence_names_the_epoch_and_writes_no_checkpoint() {
    let dir = tempdir();
    let out = run_limited(
        dir.path(),
        &[
            "train",
            "--problem",
            "1",
            "--lr",
            "1e6",
            "--seed",
            "1",
            "--out",
            "m.h5",
            "--history",
            "h.csv",
        ],
        30,
    );
    assert_fails(&out, 4, &["diverged at epoch 1", "--lr"]);
    assert!(!dir.path().join("m.h5").exists());
    assert!(!dir.path().join("h.csv").exists());
}

#[test]
fn sigkill_while_saving_leaves_the_old_or_the_new_model() {
    let dir = tempdir();
    let d = dir.path();
    let target = d.join("model.h5");
    let old = Model::new(ModelSpec::tutorial(), 123).unwrap();
    save_h5_model(&target, &old, Format::Keras3);
    let old_w = old.weights().unwrap();
    let args = [
        "train",
        "--problem",
        "1",
        "--epochs",
        "3",
        "--seed",
        "2",
        "--out",
        "model.h5",
    ];
    // One complete run gives the new weights and the time a run takes.
    let fresh = tempdir();
    let t = std::time::Instant::now();
    assert!(run(fresh.path(), &args).status.success());
    let runtime = t.elapsed().as_micros() as u64;
    let new_w = load_h5(&fresh.path().join("model.h5")).unwrap().weights;
    assert_ne!(new_w, old_w);
    let (mut saw_old, mut saw_new) = (0, 0);
    let mut rng = NumpyRandomState::new(99);
    for _ in 0..60 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
            .args(args)
            .current_dir(d)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(
            rng.bounded(runtime * 3 / 2),
        ));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = load_h5(&target)
            .unwrap_or_else(|e| panic!("after SIGKILL the target does not load: {e}"))
            .weights;
        if now == old_w {
            saw_old += 1;
        } else if now == new_w {
            saw_new += 1;
            // Put the old file back for the next round.
            save_h5_model(&target, &old, Format::Keras3);
        } else {
            panic!("after SIGKILL the target holds neither the old nor the new weights");
        }
    }
    assert!(
        saw_old > 0 && saw_new > 0,
        "old {saw_old}, new {saw_new}: the kills missed the writing window"
    );
}

/// Each case of `fixtures/keras_h5_bad` (Keras files we do not support, and files on which libhdf5
/// segfaults or never returns) through `inspect`: a one-line error, quickly, as the case's
/// `expect.txt` says. Its format: the first line is `exit N`, the exit code; every further
/// non-empty line is a piece of text the error must contain (short pieces, so that rewording the
/// rest of the message does not break them). The error must also name the model file.
#[test]
fn bad_keras_files_give_the_error_in_their_expect_txt() {
    let dir = tempdir();
    for case in cases("keras_h5_bad") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expect = std::fs::read_to_string(case.join("expect.txt"))
            .unwrap_or_else(|e| panic!("{name}/expect.txt: {e}"));
        let mut lines = expect.lines().map(str::trim).filter(|l| !l.is_empty());
        let code: i32 = lines
            .next()
            .and_then(|l| l.strip_prefix("exit "))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{name}/expect.txt: the first line must be `exit N`"));
        let mut needles: Vec<&str> = lines.collect();
        assert!(!needles.is_empty(), "{name}/expect.txt: no text to expect");
        let model = std::fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|f| f.starts_with("model."))
            .unwrap_or_else(|| panic!("{name}: no model file"));
        let path = case.join(&model);
        // libhdf5 loops forever on hdf5_hang: the binary must give up well before run_limited does.
        let t = std::time::Instant::now();
        let out = run_limited(dir.path(), &["inspect", path.to_str().unwrap()], 20);
        needles.push(&model);
        assert_fails(&out, code, &needles);
        assert!(t.elapsed().as_secs() < 10, "{name} took {:?}", t.elapsed());
    }
}

#[test]
fn a_closed_standard_output_is_no_crash_and_files_still_get_written() {
    use std::process::{Command, Stdio};
    let dir = tempdir();
    let model = fixture("keras_h5/k3_tutorial/model.h5");
    for args in [
        vec![
            "tutorial",
            "--out-dir",
            "study",
            "--repeats",
            "2",
            "--epochs",
            "2",
        ],
        vec!["blobs", "--seed", "3"],
        vec!["inspect", model.to_str().unwrap()],
        vec![
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--problem",
            "2",
        ],
        vec![
            "compare",
            "--from",
            model.to_str().unwrap(),
            "--repeats",
            "2",
            "--epochs",
            "2",
        ],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away at once, like `| head -0`
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(dir.path().join("study/report.md").is_file());
}

/// Problems of a file are bad input (exit 3), never usage (2): a broken `training_config` through
/// finetune and evaluate, a label `inf` in a training CSV.
#[test]
fn a_files_problems_are_exit_3() {
    let dir = tempdir();
    let d = dir.path();
    let src = fixture("keras_h5/k3_tutorial/model.h5");
    for (name, config) in [
        ("broken.h5", "{broken"),
        ("no_optimizer.h5", "{\"loss\": 5}"),
    ] {
        edited(&src, d, name, |f| {
            set_str_attr(f, "training_config", config)
        });
        let out = run_limited(d, &["finetune", "--from", name, "--epochs", "1"], 30);
        assert_fails(&out, 3, &[name, "training_config"]);
        let out = run_limited(d, &["evaluate", "--model", name, "--problem", "2"], 30);
        assert_fails(&out, 3, &[name, "training_config"]);
    }
    std::fs::write(d.join("inf.csv"), "x0,x1,y\n1,2,inf\n3,4,0\n5,6,1\n").unwrap();
    let out = run_limited(d, &["train", "--train", "inf.csv", "--epochs", "1"], 30);
    assert_fails(&out, 3, &["inf.csv", "'inf'"]);
}
