//! make_blobs against sklearn's own output (fixtures/blobs), bit for bit.

use crate::common::*;
use keras_transfer::data::csv::{LabelSpec, read_labelled, write_dataset};
use keras_transfer::data::{BlobsParams, make_blobs};

fn params_of(case: &std::path::Path) -> BlobsParams {
    blobs_params(&read_json(&case.join("params.json")))
}

#[test]
fn make_blobs_equals_sklearn_bit_for_bit() {
    for case in cases("blobs") {
        let b = make_blobs(&params_of(&case)).unwrap();
        let (header, rows) = read_csv_f64(&case.join("data.csv"));
        let f = header.len() - 1;
        assert_eq!(b.data.len(), rows.len(), "{}", case.display());
        for (i, row) in rows.iter().enumerate() {
            for (j, (got, want)) in b.data.row(i).iter().zip(&row[..f]).enumerate() {
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{} row {i} col {j}",
                    case.display()
                );
            }
            assert_eq!(
                b.data.labels[i] as f64,
                row[f],
                "{} row {i} label",
                case.display()
            );
        }
        let (_, centers) = read_csv_f64(&case.join("centers.csv"));
        let want: Vec<u64> = centers.iter().flatten().map(|v| v.to_bits()).collect();
        let got: Vec<u64> = b.centers.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "{} centers", case.display());
    }
}

#[test]
fn blobs_csv_round_trips_bits() {
    let dir = tempdir();
    let path = dir.path().join("p.csv");
    let b = make_blobs(&BlobsParams {
        n_samples: 257,
        centers: 4,
        n_features: 3,
        ..BlobsParams::tutorial(77)
    })
    .unwrap();
    write_dataset(&path, &b.data).unwrap();
    let back = read_labelled(&path, &LabelSpec::default()).unwrap();
    assert_eq!(back.labels, b.data.labels);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back.x), bits(&b.data.x));
}

#[test]
fn blobs_cli_csv_equals_sklearn_fixture() {
    let dir = tempdir();
    let out = run(dir.path(), &["blobs", "--seed", "1", "--csv", "p1.csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read_to_string(dir.path().join("p1.csv")).unwrap();
    let (_, want) = read_csv_f64(&fixture("blobs/tutorial_seed1/data.csv"));
    let (_, mine) = read_csv_f64(&dir.path().join("p1.csv"));
    assert!(got.starts_with("x0,x1,y\n"));
    assert_eq!(mine.len(), want.len());
    for (a, b) in mine.iter().zip(&want) {
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn blobs_rejects_bad_parameters() {
    for p in [
        BlobsParams {
            n_samples: 0,
            ..BlobsParams::tutorial(1)
        },
        BlobsParams {
            centers: 0,
            ..BlobsParams::tutorial(1)
        },
        BlobsParams {
            n_features: 0,
            ..BlobsParams::tutorial(1)
        },
        BlobsParams {
            cluster_std: -1.0,
            ..BlobsParams::tutorial(1)
        },
        BlobsParams {
            cluster_std: f64::NAN,
            ..BlobsParams::tutorial(1)
        },
    ] {
        assert!(make_blobs(&p).is_err(), "{p:?}");
    }
}
