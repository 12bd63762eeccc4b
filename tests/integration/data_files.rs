//! Data as users have it: models keep their feature and class names, files are read by column name
//! in any order and dialect, labels by class name, and `predict` writes class names.

use crate::common::*;
use keras_transfer::checkpoint::load_model;
use keras_transfer::data::csv::{ReadSpec, read_dataset, read_table, read_train_test_with};
use keras_transfer::data::ingest::{Dialect, Missing};
use keras_transfer::data::{BlobsParams, DataSchema, make_blobs};
use std::path::Path;

const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// A 3-class, 4-feature blobs problem as a CSV with named columns in the given order (`label` among
/// them), the classes named `class_names`, the rows `rows`.
fn named_csv(path: &Path, order: &[&str], class_names: &[&str], rows: std::ops::Range<usize>) {
    let b = make_blobs(&BlobsParams {
        n_samples: 600,
        n_features: 4,
        ..BlobsParams::tutorial(3)
    })
    .unwrap();
    let features = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let mut text = order.join(",") + "\n";
    for i in rows {
        let row = b.data.row(i);
        let fields: Vec<String> = order
            .iter()
            .map(|c| match features.iter().position(|f| f == c) {
                Some(j) => format!("{}", row[j]),
                None => class_names[b.data.labels[i]].to_string(),
            })
            .collect();
        text += &(fields.join(",") + "\n");
    }
    std::fs::write(path, text).unwrap();
}

const ORDER: [&str; 5] = [
    "sepal_length",
    "sepal_width",
    "petal_length",
    "petal_width",
    "species",
];
const SHUFFLED: [&str; 5] = [
    "petal_width",
    "species",
    "sepal_length",
    "petal_length",
    "sepal_width",
];

/// A model trained by the CLI on the named train file (400 rows) with a 200-row test file.
fn trained(dir: &Path, out: &str) {
    named_csv(&dir.join("train.csv"), &ORDER, &SPECIES, 0..400);
    named_csv(&dir.join("test.csv"), &ORDER, &SPECIES, 400..600);
    ok(&run(
        dir,
        &[
            "train",
            "--train",
            "train.csv",
            "--test",
            "test.csv",
            "--label",
            "species",
            "--epochs",
            "20",
            "--hidden",
            "8",
            "--out",
            out,
        ],
    ));
}

fn species_schema() -> DataSchema {
    DataSchema {
        features: ORDER[..4].iter().map(|s| s.to_string()).collect(),
        label: Some("species".into()),
        classes: SPECIES.iter().map(|s| s.to_string()).collect(),
        means: Vec::new(),
    }
}

#[test]
fn every_model_file_keeps_the_names_through_convert_and_finetune() {
    let dir = tempdir();
    let d = dir.path();
    trained(d, "m.h5");
    let want = species_schema();
    assert_eq!(
        load_model(&d.join("m.h5")).unwrap().data,
        Some(want.clone())
    );
    for (from, to, fmt) in [
        ("m.h5", "m.safetensors", "keras3"),
        ("m.safetensors", "back.h5", "universal"),
    ] {
        ok(&run(d, &["convert", from, to, "--format", fmt]));
        assert_eq!(
            load_model(&d.join(to)).unwrap().data,
            Some(want.clone()),
            "{to}"
        );
    }
    // Fine-tuning keeps the names; a new head takes the new data's classes.
    ok(&run(
        d,
        &[
            "finetune", "--from", "back.h5", "--train", "test.csv", "--freeze", "1", "--epochs",
            "2", "--out", "f.h5",
        ],
    ));
    assert_eq!(
        load_model(&d.join("f.h5")).unwrap().data,
        Some(want.clone())
    );
    named_csv(&d.join("new.csv"), &ORDER, &["a", "b", "c"], 0..100);
    ok(&run(
        d,
        &[
            "finetune",
            "--from",
            "m.h5",
            "--train",
            "new.csv",
            "--new-head",
            "--epochs",
            "2",
            "--out",
            "g.safetensors",
        ],
    ));
    let g = load_model(&d.join("g.safetensors")).unwrap().data.unwrap();
    assert_eq!(g.classes, vec!["a", "b", "c"]);
    assert_eq!(g.features, want.features);
}

#[test]
fn reordered_columns_give_identical_predictions_and_class_names() {
    let dir = tempdir();
    let d = dir.path();
    trained(d, "m.h5");
    named_csv(&d.join("shuffled.csv"), &SHUFFLED, &SPECIES, 400..600);
    let a = ok(&run(
        d,
        &["predict", "--model", "m.h5", "--input", "test.csv"],
    ));
    let b = ok(&run(
        d,
        &["predict", "--model", "m.h5", "--input", "shuffled.csv"],
    ));
    assert_eq!(a, b);
    let header = a.lines().next().unwrap();
    assert_eq!(header, "predicted,p_setosa,p_versicolor,p_virginica");
    // The model's own label column is left out of a predict input; --label carries it through.
    let c = ok(&run(
        d,
        &[
            "predict",
            "--model",
            "m.h5",
            "--input",
            "shuffled.csv",
            "--label",
            "species",
            "--format",
            "json",
        ],
    ));
    let rows: serde_json::Value = serde_json::from_str(&c).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 200);
    for (r, line) in rows.iter().zip(a.lines().skip(1)) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(r["predicted"], f[0]);
        assert_eq!(
            r["p_virginica"].as_f64().unwrap() as f32,
            f[3].parse::<f32>().unwrap()
        );
        assert!(SPECIES.contains(&r["species"].as_str().unwrap()));
    }
    // compare reads its files by the base model's names too.
    ok(&run(
        d,
        &[
            "compare",
            "--from",
            "m.h5",
            "--train",
            "shuffled.csv",
            "--test",
            "shuffled.csv",
            "--repeats",
            "1",
            "--epochs",
            "1",
            "--freeze",
            "1",
        ],
    ));
    // Evaluate: same accuracy whatever the order.
    let e1 = ok(&run(
        d,
        &["evaluate", "--model", "m.h5", "--data", "test.csv"],
    ));
    let e2 = ok(&run(
        d,
        &["evaluate", "--model", "m.h5", "--data", "shuffled.csv"],
    ));
    assert_eq!(e1, e2);
}

/// The accuracy `predict`'s output gives on a labelled file (label carried through).
fn accuracy_from_predict(d: &Path, model: &str, data: &str, label: &str) -> f64 {
    let text = ok(&run(
        d,
        &[
            "predict", "--model", model, "--input", data, "--label", label,
        ],
    ));
    let mut hits = 0;
    let mut n = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        hits += usize::from(f[0] == f[1]);
        n += 1;
    }
    hits as f64 / n as f64
}

fn reported_accuracy(out: &str) -> f64 {
    out.trim()
        .rsplit("accuracy: ")
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_subset_lacking_a_class_is_scored_through_the_models_classes() {
    let dir = tempdir();
    let d = dir.path();
    trained(d, "m.h5");
    let text = std::fs::read_to_string(d.join("test.csv")).unwrap();
    let mut lines = text.lines();
    let mut subset = lines.next().unwrap().to_string() + "\n";
    for l in lines.filter(|l| !l.ends_with("setosa")) {
        subset += &(l.to_string() + "\n");
    }
    std::fs::write(d.join("subset.csv"), subset).unwrap();
    let got = reported_accuracy(&ok(&run(
        d,
        &["evaluate", "--model", "m.h5", "--data", "subset.csv"],
    )));
    let want = accuracy_from_predict(d, "m.h5", "subset.csv", "species");
    assert!((got - want).abs() < 5e-4, "evaluate {got}, predict {want}");
    assert!(want > 0.5, "a trained model scores well: {want}");
}

#[test]
fn integer_labels_one_to_three_evaluate_on_their_own_test_file() {
    let dir = tempdir();
    let d = dir.path();
    named_csv(&d.join("train.csv"), &ORDER, &["1", "2", "3"], 0..400);
    named_csv(&d.join("test.csv"), &ORDER, &["1", "2", "3"], 400..600);
    let t = ok(&run(
        d,
        &[
            "train",
            "--train",
            "train.csv",
            "--test",
            "test.csv",
            "--epochs",
            "20",
            "--out",
            "m.h5",
        ],
    ));
    let test_acc: f64 = t.trim().rsplit("Test: ").next().unwrap().parse().unwrap();
    let e = ok(&run(
        d,
        &["evaluate", "--model", "m.h5", "--data", "test.csv"],
    ));
    assert!(
        (reported_accuracy(&e) - test_acc).abs() < 1e-9,
        "{t} vs {e}"
    );
    let p = accuracy_from_predict(d, "m.h5", "test.csv", "species");
    assert!((p - test_acc).abs() < 5e-4, "{p} vs {test_acc}");
}

#[test]
fn missing_extra_and_unknown_columns_and_labels_are_named() {
    let dir = tempdir();
    let d = dir.path();
    trained(d, "m.h5");
    let text = std::fs::read_to_string(d.join("test.csv")).unwrap();
    // A file lacking a feature column.
    let lacking: String = text
        .lines()
        .map(|l| l.split(',').skip(1).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    std::fs::write(d.join("lacking.csv"), lacking).unwrap();
    let out = run(d, &["evaluate", "--model", "m.h5", "--data", "lacking.csv"]);
    assert_fails(&out, 3, &["lacking.csv", "lacks the column 'sepal_length'"]);
    // An extra column: refused until --ignore names it.
    let extra: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{},{l}\n",
                if i == 0 {
                    "id".to_string()
                } else {
                    i.to_string()
                }
            )
        })
        .collect();
    std::fs::write(d.join("extra.csv"), extra).unwrap();
    let out = run(d, &["evaluate", "--model", "m.h5", "--data", "extra.csv"]);
    assert_fails(&out, 3, &["extra.csv", "'id'", "--ignore id"]);
    let a = ok(&run(
        d,
        &[
            "evaluate",
            "--model",
            "m.h5",
            "--data",
            "extra.csv",
            "--ignore",
            "id",
        ],
    ));
    let b = ok(&run(
        d,
        &["evaluate", "--model", "m.h5", "--data", "test.csv"],
    ));
    assert_eq!(a, b);
    // A label the model never saw.
    let unseen = text.replacen("setosa", "rosa", 1);
    std::fs::write(d.join("unseen.csv"), unseen).unwrap();
    let out = run(d, &["evaluate", "--model", "m.h5", "--data", "unseen.csv"]);
    assert_fails(
        &out,
        3,
        &[
            "unseen.csv",
            "label 'rosa' is not among the known classes ['setosa', 'versicolor', 'virginica']",
        ],
    );
    let out = run(
        d,
        &[
            "finetune",
            "--from",
            "m.h5",
            "--train",
            "unseen.csv",
            "--epochs",
            "1",
        ],
    );
    assert_fails(&out, 3, &["label 'rosa'", "--new-head"]);
}

#[test]
fn a_keras_made_model_reads_by_position_and_says_so_once() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::copy(fixture("keras_h5/k3_tutorial/model.h5"), d.join("k.h5")).unwrap();
    ok(&run(
        d,
        &["blobs", "--seed", "2", "--samples", "100", "--csv", "p.csv"],
    ));
    // Columns renamed: positional reading does not care.
    let text =
        std::fs::read_to_string(d.join("p.csv"))
            .unwrap()
            .replacen("x0,x1,y", "b,a,class", 1);
    std::fs::write(d.join("p.csv"), text).unwrap();
    for args in [
        &["evaluate", "--model", "k.h5", "--data", "p.csv"][..],
        &[
            "predict", "--model", "k.h5", "--input", "p.csv", "--label", "class",
        ][..],
    ] {
        let out = run(d, args);
        ok(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.matches("stores no column or class names").count(),
            1,
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn dialects_read_the_same_data() {
    let dir = tempdir();
    let d = dir.path();
    let plain = read_dataset(
        &write(d, "plain.csv", "a,b,label\n1.5,-2,cat\n3,4e-1,dog\n"),
        &ReadSpec::default(),
    )
    .unwrap()
    .0;
    assert_eq!(plain.x, vec![1.5, -2.0, 3.0, 0.4]);
    assert_eq!(plain.feature_names, vec!["a", "b"]);
    let cases = [
        ("semicolon.csv", "a;b;label\n1.5;-2;cat\n3;4e-1;dog\n", ""),
        ("tab.tsv", "a\tb\tlabel\n1.5\t-2\tcat\n3\t4e-1\tdog\n", ""),
        ("pipe.csv", "a|b|label\n1.5|-2|cat\n3|4e-1|dog\n", ""),
        (
            "crlf_bom.csv",
            "\u{feff}a,b,label\r\n1.5,-2,cat\r\n3,4e-1,dog\r\n",
            "",
        ),
        (
            "quoted.csv",
            "\"a\",\"b\",\"label\"\n\"1.5\",-2,\"cat\"\n3,\" 4e-1\",dog\n",
            "",
        ),
        (
            "spaces.csv",
            "a , b,label\n 1.5, -2 , cat\n3,4e-1,dog\n\n",
            "",
        ),
        (
            "pandas.csv",
            ",a,b,label\n0,1.5,-2,cat\n1,3,4e-1,dog\n",
            "pandas index column",
        ),
        (
            "trailing.csv",
            "a,b,label,\n1.5,-2,cat,\n3,4e-1,dog,\n",
            "no name",
        ),
        (
            "trailing_rows.csv",
            "a,b,label\n1.5,-2,cat,\n3,4e-1,dog,\n",
            "",
        ),
        ("no_newline.csv", "a,b,label\n1.5,-2,cat\n3,4e-1,dog", ""),
    ];
    for (name, text, note) in cases {
        let (got, notes) = read_dataset(&write(d, name, text), &ReadSpec::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, plain, "{name}");
        if note.is_empty() {
            assert!(notes.is_empty(), "{name}: {notes:?}");
        } else {
            assert!(
                notes.len() == 1 && notes[0].contains(note),
                "{name}: {notes:?}"
            );
        }
    }
    // An explicit delimiter wins over detection.
    let p = write(d, "explicit.csv", "a;b,c\n1;2,0\n3;4,1\n");
    let spec = ReadSpec {
        dialect: Dialect {
            delimiter: Some(b';'),
            ..Dialect::default()
        },
        ..ReadSpec::default()
    };
    let got = read_dataset(&p, &spec).unwrap().0;
    assert_eq!(got.feature_names, vec!["a"]);
    assert_eq!(got.class_names, vec!["2,0", "4,1"]);
}

#[test]
fn missing_values_are_an_error_or_handled_as_asked() {
    let dir = tempdir();
    let d = dir.path();
    let p = write(
        d,
        "gaps.csv",
        "a,b,y\n1,2,u\n3,,v\nNA,6,u\n7,8,v\n5,null,u\n",
    );
    let e = read_dataset(&p, &ReadSpec::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gaps.csv: line 3, column 'b': missing value") && e.contains("--missing"),
        "{e}"
    );
    let with = |missing| {
        read_dataset(
            &p,
            &ReadSpec {
                dialect: Dialect {
                    missing,
                    ..Dialect::default()
                },
                ..ReadSpec::default()
            },
        )
        .unwrap()
        .0
    };
    let dropped = with(Missing::Drop);
    assert_eq!(dropped.x, vec![1.0, 2.0, 7.0, 8.0]);
    assert_eq!(dropped.labels, vec![0, 1]);
    // Means over the present values: a = (1+3+7+5)/4 = 4, b = (2+6+8)/3 = 16/3.
    let mean = with(Missing::Mean);
    assert_eq!(
        mean.x,
        vec![
            1.0,
            2.0,
            3.0,
            16.0 / 3.0,
            4.0,
            6.0,
            7.0,
            8.0,
            5.0,
            16.0 / 3.0
        ]
    );
    let zero = with(Missing::Zero);
    assert_eq!(
        zero.x,
        vec![1.0, 2.0, 3.0, 0.0, 0.0, 6.0, 7.0, 8.0, 5.0, 0.0]
    );
    // A missing label is never filled.
    let p = write(d, "nolabel.csv", "a,y\n1,u\n2,\n3,v\n");
    let e = read_dataset(
        &p,
        &ReadSpec {
            dialect: Dialect {
                missing: Missing::Mean,
                ..Dialect::default()
            },
            ..ReadSpec::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 3: empty label in column 'y'"), "{e}");
}

#[test]
fn bad_headers_and_single_class_training_sets_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let cases = [
        (
            "dup.csv",
            "a,a,y\n1,2,0\n3,4,1\n",
            "two columns are named 'a'",
        ),
        (
            "unnamed.csv",
            "a,,b,y\n1,2,3,0\n",
            "column 2 of the header has no name",
        ),
        (
            "one.csv",
            "a,y\n1,u\n2,u\n",
            "every row has the label 'u' in column 'y'",
        ),
        ("decimal.csv", "a;y\n1,5;u\n2;v\n", "decimal commas"),
    ];
    for (name, text, needle) in cases {
        let p = write(d, name, text);
        let e = read_train_test_with(&p, None, &ReadSpec::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
    }
    let out = run(d, &["train", "--train", "one.csv", "--epochs", "1"]);
    assert_fails(&out, 3, &["one.csv", "at least two classes"]);
    let out = run(
        d,
        &[
            "train", "--train", "dup.csv", "--ignore", "zz", "--epochs", "1",
        ],
    );
    assert_fails(&out, 3, &["dup.csv", "two columns are named 'a'"]);
    let out = run(d, &["train", "--train", "one.csv", "--delimiter", "ab"]);
    assert_fails(&out, 2, &["--delimiter", "one ASCII character"]);
}

/// A file big enough to be parsed on several threads, block after block, gives what the one-thread
/// csv-crate path gives (the same rows written with quotes), and errors name the right line.
#[test]
fn the_parallel_parse_equals_the_quoted_one() {
    let dir = tempdir();
    let d = dir.path();
    let b = make_blobs(&BlobsParams {
        n_samples: 100_000,
        n_features: 5,
        centers: 4,
        ..BlobsParams::tutorial(11)
    })
    .unwrap();
    let mut plain = String::from("f0,f1,f2,f3,f4,y\n");
    let mut quoted = String::from("\"f0\",f1,f2,f3,f4,y\n");
    for i in 0..b.data.len() {
        let r: Vec<String> = b.data.row(i).iter().map(|v| v.to_string()).collect();
        plain += &format!("{},{}\n", r.join(","), b.data.labels[i]);
        quoted += &format!(
            "\"{}\",{},\"{}\"\n",
            r[0],
            r[1..].join(","),
            b.data.labels[i]
        );
    }
    assert!(
        plain.len() > 9 << 20,
        "big enough for several threads and several 4 MiB blocks per thread"
    );
    let p = read_dataset(&write(d, "plain.csv", &plain), &ReadSpec::default())
        .unwrap()
        .0;
    let q = read_dataset(&write(d, "quoted.csv", &quoted), &ReadSpec::default())
        .unwrap()
        .0;
    assert_eq!(p, q);
    // Quotes first met in a late block: the whole file is read again through the csv crate.
    let late = format!("{plain}\"1\",2,3,4,5,0\n");
    let l = read_dataset(&write(d, "late.csv", &late), &ReadSpec::default())
        .unwrap()
        .0;
    assert_eq!(l.len(), p.len() + 1);
    assert_eq!(l.x[..p.x.len()], p.x[..]);
    assert_eq!(l.x[p.x.len()..], [1.0, 2.0, 3.0, 4.0, 5.0]);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&p.x), bits(&b.data.x));
    assert_eq!(p.labels, b.data.labels);
    // A bad value near the end: its line number counts every line before it.
    let mut lines: Vec<&str> = plain.lines().collect();
    let n = lines.len();
    lines[n - 3] = "1,2,3,x,5,0";
    let bad = lines.join("\n");
    let e = read_table(&write(d, "bad.csv", &bad), &ReadSpec::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("line {}, column 'f3': 'x' is not a number", n - 2)),
        "{e}"
    );
}

#[test]
fn float32_parse_rounds_once_from_the_exact_decimal() {
    use keras_transfer::data::csv::read_numeric_f32;
    let dir = tempdir();
    let d = dir.path();
    // Values near float32 rounding boundaries, written with many digits.
    let b = make_blobs(&BlobsParams {
        n_samples: 2000,
        ..BlobsParams::tutorial(5)
    })
    .unwrap();
    let mut text = String::from("x0,x1,y\n");
    for i in 0..b.data.len() {
        let r = b.data.row(i);
        text += &format!("{},{},{}\n", r[0], r[1], b.data.labels[i]);
    }
    let p = write(d, "f.csv", &text);
    let (names, x, rows) = read_numeric_f32(&p, &Dialect::default()).unwrap();
    assert_eq!(names, vec!["x0", "x1", "y"]);
    assert_eq!(rows, 2000);
    for i in 0..rows {
        let r = b.data.row(i);
        assert_eq!(x[i * 3].to_bits(), (r[0] as f32).to_bits());
        assert_eq!(x[i * 3 + 1].to_bits(), (r[1] as f32).to_bits());
    }
    assert_eq!(b.data.features_f32()[..4], [x[0], x[1], x[3], x[4]]);
}

#[test]
fn a_regression_model_keeps_its_column_names_and_predicts_its_target_by_name() {
    let dir = crate::common::tempdir();
    let d = dir.path();
    // y = 2a - b, on columns named a, b and target.
    let mut text = String::from("a,b,target\n");
    for i in 0..120 {
        let (a, b) = ((i % 11) as f64 / 5.0 - 1.0, (i % 7) as f64 / 3.0 - 1.0);
        text.push_str(&format!("{a},{b},{}\n", 2.0 * a - b));
    }
    std::fs::write(d.join("r.csv"), &text).unwrap();
    // The same rows with the columns in another order.
    let mut swapped = String::from("target,b,a\n");
    for line in text.lines().skip(1) {
        let v: Vec<&str> = line.split(',').collect();
        swapped.push_str(&format!("{},{},{}\n", v[2], v[1], v[0]));
    }
    std::fs::write(d.join("s.csv"), &swapped).unwrap();
    let out = crate::common::run(
        d,
        &[
            "train", "--train", "r.csv", "--loss", "mse", "--epochs", "3", "--out", "r.h5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (input, output) in [("r.csv", "p.csv"), ("s.csv", "q.csv")] {
        let out = crate::common::run(
            d,
            &[
                "predict", "--model", "r.h5", "--input", input, "--output", output,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let p = std::fs::read_to_string(d.join("p.csv")).unwrap();
    assert_eq!(p.lines().next(), Some("predicted_target"), "{p}");
    assert_eq!(p.lines().count(), 121);
    // The columns are picked by name: reordered input, identical predictions.
    assert_eq!(p, std::fs::read_to_string(d.join("q.csv")).unwrap());
    // And they are the model's own outputs.
    let m = keras_transfer::load_model(&d.join("r.h5")).unwrap();
    let (_, rows) = crate::common::read_csv_f64(&d.join("r.csv"));
    let x: Vec<f64> = rows.iter().flat_map(|r| r[..2].to_vec()).collect();
    let want = m.to_model().unwrap().predict(&x).unwrap();
    let (_, got) = crate::common::read_csv_f64(&d.join("p.csv"));
    let got: Vec<f32> = got.concat().iter().map(|&v| v as f32).collect();
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_eq!(got, want);
}
