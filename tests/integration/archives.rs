//! Keras 3's own files: Keras-made `.keras` archives and `.weights.h5` files read and predicting as
//! Keras did (fixtures/keras_archive, keras_compile, keras_layers), ours round-tripping, `convert`
//! between every pair of formats, output targets refused before any work, and a corpus of damaged
//! archives through inspect/predict/evaluate/finetune.

use crate::common::*;
use keras_transfer::checkpoint::{FileKind, load_model, load_model_with_weights, save_model};
use keras_transfer::keras::KerasModel;
use keras_transfer::model::{Activation, Model, ModelSpec};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Keras's float32 kernels and ours sum in different orders; predictions agree to this.
const TOL_PREDICT: f32 = 1e-6;

fn predict_diff(m: &KerasModel, case: &Path) -> f32 {
    let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
    let (_, preds) = read_csv_f64(&case.join("predictions.csv"));
    let got = m.to_model().unwrap().predict(&inputs.concat()).unwrap();
    let want: Vec<f32> = preds.concat().iter().map(|&v| v as f32).collect();
    max_abs_diff(&got, &want)
}

#[test]
fn keras_made_archives_and_weights_files_predict_as_keras_did() {
    for case in cases("keras_archive") {
        let meta = read_json(&case.join("case.json"));
        let name = case.display();
        let m = load_model(&case.join("model.keras")).unwrap_or_else(|e| panic!("{e}"));
        let d = predict_diff(&m, &case);
        assert!(d <= TOL_PREDICT, "{name}: .keras predicts {d} off Keras");
        assert!(
            weights_diff(&m.weights, &json_weights(&meta["weights"])) == 0.0,
            "{name}: weights"
        );
        let names: Vec<&str> = m.spec.layers.iter().map(|l| l.name()).collect();
        let want: Vec<&str> = meta["layer_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, want, "{name}: layer names");
        assert_eq!(
            m.learning_rate,
            meta["learning_rate"].as_f64(),
            "{name}: lr"
        );
        assert_eq!(m.keras_version, "3.15.1");
        // The weights file, put into the architecture of the legacy .h5 and of the archive.
        for arch in ["model.h5", "model.keras"] {
            let w = load_model_with_weights(&case.join(arch), &case.join("model.weights.h5"))
                .unwrap_or_else(|e| panic!("{e}"));
            let d = predict_diff(&w, &case);
            assert!(d <= TOL_PREDICT, "{name}: .weights.h5 in {arch}: {d}");
        }
    }
}

#[test]
fn keras_compile_archives_hold_the_weights_of_their_h5_and_of_the_fit() {
    for case in cases("keras_compile") {
        let meta = read_json(&case.join("case.json"));
        // A model the tool refuses as .h5 (a setting it cannot honour) it refuses as .keras too.
        let h5 = match load_model(&case.join("model.h5")) {
            Ok(m) => m,
            Err(e) => {
                let k = load_model(&case.join("model.keras"))
                    .map(|_| ())
                    .expect_err("read as .keras but refused as .h5");
                assert_eq!(k.exit_code(), e.exit_code(), "{k} / {e}");
                continue;
            }
        };
        let k = load_model(&case.join("model.keras")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h5.spec, k.spec, "{}", case.display());
        assert_eq!(weights_diff(&h5.weights, &k.weights), 0.0);
        assert_eq!(h5.learning_rate, k.learning_rate, "{}", case.display());
        // After Keras's fit, with the optimizer's variables in the archive too.
        let fitted = load_model(&case.join("fitted.keras")).unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<Vec<Vec<f64>>> = fitted
            .spec
            .layers
            .iter()
            .map(|l| {
                let w = &meta["final"][l.name()];
                vec![flat(&w["kernel"]), flat(&w["bias"])]
            })
            .collect();
        assert_eq!(
            weights_diff(&fitted.weights, &want),
            0.0,
            "{}",
            case.display()
        );
    }
}

fn flat(v: &serde_json::Value) -> Vec<f64> {
    crate::common::flat_f64s(v)
}

/// Every keras_layers case this tool reads as `.h5` it must read as `.keras` and `.weights.h5` too,
/// predicting as Keras did (the layer types grow elsewhere; this test follows them).
#[test]
fn keras_layers_archives_read_wherever_their_h5_does() {
    let mut read = 0;
    for case in cases("keras_layers") {
        if !case.join("predictions.csv").exists() || load_model(&case.join("model.h5")).is_err() {
            continue;
        }
        let name = case.display();
        let k = load_model(&case.join("model.keras")).unwrap_or_else(|e| panic!("{e}"));
        let d = predict_diff(&k, &case);
        assert!(d <= TOL_PREDICT, "{name}: .keras predicts {d} off Keras");
        if case.join("model.weights.h5").exists() {
            let w = load_model_with_weights(&case.join("model.h5"), &case.join("model.weights.h5"))
                .unwrap_or_else(|e| panic!("{e}"));
            let d = predict_diff(&w, &case);
            assert!(
                d <= TOL_PREDICT,
                "{name}: .weights.h5 predicts {d} off Keras"
            );
        }
        read += 1;
    }
    eprintln!("keras_layers: {read} cases read as .keras");
}

fn odd_model() -> KerasModel {
    let spec =
        ModelSpec::classifier(4, &[6, 4], &[Activation::Tanh, Activation::Sigmoid], 3).unwrap();
    let m = Model::new(spec, 11).unwrap();
    KerasModel::new(
        m.spec().clone(),
        m.weights().unwrap(),
        Some(&keras_transfer::OptimizerSpec::sgd(0.03)),
    )
}

#[test]
fn our_archives_and_weights_files_round_trip() {
    let dir = tempdir();
    let m = odd_model();
    let k = dir.path().join("m.keras");
    save_model(&k, &m).unwrap();
    let back = load_model(&k).unwrap();
    assert_eq!(back.spec, m.spec);
    assert_eq!(back.weights, m.weights);
    // serde_json reads a double back to within an ulp; the float32 learning rate is exact.
    assert_eq!(
        back.learning_rate.map(|v| v as f32),
        m.learning_rate.map(|v| v as f32)
    );
    let w = dir.path().join("m.weights.h5");
    save_model(&w, &m).unwrap();
    let fresh = Model::new(m.spec.clone(), 99).unwrap();
    let arch = dir.path().join("fresh.safetensors");
    save_model(
        &arch,
        &KerasModel::new(fresh.spec().clone(), fresh.weights().unwrap(), None),
    )
    .unwrap();
    let loaded = load_model_with_weights(&arch, &w).unwrap();
    assert_eq!(loaded.weights, m.weights);
    assert_eq!(
        loaded.learning_rate, None,
        "the architecture file's compile settings"
    );
    // A weights-only file is no model, and weights of another architecture do not fit.
    let e = load_model(&w).unwrap_err().to_string();
    assert!(e.contains("--weights") && e.contains("m.weights.h5"), "{e}");
    let other = Model::new(ModelSpec::tutorial(), 1).unwrap();
    let other_path = dir.path().join("other.h5");
    save_model(
        &other_path,
        &KerasModel::new(other.spec().clone(), other.weights().unwrap(), None),
    )
    .unwrap();
    let e = load_model_with_weights(&other_path, &w).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
}

#[test]
fn convert_goes_between_every_pair_of_formats() {
    let dir = tempdir();
    let d = dir.path();
    let src = fixture("keras_archive/dense_sgd/model.keras");
    let original = load_model(&src).unwrap();
    let exts = ["h5", "keras", "safetensors"];
    for a in exts {
        let first = format!("first.{a}");
        let out = run(d, &["convert", src.to_str().unwrap(), &first]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for b in exts {
            let second = format!("from-{a}.{b}");
            let out = run(d, &["convert", &first, &second]);
            assert!(
                out.status.success(),
                "{a}->{b}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let m = load_model(&d.join(&second)).unwrap();
            assert_eq!(m.spec, original.spec, "{a}->{b}");
            assert_eq!(m.weights, original.weights, "{a}->{b}");
            assert_eq!(m.learning_rate, original.learning_rate, "{a}->{b}");
        }
        // Weights only, and back into the architecture of the first file.
        let w = format!("from-{a}.weights.h5");
        let out = run(d, &["convert", &first, &w]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back = format!("back-{a}.keras");
        let out = run(d, &["convert", &first, &back, "--weights", &w]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            load_model(&d.join(&back)).unwrap().weights,
            original.weights
        );
    }
    // A weights file is no model to convert, and --weights wants a weights file.
    assert_fails(
        &run(d, &["convert", "from-h5.weights.h5", "x.keras"]),
        3,
        &["from-h5.weights.h5", "--weights"],
    );
    assert_fails(
        &run(
            d,
            &["convert", "first.h5", "x.keras", "--weights", "first.keras"],
        ),
        2,
        &["--weights", "first.keras"],
    );
}

#[test]
fn inspect_predict_and_finetune_take_keras_archives() {
    let dir = tempdir();
    let d = dir.path();
    let case = fixture("keras_archive/dense_sgd");
    let model = case.join("model.keras");
    let m = model.to_str().unwrap();
    let out = run(d, &["inspect", m]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dense_2 (Dense)"), "{text}");
    let inputs = case.join("inputs.csv");
    let out = run(
        d,
        &[
            "predict",
            "--model",
            m,
            "--input",
            inputs.to_str().unwrap(),
            "--output",
            "p.csv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // predict writes the predicted class, then each class's probability as p_<class>.
    let (header, rows) = read_csv_f64(&d.join("p.csv"));
    let probs: Vec<usize> = (0..header.len())
        .filter(|&j| header[j].starts_with("p_"))
        .collect();
    let got: Vec<f64> = rows
        .iter()
        .flat_map(|r| probs.iter().map(|&j| r[j]).collect::<Vec<_>>())
        .collect();
    let (_, want) = read_csv_f64(&case.join("predictions.csv"));
    let got: Vec<f32> = got.iter().map(|&v| v as f32).collect();
    let want: Vec<f32> = want.concat().iter().map(|&v| v as f32).collect();
    assert!(max_abs_diff(&got, &want) <= TOL_PREDICT);
    // Fine-tuned from a .keras into a .keras: the architecture of the 4-feature model, refitted.
    std::fs::write(
        d.join("t.csv"),
        "x0,x1,x2,x3,y\n1,2,3,4,0\n-1,0,2,1,1\n0.5,0.5,-2,3,2\n",
    )
    .unwrap();
    let out = run(
        d,
        &[
            "finetune", "--from", m, "--train", "t.csv", "--epochs", "2", "--out", "ft.keras",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ft = load_model(&d.join("ft.keras")).unwrap();
    assert_eq!(ft.spec, load_model(&model).unwrap().spec);
}

// ---------------------------------------------------------------------------------------------
// Output targets

#[test]
fn an_unwritable_model_name_fails_before_training() {
    let dir = tempdir();
    let d = dir.path();
    for name in ["m.pt", "m", "m.h5.bak", "m.json"] {
        let t = std::time::Instant::now();
        let out = run(d, &["train", "--epochs", "100000", "--out", name]);
        assert_fails(&out, 2, &[name, ".keras", ".weights.h5"]);
        assert!(out.stdout.is_empty(), "trained before failing");
        assert!(t.elapsed().as_secs() < 10, "{name}: {:?}", t.elapsed());
        assert!(!d.join(name).exists());
    }
    let src = fixture("keras_archive/dense_sgd/model.keras");
    assert_fails(
        &run(d, &["convert", src.to_str().unwrap(), "m.pt"]),
        2,
        &["m.pt"],
    );
    assert_eq!(
        FileKind::of(Path::new("A.WEIGHTS.H5")),
        Some(FileKind::WeightsH5)
    );
    assert_eq!(FileKind::of(Path::new("a.hdf5")), Some(FileKind::KerasH5));
}

#[cfg(unix)]
#[test]
fn devices_fifos_folders_and_missing_folders_are_never_written() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempdir();
    let d = dir.path();
    let fifo = d.join("fifo.h5");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir(d.join("folder.h5")).unwrap();
    let null_was = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(null_was.is_char_device());
    let cases: [(&str, &[&str]); 5] = [
        ("/dev/null", &["/dev/null"]),
        ("fifo.h5", &["fifo.h5", "not a regular file"]),
        ("folder.h5", &["folder.h5", "is a folder"]),
        ("missing/m.h5", &["missing", "does not exist"]),
        ("m.h5/", &["m.h5/", "names no file"]),
    ];
    for (target, needles) in cases {
        for cmd in [
            vec!["train", "--epochs", "100000", "--out", target],
            vec!["train", "--epochs", "100000", "--history", target],
            vec!["blobs", "--seed", "1", "--csv", target],
        ] {
            let t = std::time::Instant::now();
            let out = run_limited(d, &cmd, 20);
            assert_fails(&out, 2, needles);
            assert!(t.elapsed().as_secs() < 10, "{cmd:?}: {:?}", t.elapsed());
        }
    }
    let src = fixture("keras_archive/dense_sgd/model.keras");
    assert_fails(
        &run(d, &["convert", src.to_str().unwrap(), "/dev/null"]),
        2,
        &["/dev/null"],
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(d.join("folder.h5").is_dir());
    assert!(!d.join("missing").exists());
}

// ---------------------------------------------------------------------------------------------
// Damaged archives

/// The damaged archives, in a temporary folder `root` (which also holds `x.csv` for `predict`).
struct Corpus {
    root: PathBuf,
    files: Vec<(String, PathBuf)>,
}

/// A zip of `members` (name, bytes, stored or deflated), as raw bytes.
fn zip_of(members: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes, deflate) in members {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(bytes.len() as u64 > u32::MAX as u64);
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The three members of a good archive.
fn members_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).unwrap();
            (f.name().unwrap().to_string(), b)
        })
        .collect()
}

/// A good archive with member `name` replaced by `bytes` (or removed, for `None`), and `extra` added.
fn with_member(
    good: &[(String, Vec<u8>)],
    name: &str,
    bytes: Option<Vec<u8>>,
    extra: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let mut m: Vec<(&str, Vec<u8>, bool)> = Vec::new();
    for (n, b) in good {
        if n == name {
            if let Some(b) = &bytes {
                m.push((n.as_str(), b.clone(), false));
            }
        } else {
            m.push((n.as_str(), b.clone(), false));
        }
    }
    for (n, b) in extra {
        m.push((n, b.clone(), false));
    }
    zip_of(&m)
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle")
}

/// The config.json of the good archive with `edit` applied to its JSON.
fn config_edit(good: &[(String, Vec<u8>)], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let text = &good.iter().find(|(n, _)| n == "config.json").unwrap().1;
    let mut v: serde_json::Value = serde_json::from_slice(text).unwrap();
    edit(&mut v);
    with_member(good, "config.json", Some(v.to_string().into_bytes()), &[])
}

/// The model.weights.h5 of the good archive edited through HDF5.
fn weights_edit(
    good: &[(String, Vec<u8>)],
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&hdf5::File),
) -> Vec<u8> {
    let p = dir.join(format!("{name}.weights-tmp.h5"));
    std::fs::write(
        &p,
        &good
            .iter()
            .find(|(n, _)| n == "model.weights.h5")
            .unwrap()
            .1,
    )
    .unwrap();
    {
        let f = h5_open_rw(&p);
        edit(&f);
    }
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    with_member(good, "model.weights.h5", Some(bytes), &[])
}

fn corpus() -> Corpus {
    let dir = tempdir();
    let root = dir.path().to_path_buf();
    let d = root.join("files");
    std::fs::create_dir(&d).unwrap();
    let good_path = fixture("keras_archive/dense_sgd/model.keras");
    let good_bytes = std::fs::read(&good_path).unwrap();
    let good = members_of(&good_path);
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: &str, bytes: Vec<u8>| raw.push((what.to_string(), bytes));

    // Truncations and byte changes of the whole archive.
    for n in [
        0,
        1,
        3,
        4,
        30,
        100,
        1000,
        good_bytes.len() / 2,
        good_bytes.len() - 22,
        good_bytes.len() - 1,
    ] {
        add(&format!("truncated to {n} bytes"), good_bytes[..n].to_vec());
    }
    let eocd = find(&good_bytes, b"PK\x05\x06");
    let cd = find(&good_bytes, b"PK\x01\x02");
    let weights_at = find(&good_bytes, b"\x89HDF\r\n\x1a\n");
    for (what, at, value) in [
        ("end record signature", eocd, 0u8),
        ("end record entry count", eocd + 10, 0x7f),
        ("end record directory offset", eocd + 16, 0xff),
        ("end record directory offset high byte", eocd + 19, 0x7f),
        ("central directory signature", cd, 0),
        ("central directory method", cd + 10, 99),
        ("central directory name length", cd + 28, 0xff),
        ("central directory local offset", cd + 42, 0xff),
        ("first local header signature", 0, b'X'),
        ("central directory CRC of the first member", cd + 16, 0x5a),
        ("first local name length", 26, 0xff),
        ("weights HDF5 signature", weights_at, 0),
        ("weights HDF5 superblock version", weights_at + 8, 0x7f),
        (
            "weights HDF5 superblock offsets size",
            weights_at + 13,
            0x7f,
        ),
        ("weights HDF5 superblock end address", weights_at + 40, 0xff),
        ("weights HDF5 root object header", weights_at + 60, 0xff),
        ("weights HDF5 middle", weights_at + 2000, 0xff),
        (
            "config.json first brace",
            find(&good_bytes, b"{\"module\""),
            b'[',
        ),
    ] {
        let mut b = good_bytes.clone();
        b[at] = value;
        add(&format!("byte change: {what}"), b);
    }
    // Not a zip at all.
    add("empty file", Vec::new());
    add("text", b"this is not a model\n".to_vec());
    add(
        "an HDF5 model named .keras",
        std::fs::read(fixture("keras_archive/dense_sgd/model.h5")).unwrap(),
    );
    add("zip signature only", b"PK\x03\x04".to_vec());
    add("empty zip", zip_of(&[]));
    // Missing or unexpected members.
    for m in ["config.json", "model.weights.h5", "metadata.json"] {
        if m != "metadata.json" {
            add(&format!("no {m}"), with_member(&good, m, None, &[]));
        }
    }
    add(
        "weights as npz",
        zip_of(&[
            ("config.json", good[1].1.clone(), false),
            ("model.weights.npz", b"PK\x03\x04".to_vec(), false),
        ]),
    );
    for bad in [
        "../x",
        "../../etc/passwd",
        "/abs/path",
        "a/../../b",
        "C:evil",
        "back\\slash",
    ] {
        add(
            &format!("member named {bad}"),
            with_member(&good, "", None, &[(bad, b"x".to_vec())]),
        );
    }
    add(
        "traversal as the weights' name",
        zip_of(&[
            ("config.json", good[1].1.clone(), false),
            ("../model.weights.h5", good[2].1.clone(), false),
        ]),
    );
    // Zip bombs: a huge, highly compressible member where each member is read.
    let zeros = vec![0u8; 40 << 20];
    for m in ["config.json", "metadata.json", "model.weights.h5"] {
        let mut members: Vec<(&str, Vec<u8>, bool)> = good
            .iter()
            .filter(|(n, _)| n != m)
            .map(|(n, b)| (n.as_str(), b.clone(), false))
            .collect();
        members.push((m, zeros.clone(), true));
        add(&format!("zip bomb as {m}"), zip_of(&members));
    }
    // A member declaring far more than it holds, and one declaring less.
    {
        let mut b = good_bytes.clone();
        let cfg_cd = find(&b[cd..], b"config.json") + cd - 46;
        b[cfg_cd + 24..cfg_cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        add("config.json declares 4 GiB", b);
        let mut b = good_bytes.clone();
        let w_cd = find(&b[cd..], b"model.weights.h5") + cd - 46;
        b[w_cd + 24..w_cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        add("model.weights.h5 declares 4 GiB", b);
        let mut b = good_bytes.clone();
        b[w_cd + 24..w_cd + 28].copy_from_slice(&100u32.to_le_bytes());
        b[w_cd + 20..w_cd + 24].copy_from_slice(&100u32.to_le_bytes());
        add("model.weights.h5 declares 100 bytes", b);
    }
    // Broken and absurd JSON.
    add(
        "config.json not JSON",
        with_member(&good, "config.json", Some(b"{\"module\": ".to_vec()), &[]),
    );
    add(
        "config.json empty",
        with_member(&good, "config.json", Some(Vec::new()), &[]),
    );
    add(
        "config.json not UTF-8",
        with_member(
            &good,
            "config.json",
            Some(vec![0xff, 0xfe, b'{', b'}']),
            &[],
        ),
    );
    let mut nested = "[".repeat(100_000);
    nested.push_str(&"]".repeat(100_000));
    add(
        "config.json 100000 nested arrays",
        with_member(&good, "config.json", Some(nested.clone().into_bytes()), &[]),
    );
    add(
        "metadata.json 100000 nested arrays",
        with_member(&good, "metadata.json", Some(nested.into_bytes()), &[]),
    );
    add(
        "metadata.json not JSON",
        with_member(&good, "metadata.json", Some(b"keras 3".to_vec()), &[]),
    );
    add(
        "metadata.json a list",
        with_member(&good, "metadata.json", Some(b"[1, 2]".to_vec()), &[]),
    );
    add(
        "config.json a list",
        with_member(&good, "config.json", Some(b"[]".to_vec()), &[]),
    );
    add(
        "config.json deep objects",
        with_member(
            &good,
            "config.json",
            Some(format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000)).into_bytes()),
            &[],
        ),
    );
    // Configs that do not fit the weights, or are absurd.
    add(
        "config units changed",
        config_edit(&good, |v| {
            v["config"]["layers"][1]["config"]["units"] = 7.into()
        }),
    );
    add(
        "config units absurd",
        config_edit(&good, |v| {
            v["config"]["layers"][1]["config"]["units"] = 1_000_000_000u64.into()
        }),
    );
    add(
        "config units negative",
        config_edit(&good, |v| {
            v["config"]["layers"][1]["config"]["units"] = (-3).into()
        }),
    );
    add(
        "config input width changed",
        config_edit(&good, |v| {
            v["config"]["layers"][0]["config"]["batch_shape"] = serde_json::json!([null, 5])
        }),
    );
    add(
        "config input width absurd",
        config_edit(&good, |v| {
            v["config"]["layers"][0]["config"]["batch_shape"] =
                serde_json::json!([null, 4_000_000_000u64])
        }),
    );
    add(
        "config a layer removed",
        config_edit(&good, |v| {
            v["config"]["layers"].as_array_mut().unwrap().remove(2);
        }),
    );
    add(
        "config a layer added",
        config_edit(&good, |v| {
            let extra = v["config"]["layers"][3].clone();
            let mut extra = extra;
            extra["config"]["name"] = "extra".into();
            v["config"]["layers"].as_array_mut().unwrap().push(extra);
        }),
    );
    add(
        "config unknown layer",
        config_edit(&good, |v| {
            v["config"]["layers"][1]["class_name"] = "Conv2D".into()
        }),
    );
    add(
        "config unknown model class",
        config_edit(&good, |v| v["class_name"] = "Mystery".into()),
    );
    add(
        "config no layers",
        config_edit(&good, |v| v["config"]["layers"] = serde_json::json!([])),
    );
    add(
        "config layers not a list",
        config_edit(&good, |v| v["config"]["layers"] = 3.into()),
    );
    add(
        "config unknown activation",
        config_edit(&good, |v| {
            v["config"]["layers"][1]["config"]["activation"] = "wobble".into()
        }),
    );
    // Weights that do not fit the config: `layers/<layer>/vars/<i>` replaced by what `make` builds
    // in the `vars` group (or removed, when it builds nothing).
    let tmp = root.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    type Make = fn(&hdf5::Group);
    let replaced: [(&str, &str, &str, Make); 8] = [
        ("a kernel of the wrong shape", "dense", "0", |g| {
            g.new_dataset::<f32>().shape([5, 6]).create("0").unwrap();
        }),
        ("a bias missing", "dense_1", "1", |_| {}),
        ("an integer kernel", "dense", "0", |g| {
            g.new_dataset::<i32>().shape([4, 6]).create("0").unwrap();
        }),
        ("a string kernel", "dense", "0", |g| {
            g.new_dataset::<hdf5::types::VarLenUnicode>()
                .shape([4, 6])
                .create("0")
                .unwrap();
        }),
        ("a NaN bias", "dense", "1", |g| {
            g.new_dataset::<f32>()
                .shape([6])
                .create("1")
                .unwrap()
                .write_raw(&[f32::NAN; 6])
                .unwrap();
        }),
        ("a group where a kernel should be", "dense", "0", |g| {
            g.create_group("0").unwrap();
        }),
        ("an absurd declared shape", "dense", "0", |g| {
            g.new_dataset::<f32>()
                .shape([1usize << 40, 1 << 20])
                .create("0")
                .unwrap();
        }),
        ("a third variable", "dense", "1", |g| {
            g.new_dataset::<f32>().shape([6]).create("1").unwrap();
            g.new_dataset::<f32>().shape([6]).create("2").unwrap();
        }),
    ];
    for (what, layer, var, make) in replaced {
        let bytes = weights_edit(&good, &tmp, var, |f| {
            let g = f.group(&format!("layers/{layer}/vars")).unwrap();
            g.unlink(var).unwrap();
            make(&g);
        });
        add(&format!("weights: {what}"), bytes);
    }
    add(
        "weights: a layer group missing",
        weights_edit(&good, &tmp, "nolayer", |f| {
            f.group("layers").unwrap().unlink("dense_2").unwrap()
        }),
    );
    add(
        "weights: no layers group",
        weights_edit(&good, &tmp, "nolayers", |f| f.unlink("layers").unwrap()),
    );
    add(
        "weights: not HDF5",
        with_member(
            &good,
            "model.weights.h5",
            Some(b"not hdf5 at all".to_vec()),
            &[],
        ),
    );
    add(
        "weights: empty",
        with_member(&good, "model.weights.h5", Some(Vec::new()), &[]),
    );
    add(
        "weights: truncated HDF5",
        with_member(
            &good,
            "model.weights.h5",
            Some(good[2].1[..good[2].1.len() / 2].to_vec()),
            &[],
        ),
    );
    add(
        "weights: HDF5 signature only",
        with_member(
            &good,
            "model.weights.h5",
            Some(b"\x89HDF\r\n\x1a\n".to_vec()),
            &[],
        ),
    );
    add(
        "weights: a legacy model.h5 instead",
        with_member(
            &good,
            "model.weights.h5",
            Some(std::fs::read(fixture("keras_archive/dense_sgd/model.h5")).unwrap()),
            &[],
        ),
    );
    // Optimizer variables that do not fit the compiled optimizer on this architecture (Keras's own
    // Adam archive after 20 epochs: optimizer/vars/0 iteration, 1 learning rate, 2..9 the slots).
    let adam = members_of(&fixture("keras_compile/adam/fitted.keras"));
    type Edit = fn(&hdf5::Group);
    let opt_edits: [(&str, Edit); 14] = [
        ("a slot missing", |g| g.unlink("9").unwrap()),
        ("a slot too many", |g| {
            g.new_dataset::<f32>().shape([3]).create("10").unwrap();
        }),
        ("a slot of the wrong shape", |g| {
            g.unlink("3").unwrap();
            g.new_dataset::<f32>().shape([5, 6]).create("3").unwrap();
        }),
        ("a slot of integers", |g| {
            g.unlink("2").unwrap();
            g.new_dataset::<i32>().shape([4, 6]).create("2").unwrap();
        }),
        ("a slot of strings", |g| {
            g.unlink("2").unwrap();
            g.new_dataset::<hdf5::types::VarLenUnicode>()
                .shape([4, 6])
                .create("2")
                .unwrap();
        }),
        ("a NaN slot", |g| {
            g.unlink("8").unwrap();
            g.new_dataset::<f32>()
                .shape([3])
                .create("8")
                .unwrap()
                .write_raw(&[f32::NAN; 3])
                .unwrap();
        }),
        ("a group where a slot should be", |g| {
            g.unlink("4").unwrap();
            g.create_group("4").unwrap();
        }),
        ("a slot of an absurd declared shape", |g| {
            g.unlink("5").unwrap();
            g.new_dataset::<f32>()
                .shape([1usize << 40, 1 << 20])
                .create("5")
                .unwrap();
        }),
        ("the iteration count as a float", |g| {
            g.unlink("0").unwrap();
            g.new_dataset::<f32>()
                .shape(())
                .create("0")
                .unwrap()
                .write_scalar(&80.0f32)
                .unwrap();
        }),
        ("a negative iteration count", |g| {
            g.unlink("0").unwrap();
            g.new_dataset::<i64>()
                .shape(())
                .create("0")
                .unwrap()
                .write_scalar(&-5i64)
                .unwrap();
        }),
        ("the iteration count as a vector", |g| {
            g.unlink("0").unwrap();
            g.new_dataset::<i64>().shape([2]).create("0").unwrap();
        }),
        ("a learning rate other than the compiled one", |g| {
            g.unlink("1").unwrap();
            g.new_dataset::<f32>()
                .shape(())
                .create("1")
                .unwrap()
                .write_scalar(&0.5f32)
                .unwrap();
        }),
        ("a learning rate as a vector", |g| {
            g.unlink("1").unwrap();
            g.new_dataset::<f32>().shape([2]).create("1").unwrap();
        }),
        ("the variables of another optimizer (by name)", |g| {
            g.delete_attr("name").unwrap();
            g.new_attr::<hdf5::types::VarLenUnicode>()
                .create("name")
                .unwrap()
                .write_scalar(&"adamax".parse::<hdf5::types::VarLenUnicode>().unwrap())
                .unwrap();
        }),
    ];
    for (what, edit) in opt_edits {
        let bytes = weights_edit(&adam, &tmp, "opt", |f| {
            edit(&f.group("optimizer/vars").unwrap())
        });
        add(&format!("optimizer: {what}"), bytes);
    }
    // compile_config naming another optimizer than the variables are of.
    let compiled_as = |class: &str, extra: serde_json::Value| {
        config_edit(&adam, |v| {
            let o = &mut v["compile_config"]["optimizer"];
            o["class_name"] = class.into();
            if let Some(obj) = o["config"].as_object_mut() {
                // Adam's own settings, which another class does not take (Keras refuses them).
                if class != "Adam" {
                    for k in ["beta_1", "beta_2", "amsgrad"] {
                        obj.remove(k);
                    }
                }
                if class == "SGD" {
                    obj.remove("epsilon");
                }
                for (k, x) in extra.as_object().unwrap() {
                    obj.insert(k.clone(), x.clone());
                }
            }
        })
    };
    add(
        "optimizer: compiled as SGD with momentum, Adam's variables",
        compiled_as(
            "SGD",
            serde_json::json!({"momentum": 0.9, "nesterov": false}),
        ),
    );
    add(
        "optimizer: compiled as Adam with amsgrad, plain Adam's variables",
        compiled_as("Adam", serde_json::json!({"amsgrad": true})),
    );
    add(
        "optimizer: compiled as RMSprop (named adam), Adam's variables",
        compiled_as(
            "RMSprop",
            serde_json::json!({"rho": 0.9, "momentum": 0.0, "centered": false}),
        ),
    );

    let mut files = Vec::new();
    for (i, (what, bytes)) in raw.into_iter().enumerate() {
        let p = d.join(format!("bad{i:03}.keras"));
        std::fs::write(&p, bytes).unwrap();
        files.push((what, p));
    }
    std::fs::create_dir(d.join("dir.keras")).unwrap();
    files.push(("a folder".into(), d.join("dir.keras")));
    let fifo = d.join("fifo.keras");
    mkfifo(&fifo);
    files.push(("a FIFO".into(), fifo));
    files.push(("missing".into(), d.join("does-not-exist.keras")));
    std::fs::write(root.join("x.csv"), "x0,x1,x2,x3\n1.5,-2,0,1\n0,3,1,1\n").unwrap();
    Corpus {
        root: dir.keep(),
        files,
    }
}

impl Drop for Corpus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs one command over the whole corpus: every file refused with one line naming it, exit 2 or 3,
/// within seconds. Returns what went wrong, one line per file.
fn sweep(c: &Corpus, command: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    for (what, path) in &c.files {
        let p = path.to_str().unwrap();
        let args: Vec<&str> = command
            .iter()
            .map(|a| if *a == "FILE" { p } else { a })
            .collect();
        let t = std::time::Instant::now();
        let out = run_limited(&c.root, &args, 20);
        let err = String::from_utf8_lossy(&out.stderr);
        let name = path.file_name().unwrap().to_str().unwrap();
        let code = out.status.code();
        if !matches!(code, Some(2 | 3))
            || err.contains("panicked")
            || err.trim_end().lines().count() != 1
            || !err.starts_with("error: ")
            || !err.contains(name)
            || t.elapsed().as_secs() >= 10
        {
            failures.push(format!(
                "{command:?} {what}: exit {code:?} after {:?}: {err}",
                t.elapsed()
            ));
        }
    }
    failures
}

#[test]
fn damaged_archives_through_inspect_predict_evaluate_and_finetune() {
    let c = corpus();
    assert!(
        c.files.len() >= 50,
        "only {} damaged archives",
        c.files.len()
    );
    let commands: Vec<Vec<&str>> = [
        "inspect FILE",
        "predict --model FILE --input x.csv",
        "evaluate --model FILE --problem 1",
        "finetune --from FILE --problem 2 --epochs 1",
    ]
    .iter()
    .map(|c| c.split(' ').collect())
    .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = commands
            .iter()
            .map(|cmd| s.spawn(|| sweep(&c, cmd)))
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The damaged optimizer variables are refused for what they are: `inspect` (which needs no data)
/// names the optimizer variable or group, whatever else the file holds.
#[test]
fn damaged_optimizer_variables_are_named() {
    let c = corpus();
    let mut seen = 0;
    for (what, path) in c.files.iter().filter(|(w, _)| w.starts_with("optimizer:")) {
        let out = run(&c.root, &["inspect", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("{what}: {}", err.trim_end());
        assert_eq!(out.status.code(), Some(3), "{what}: {err}");
        assert!(
            err.contains("optimizer/vars") || err.contains("optimizer variable"),
            "{what}: {err}"
        );
        seen += 1;
    }
    assert!(seen >= 17, "{seen} optimizer cases");
}

/// Zip bombs (300 MiB of zeros in a few hundred KiB), including one whose header claims 1000 bytes,
/// are refused by a process limited to 200 MB of address space: nothing decompresses them.
#[cfg(unix)]
#[test]
fn zip_bombs_are_refused_in_bounded_memory() {
    let dir = tempdir();
    let d = dir.path();
    let good = members_of(&fixture("keras_archive/dense_sgd/model.keras"));
    let zeros = vec![0u8; 300 << 20];
    let mut bombs = Vec::new();
    for m in ["config.json", "metadata.json", "model.weights.h5"] {
        let members: Vec<(&str, Vec<u8>, bool)> = good
            .iter()
            .map(|(n, b)| {
                (
                    n.as_str(),
                    if n == m { zeros.clone() } else { b.clone() },
                    n == m,
                )
            })
            .collect();
        let bytes = zip_of(&members);
        assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
        let name = format!("bomb-{m}.keras");
        std::fs::write(d.join(&name), &bytes).unwrap();
        bombs.push((name, "declares"));
        // The same, with the sizes in both headers claiming 1000 bytes.
        let mut lie = bytes.clone();
        let name_at = |hay: &[u8], from: usize| from + find(&hay[from..], m.as_bytes());
        let local = name_at(&lie, 0) - 30;
        lie[local + 22..local + 26].copy_from_slice(&1000u32.to_le_bytes());
        let cd = find(&lie, b"PK\x01\x02");
        let central = name_at(&lie, cd) - 46;
        lie[central + 24..central + 28].copy_from_slice(&1000u32.to_le_bytes());
        let name = format!("lying-bomb-{m}.keras");
        std::fs::write(d.join(&name), &lie).unwrap();
        bombs.push((name, ""));
    }
    let bin = env!("CARGO_BIN_EXE_keras-transfer");
    for (name, needle) in bombs {
        let t = std::time::Instant::now();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 200000; exec '{bin}' inspect '{name}'"))
            .current_dir(d)
            // The cap is on address space: glibc reserves 64 MiB of it per thread arena, which
            // says nothing about the memory a bomb would take; two arenas keep the measure honest.
            .env("RAYON_NUM_THREADS", "1")
            .env("MALLOC_ARENA_MAX", "2")
            .output()
            .unwrap();
        assert_fails(&out, 3, &[&name, needle]);
        assert!(t.elapsed().as_secs() < 10, "{name}: {:?}", t.elapsed());
    }
}

/// `(path, kind, shape, dtype, name attribute)` of every object under `g`, sorted by path.
fn h5_tree(
    g: &hdf5::Group,
    prefix: &str,
    out: &mut Vec<(String, String, Vec<usize>, String, String)>,
) {
    let name_attr = |loc: &hdf5::Location| -> String {
        loc.attr("name")
            .and_then(|a| a.read_scalar::<hdf5::types::VarLenUnicode>())
            .map(|v| v.as_str().to_string())
            .unwrap_or_default()
    };
    for m in g.member_names().unwrap() {
        let path = if prefix.is_empty() {
            m.clone()
        } else {
            format!("{prefix}/{m}")
        };
        if let Ok(sub) = g.group(&m) {
            out.push((
                path.clone(),
                "group".into(),
                vec![],
                String::new(),
                name_attr(&sub),
            ));
            h5_tree(&sub, &path, out);
        } else {
            let ds = g.dataset(&m).unwrap();
            let dtype = match ds.dtype().unwrap().to_descriptor().unwrap() {
                hdf5::types::TypeDescriptor::Float(hdf5::types::FloatSize::U4) => "float32",
                hdf5::types::TypeDescriptor::Integer(hdf5::types::IntSize::U8) => "int64",
                other => panic!("{path}: {other:?}"),
            };
            out.push((
                path,
                "dataset".into(),
                ds.shape(),
                dtype.into(),
                String::new(),
            ));
        }
    }
    out.sort();
}

/// Our archive of the dense_sgd architecture has Keras's own members, in Keras's order, stored, and
/// a model.weights.h5 with the very tree of the archive Keras wrote (case.json), names included.
#[test]
fn our_archive_has_the_layout_keras_writes() {
    let case = fixture("keras_archive/dense_sgd");
    let meta = read_json(&case.join("case.json"));
    let keras = load_model(&case.join("model.keras")).unwrap();
    let dir = tempdir();
    let ours = dir.path().join("ours.keras");
    save_model(&ours, &keras).unwrap();
    let mut z = zip::ZipArchive::new(std::fs::File::open(&ours).unwrap()).unwrap();
    let want_members: Vec<&str> = meta["files"]["model.keras"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let got_members: Vec<String> = z.file_names().map(|n| n.unwrap().to_string()).collect();
    assert_eq!(got_members, want_members);
    for i in 0..z.len() {
        assert_eq!(
            z.by_index(i).unwrap().compression(),
            zip::CompressionMethod::Stored
        );
    }
    let members = members_of(&ours);
    let h5 = dir.path().join("w.h5");
    std::fs::write(&h5, &members[2].1).unwrap();
    let f = h5_open_rw(&h5);
    let mut got = Vec::new();
    h5_tree(&f, "", &mut got);
    let mut want: Vec<(String, String, Vec<usize>, String, String)> = meta["files"]["model.keras"]
        ["weights_h5_tree"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] != "/")
        .map(|e| {
            let shape = e["shape"]
                .as_array()
                .map(|s| s.iter().map(|v| v.as_u64().unwrap() as usize).collect())
                .unwrap_or_default();
            (
                e["path"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
                shape,
                e["dtype"].as_str().unwrap_or("").to_string(),
                e["attrs"]["name"]["value"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    want.sort();
    // The optimizer's group is named after the optimizer's config name: Keras's `sgd`, this tool's
    // training_config `SGD`.
    for t in [&mut got, &mut want] {
        for e in t.iter_mut() {
            e.4 = e.4.to_lowercase();
        }
    }
    assert_eq!(got, want);
    let cfg: serde_json::Value = serde_json::from_slice(&members[1].1).unwrap();
    assert_eq!(cfg["compile_config"]["optimizer"]["class_name"], "SGD");
    assert_eq!(
        cfg["compile_config"]["optimizer"]["module"],
        "keras.optimizers"
    );
    let md: serde_json::Value = serde_json::from_slice(&members[0].1).unwrap();
    assert_eq!(md["keras_version"], "3.15.1");
    let date = md["date_saved"].as_str().unwrap();
    assert_eq!(date.len(), "2000-01-01@00:00:00".len(), "{date}");
    assert_eq!(&date[10..11], "@", "{date}");
}

/// Every variable of every keras_layers case (Keras-made, with Dropout, BatchNormalization,
/// Functional models...) sits where `class_paths` says, in the layer's variable order: the layout
/// rule holds for the layers this tool reads, whatever their type.
#[test]
fn keras_puts_each_layer_where_class_paths_says() {
    let mut checked = 0;
    for case in cases("keras_layers") {
        let meta = read_json(&case.join("case.json"));
        let layers = meta["layers"].as_array().unwrap();
        let classes: Vec<&str> = layers
            .iter()
            .map(|l| l["class_name"].as_str().unwrap())
            .collect();
        let paths = keras_transfer::keras::archive::class_paths(classes.iter().copied());
        for (layer, path) in layers.iter().zip(&paths) {
            for (i, w) in layer["weights"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(ds) = w["weights_h5_dataset"].as_str() {
                    assert_eq!(ds, format!("{path}/vars/{i}"), "{}", case.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 50, "only {checked} variables checked");
}
