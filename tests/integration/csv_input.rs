//! The CSV loader: label columns, class mapping, and one clear error per kind of bad file.

use crate::common::*;
use keras_transfer::Error;
use keras_transfer::data::csv::{LabelSpec, read_features, read_labelled};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn labels_by_name_and_sorted_classes() {
    let dir = tempdir();
    let p = write(
        dir.path(),
        "d.csv",
        "a,species,b\n1.5,versicolor,2\n-3,setosa,4e2\n0,virginica,0.25\n7,setosa,8\n",
    );
    let d = read_labelled(
        &p,
        &LabelSpec {
            column: Some("species"),
            classes: None,
        },
    )
    .unwrap();
    assert_eq!(d.class_names, vec!["setosa", "versicolor", "virginica"]);
    assert_eq!(d.labels, vec![1, 0, 2, 0]);
    assert_eq!(d.n_features, 2);
    assert_eq!(d.x, vec![1.5, 2.0, -3.0, 400.0, 0.0, 0.25, 7.0, 8.0]);
}

#[test]
fn integer_labels_sort_numerically_and_default_to_the_last_column() {
    let dir = tempdir();
    let p = write(dir.path(), "d.csv", "x0,y\n1,10\n2,9\n3,2\n4,10\n");
    let d = read_labelled(&p, &LabelSpec::default()).unwrap();
    assert_eq!(d.class_names, vec!["2", "9", "10"]);
    assert_eq!(d.labels, vec![2, 1, 0, 2]);
}

#[test]
fn every_bad_csv_has_its_message() {
    let dir = tempdir();
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        ("ragged.csv", "x0,x1,y\n1,2,0\n3,0\n", None, "ragged row"),
        (
            "text.csv",
            "x0,x1,y\n1,abc,0\n",
            None,
            "'abc' is not a number",
        ),
        (
            "nan.csv",
            "x0,x1,y\n1,NaN,0\n",
            None,
            "line 2, column 'x1': missing value",
        ),
        ("inf.csv", "x0,x1,y\n1,inf,0\n", None, "not a finite number"),
        (
            "huge.csv",
            "x0,x1,y\n1,1e999,0\n",
            None,
            "not a finite number",
        ),
        ("empty.csv", "", None, "empty"),
        ("header_only.csv", "x0,x1,y\n", None, "no data rows"),
        (
            "nolabel.csv",
            "x0,x1,y\n1,2,0\n",
            Some("class"),
            "no label column 'class'",
        ),
        (
            "onlylabel.csv",
            "y\n0\n",
            None,
            "at least one feature column",
        ),
        ("emptylabel.csv", "x0,y\n1,\n", None, "empty label"),
    ];
    for (name, text, label, needle) in cases {
        let p = write(dir.path(), name, text);
        let e = read_labelled(
            &p,
            &LabelSpec {
                column: *label,
                classes: None,
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::Csv { .. }), "{name}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{name}: {msg}");
        assert!(
            msg.contains(name),
            "{name}: the message names the file: {msg}"
        );
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
    let missing = read_labelled(&dir.path().join("absent.csv"), &LabelSpec::default()).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }) && missing.to_string().contains("absent.csv"));
}

#[test]
fn unknown_labels_and_wrong_widths_are_named() {
    let dir = tempdir();
    let p = write(dir.path(), "d.csv", "x0,x1,y\n1,2,0\n3,4,5\n");
    let classes = vec!["0".to_string(), "1".to_string(), "2".to_string()];
    let e = read_labelled(
        &p,
        &LabelSpec {
            column: None,
            classes: Some(&classes),
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("label '5' is not among the known classes"),
        "{e}"
    );
    let e = read_features(&p, 2, None).unwrap_err();
    assert!(
        e.to_string().contains("3 feature columns") && e.to_string().contains("--label"),
        "{e}"
    );
    let (x, rows) = read_features(&p, 2, Some("y")).unwrap();
    assert_eq!((x, rows), (vec![1.0, 2.0, 3.0, 4.0], 2));
}

/// A large file with quoted fields (labels with the delimiter and newlines inside quotes) is read,
/// streamed, to exactly the values and labels of its unquoted twin, and an unclosed quote near its
/// end is refused naming the line, as the line limit says.
#[test]
fn a_large_quoted_file_reads_as_its_unquoted_twin() {
    use keras_transfer::data::csv::{ReadSpec, read_table};
    let dir = tempdir();
    let (mut quoted, mut plain) = (String::from("a,b,label\n"), String::from("a,b,label\n"));
    for i in 0..300_000u32 {
        let (a, b) = (f64::from(i) * 0.25, f64::from(i % 97) - 3.5);
        quoted.push_str(&format!("\"{a}\",{b},\"c{}\"\n", i % 4));
        plain.push_str(&format!("{a},{b},c{}\n", i % 4));
    }
    let q = write(dir.path(), "q.csv", &quoted);
    let p = write(dir.path(), "p.csv", &plain);
    let spec = ReadSpec {
        label: Some("label"),
        labelled: true,
        ..ReadSpec::default()
    };
    let (tq, tp) = (
        read_table(&q, &spec).unwrap(),
        read_table(&p, &spec).unwrap(),
    );
    assert_eq!(tq.rows, 300_000);
    assert_eq!(tq.x, tp.x);
    assert_eq!(tq.distinct_labels(), tp.distinct_labels());
    quoted.push_str("1,2,\"never closed\n");
    quoted.push_str(&"z".repeat(9 << 20));
    let q = write(dir.path(), "q2.csv", &quoted);
    let e = read_table(&q, &spec).unwrap_err().to_string();
    assert!(e.contains("line 300002 is longer than"), "{e}");
}
