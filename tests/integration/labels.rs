//! Labels and hostile CSV data: class order for models that store no class names (`--classes`),
//! labels written as `1.0`, binary `predict`, one CSV reader for regression targets, and the bounds
//! on lines, fields, labels, class counts and float32 values (each refusal names the limit).

use crate::common::*;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A CSV `a,b,y` of `n` rows whose label is `label(i)`, features a function of the label's index.
fn labelled(dir: &Path, name: &str, n: usize, label: impl Fn(usize) -> String) {
    let mut s = String::from("a,b,y\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},{},{}\n",
            (i % 7) as f64 * 0.5,
            (i % 3) as f64 - 1.0,
            label(i)
        ));
    }
    write(dir, name, &s);
}

/// Asserts that `evaluate`'s `loss: L, accuracy: A` is Keras's `evaluate` (`want`'s loss and
/// accuracy), to float32 summation noise.
fn matches_keras(out: &str, want: &serde_json::Value) {
    let line = out.lines().find(|l| l.starts_with("loss: ")).unwrap();
    let nums: Vec<f64> = line
        .split([',', ' '])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        (nums[0] - want["loss"].as_f64().unwrap()).abs() < 6e-5,
        "{out}"
    );
    assert!(
        (nums[1] - want["accuracy"].as_f64().unwrap()).abs() < 6e-4,
        "{out}"
    );
}

fn copy_fixture(dir: &Path, case: &str, files: &[&str]) {
    for f in files {
        std::fs::copy(fixture(&format!("labels/{case}/{f}")), dir.join(f)).unwrap();
    }
}

#[test]
fn string_labels_on_a_keras_model_take_the_class_order_from_classes() {
    let dir = tempdir();
    let d = dir.path();
    copy_fixture(d, "strings", &["model.h5", "eval.csv", "classes.txt"]);
    let want = read_json(&fixture("labels/strings/expected.json"));
    let refused = run(
        d,
        &["evaluate", "--model", "model.h5", "--data", "eval.csv"],
    );
    assert_fails(&refused, 2, &["--classes", "stores no class names"]);
    let classes = "ant,bee,cat,dog,eel";
    for given in [classes, "@classes.txt"] {
        let out = ok(&run(
            d,
            &[
                "evaluate",
                "--model",
                "model.h5",
                "--data",
                "eval.csv",
                "--classes",
                given,
            ],
        ));
        matches_keras(&out, &want);
    }
    // The wrong count of classes is refused, naming the flag.
    let out = run(
        d,
        &[
            "evaluate",
            "--model",
            "model.h5",
            "--data",
            "eval.csv",
            "--classes",
            "bee,dog,eel",
        ],
    );
    assert_fails(&out, 2, &["--classes", "3 classes", "5 outputs"]);
    // finetune and predict take the same order.
    ok(&run(
        d,
        &[
            "finetune",
            "--from",
            "model.h5",
            "--train",
            "eval.csv",
            "--classes",
            classes,
            "--epochs",
            "1",
            "--out",
            "f.h5",
        ],
    ));
    let f = keras_transfer::load_model(&d.join("f.h5")).unwrap();
    assert_eq!(
        f.data.unwrap().classes,
        classes.split(',').collect::<Vec<_>>()
    );
    let out = run(
        d,
        &[
            "finetune", "--from", "model.h5", "--train", "eval.csv", "--epochs", "1",
        ],
    );
    assert_fails(&out, 2, &["--classes"]);
    let p = ok(&run(
        d,
        &[
            "predict",
            "--model",
            "model.h5",
            "--input",
            "eval.csv",
            "--label",
            "species",
            "--classes",
            classes,
        ],
    ));
    assert!(
        p.starts_with("species,predicted,p_ant,p_bee,p_cat,p_dog,p_eel\n"),
        "{p}"
    );
    // compare reads its files by the same rule.
    let compare = |extra: &[&str]| {
        let mut args = vec![
            "compare",
            "--from",
            "model.h5",
            "--train",
            "eval.csv",
            "--test",
            "eval.csv",
            "--repeats",
            "1",
            "--epochs",
            "1",
            "--freeze",
            "0",
            "--no-standalone",
        ];
        args.extend(extra);
        run(d, &args)
    };
    ok(&compare(&["--classes", "@classes.txt"]));
    assert_fails(&compare(&[]), 2, &["--classes", "stores no class names"]);
}

#[test]
fn integer_labels_written_as_floats_are_the_integers() {
    let dir = tempdir();
    let d = dir.path();
    copy_fixture(d, "floats", &["model.h5", "eval.csv"]);
    let want = read_json(&fixture("labels/floats/expected.json"));
    let out = ok(&run(
        d,
        &["evaluate", "--model", "model.h5", "--data", "eval.csv"],
    ));
    matches_keras(&out, &want);
    // 1.5 is no class index.
    let text = std::fs::read_to_string(d.join("eval.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let bad = lines[3].rsplit_once(',').unwrap().0.to_string() + ",1.5";
    lines[3] = &bad;
    write(d, "half.csv", &(lines.join("\n") + "\n"));
    let out = run(
        d,
        &["evaluate", "--model", "model.h5", "--data", "half.csv"],
    );
    assert_fails(&out, 3, &["half.csv", "line 4", "'1.5'", "not an integer"]);
}

#[test]
fn binary_predict_names_the_class_above_one_half() {
    let dir = tempdir();
    let d = dir.path();
    copy_fixture(d, "binary", &["model.h5", "inputs.csv"]);
    let want = read_json(&fixture("labels/binary/expected.json"));
    let check = |out: &str, header: &str, names: [&str; 2]| {
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(header));
        for ((line, p), k) in lines
            .zip(want["p"].as_array().unwrap())
            .zip(want["predicted"].as_array().unwrap())
        {
            let (class, prob) = line.split_once(',').unwrap();
            assert_eq!(class, names[k.as_u64().unwrap() as usize], "{line}");
            let got: f64 = prob.parse().unwrap();
            assert!((got - p.as_f64().unwrap()).abs() < 1e-6, "{line}");
        }
    };
    let out = ok(&run(
        d,
        &["predict", "--model", "model.h5", "--input", "inputs.csv"],
    ));
    check(&out, "predicted,p_1", ["0", "1"]);
    let k: Vec<u64> = want["predicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        k.contains(&0) && k.contains(&1),
        "the fixture has both classes"
    );
    let out = ok(&run(
        d,
        &[
            "predict",
            "--model",
            "model.h5",
            "--input",
            "inputs.csv",
            "--classes",
            "no,yes",
        ],
    ));
    check(&out, "predicted,p_yes", ["no", "yes"]);
}

#[test]
fn regression_reads_csv_like_classification() {
    let dir = tempdir();
    let d = dir.path();
    let mut s = String::from("id;a;b;target\n");
    for i in 0..60 {
        let (a, b) = ((i % 7) as f64 * 0.3, (i % 5) as f64 * 0.2);
        let a_text = if i == 5 { String::new() } else { a.to_string() };
        s.push_str(&format!(
            "{};{a_text};{b};{}\n",
            1000 + i,
            2.0 * a - b + 0.5
        ));
    }
    write(d, "r.csv", &s);
    ok(&run(
        d,
        &[
            "train",
            "--train",
            "r.csv",
            "--loss",
            "mse",
            "--ignore",
            "id",
            "--missing",
            "mean",
            "--epochs",
            "2",
            "--out",
            "r.h5",
        ],
    ));
    let m = keras_transfer::load_model(&d.join("r.h5")).unwrap();
    assert_eq!(m.data.unwrap().features, vec!["a", "b"]);
    // evaluate picks the model's columns by name, whatever their order.
    let mut t = String::from("target,b,a\n");
    for i in 0..20 {
        let (a, b) = ((i % 7) as f64 * 0.3, (i % 5) as f64 * 0.2);
        t.push_str(&format!("{},{b},{a}\n", 2.0 * a - b + 0.5));
    }
    write(d, "t.csv", &t);
    let mut ordered = String::from("a,b,target\n");
    for line in t.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        ordered.push_str(&format!("{},{},{}\n", f[2], f[1], f[0]));
    }
    write(d, "ordered.csv", &ordered);
    let shuffled = ok(&run(d, &["evaluate", "--model", "r.h5", "--data", "t.csv"]));
    let same = ok(&run(
        d,
        &["evaluate", "--model", "r.h5", "--data", "ordered.csv"],
    ));
    assert_eq!(shuffled, same);
}

#[test]
fn a_label_only_in_the_test_file_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    labelled(d, "train.csv", 40, |i| ["x", "y"][i % 2].to_string());
    labelled(d, "test.csv", 10, |i| {
        ["x", "y", "zebra"][i % 3].to_string()
    });
    let out = run(
        d,
        &[
            "train",
            "--train",
            "train.csv",
            "--test",
            "test.csv",
            "--epochs",
            "1",
        ],
    );
    assert_fails(&out, 3, &["test.csv", "line 4", "'zebra'"]);
}

#[test]
fn class_counts_beyond_the_limit_are_refused_fast() {
    let dir = tempdir();
    let d = dir.path();
    labelled(d, "many.csv", 10_001, |i| format!("c{i}"));
    let start = std::time::Instant::now();
    let out = run(d, &["train", "--train", "many.csv", "--epochs", "1"]);
    assert_fails(&out, 3, &["many.csv", "10001 distinct labels", "10000"]);
    labelled(d, "ints.csv", 100_000, |i| i.to_string());
    let out = run(
        d,
        &[
            "train",
            "--train",
            "ints.csv",
            "--epochs",
            "1",
            "--loss",
            "categorical_crossentropy",
        ],
    );
    assert_fails(&out, 3, &["ints.csv", "100000 distinct labels", "10000"]);
    assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
}

#[test]
fn values_beyond_float32_are_refused_like_inf() {
    let dir = tempdir();
    let d = dir.path();
    labelled(d, "big.csv", 20, |i| (i % 2).to_string());
    let text = std::fs::read_to_string(d.join("big.csv")).unwrap();
    write(d, "big.csv", &text.replacen("\n1,", "\n-1e39,", 1));
    let out = run(d, &["train", "--train", "big.csv", "--epochs", "1"]);
    assert_fails(
        &out,
        3,
        &["big.csv", "line 4", "column 'a'", "-1e39", "float32"],
    );
    // A float64 model takes it, as Keras does.
    labelled(d, "small.csv", 20, |i| (i % 2).to_string());
    ok(&run(
        d,
        &[
            "train",
            "--train",
            "small.csv",
            "--epochs",
            "1",
            "--dtype",
            "float64",
            "--out",
            "m.h5",
        ],
    ));
    ok(&run(
        d,
        &[
            "predict", "--model", "m.h5", "--input", "big.csv", "--label", "y",
        ],
    ));
}

#[test]
fn long_labels_lines_and_nul_bytes_are_refused_naming_the_limit() {
    let dir = tempdir();
    let d = dir.path();
    let long = "w".repeat(2000);
    labelled(d, "label.csv", 10, |i| {
        if i == 6 {
            long.clone()
        } else {
            (i % 2).to_string()
        }
    });
    let out = run(d, &["train", "--train", "label.csv", "--epochs", "1"]);
    assert_fails(&out, 3, &["label.csv", "line 8", "1024 bytes"]);
    assert!(
        out.stderr.len() < 300,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A 200 MB file of NUL bytes after a header: refused at once, without reading it whole.
    write(d, "nul.csv", "a,b,y\n1,2,0\n");
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("nul.csv"))
        .unwrap();
    f.set_len(200 << 20).unwrap();
    let start = std::time::Instant::now();
    let out = run(d, &["train", "--train", "nul.csv", "--epochs", "1"]);
    assert_fails(&out, 3, &["nul.csv", "line 3", "NUL byte"]);
    assert!(start.elapsed().as_secs_f64() < 3.0, "{:?}", start.elapsed());
    // A 40 MB line without a newline.
    let mut s = String::from("a,b,y\n1,2,");
    s.push_str(&"7".repeat(40 << 20));
    write(d, "line.csv", &s);
    let out = run(d, &["train", "--train", "line.csv", "--epochs", "1"]);
    assert_fails(&out, 3, &["line.csv", "line 2", "longer than"]);
    // The header too, and a long column name in it.
    write(d, "name.csv", &format!("a,{},y\n1,2,0\n", "n".repeat(5000)));
    let out = run(d, &["train", "--train", "name.csv", "--epochs", "1"]);
    assert_fails(
        &out,
        3,
        &["name.csv", "column 2 of the header", "1024 bytes"],
    );
    write(d, "head.csv", &"h".repeat(40 << 20));
    let out = run(d, &["train", "--train", "head.csv", "--epochs", "1"]);
    assert_fails(&out, 3, &["head.csv", "line 1", "longer than"]);
}

#[test]
fn data_echoed_in_errors_is_cut_and_escaped() {
    let dir = tempdir();
    let d = dir.path();
    let field = format!("\x1b[31m{}", "q".repeat(900));
    labelled(d, "esc.csv", 10, |i| (i % 2).to_string());
    let text = std::fs::read_to_string(d.join("esc.csv")).unwrap();
    write(
        d,
        "esc.csv",
        &text.replacen("\n1,", &format!("\n{field},"), 1),
    );
    let out = run(d, &["train", "--train", "esc.csv", "--epochs", "1"]);
    assert_fails(
        &out,
        3,
        &["esc.csv", "line 4", "\\u{1b}[31m", "(905 characters)"],
    );
    assert!(!out.stderr.contains(&0x1b));
    assert!(
        out.stderr.len() < 300,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A column name in a header.
    write(d, "col.csv", "a,b,y\n1,2,0\n3,4,1\n");
    let ignore = format!("\x1b]0;{}", "z".repeat(500));
    let out = run(
        d,
        &[
            "train", "--train", "col.csv", "--ignore", &ignore, "--epochs", "1",
        ],
    );
    assert_fails(&out, 3, &["--ignore", "\\u{1b}]0;"]);
    assert!(!out.stderr.contains(&0x1b));
    assert!(
        out.stderr.len() < 300,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn predict_fills_gaps_with_the_training_means() {
    let dir = tempdir();
    let d = dir.path();
    let mut s = String::from("a,b,y\n");
    let mut present = Vec::new();
    for i in 0..40 {
        let a = (i % 9) as f64 * 0.37 - 1.0;
        if i % 5 == 3 {
            s.push_str(&format!(",{},{}\n", (i % 4) as f64, i % 2));
        } else {
            present.push(a);
            s.push_str(&format!("{a},{},{}\n", (i % 4) as f64, i % 2));
        }
    }
    write(d, "train.csv", &s);
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    ok(&run(
        d,
        &[
            "train",
            "--train",
            "train.csv",
            "--missing",
            "mean",
            "--epochs",
            "2",
            "--out",
            "m.h5",
        ],
    ));
    write(d, "p1.csv", "a,b\n,1\n5,1\n");
    write(d, "p2.csv", "a,b\n,1\n-5,1\n");
    write(d, "p3.csv", &format!("a,b\n{mean},1\n"));
    ok(&run(d, &["convert", "m.h5", "m.safetensors"]));
    for model in ["m.h5", "m.safetensors"] {
        let row = |f: &str| {
            let out = ok(&run(
                d,
                &[
                    "predict",
                    "--model",
                    model,
                    "--input",
                    f,
                    "--missing",
                    "mean",
                ],
            ));
            out.lines().nth(1).unwrap().to_string()
        };
        let want = row("p3.csv");
        assert_eq!(row("p1.csv"), want, "{model}");
        assert_eq!(row("p2.csv"), want, "{model}");
    }
    // A model trained without --missing mean keeps no means: mean is refused at predict time.
    labelled(d, "full.csv", 20, |i| (i % 2).to_string());
    ok(&run(
        d,
        &[
            "train", "--train", "full.csv", "--epochs", "1", "--out", "n.h5",
        ],
    ));
    let out = run(
        d,
        &[
            "predict",
            "--model",
            "n.h5",
            "--input",
            "p1.csv",
            "--missing",
            "mean",
        ],
    );
    assert_fails(
        &out,
        2,
        &["--missing", "n.h5", "training data's column mean"],
    );
}
