//! Image folders and NumPy arrays against what TensorFlow and Keras made (fixtures/images,
//! python-check/make_fixtures_images.py): decoding, the bilinear resize, Keras's file order and
//! splits, `--train x.npz`, and a hostile corpus of damaged files.

use crate::common::*;
use keras_transfer::data::arrays::{read_npy, read_npz, read_xy};
use keras_transfer::data::image_decode::{MAX_PIXELS, decode};
use keras_transfer::data::images::{
    FolderOptions, OnBadFile, Subset, index_directory, open_folder,
};
use keras_transfer::data::resize::resize_bilinear;
use std::path::Path;

/// The largest difference (in levels of 0..255) between our JPEG decode and TensorFlow's
/// (libjpeg-turbo, DCT method INTEGER_FAST) on the fixtures, as measured; docs/data-images.md.
const JPEG_MAX_LEVELS: f64 = 8.0;

fn npy_u8(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let a = read_npy(path).unwrap();
    assert_eq!(a.descr, "|u1", "{}", path.display());
    (a.shape, a.values.iter().map(|&v| v as u8).collect())
}

fn npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = read_npy(path).unwrap();
    assert_eq!(a.descr, "<f4", "{}", path.display());
    (a.shape, a.values.iter().map(|&v| v as f32).collect())
}

#[test]
fn decoding_matches_tensorflow_png_bmp_gif_exactly_jpeg_within_its_bound() {
    let dir = fixture("images/decode");
    let table = read_json(&dir.join("decode.json"));
    let mut jpeg_worst = 0.0f64;
    for (name, per_channels) in table.as_object().unwrap() {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        for (c, verdict) in per_channels.as_object().unwrap() {
            let channels: usize = c.parse().unwrap();
            let ours = decode(&dir.join(name), &bytes, channels, MAX_PIXELS);
            if (name.as_str(), channels) == ("rgb_gamma.png", 1) {
                // TensorFlow reads it (libpng's gamma-corrected gray); refused here, by name.
                let e = ours
                    .expect_err("a gamma PNG to gray is refused")
                    .to_string();
                assert!(e.contains(name.as_str()) && e.contains("gamma"), "{e}");
                continue;
            }
            if verdict.as_str().unwrap() != "ok" {
                let e = ours.expect_err(&format!("{name} c{c}: TensorFlow refuses it"));
                assert!(e.to_string().contains(name.as_str()), "{e}");
                continue;
            }
            let ours = ours.unwrap_or_else(|e| panic!("{name} c{c}: {e}"));
            let (shape, tf) = npy_u8(&dir.join(format!("{name}.c{c}.npy")));
            assert_eq!(
                vec![ours.height, ours.width, ours.channels],
                shape,
                "{name} c{c}"
            );
            if name.ends_with(".jpg") {
                let d = max_abs_diff(
                    &ours
                        .pixels
                        .iter()
                        .map(|&v| f32::from(v))
                        .collect::<Vec<_>>(),
                    &tf.iter().map(|&v| f32::from(v)).collect::<Vec<_>>(),
                );
                jpeg_worst = jpeg_worst.max(f64::from(d));
                eprintln!("{name} c{c}: JPEG max difference {d} levels");
            } else {
                assert!(
                    ours.pixels == tf,
                    "{name} c{c}: {:?} vs TF {:?}",
                    ours.pixels,
                    tf
                );
            }
        }
    }
    assert!(
        jpeg_worst <= JPEG_MAX_LEVELS,
        "JPEG differs by {jpeg_worst} levels"
    );
}

#[test]
fn bilinear_resize_is_within_1e_4_of_tf_image_resize() {
    let dir = fixture("images/resize");
    let (shape, src) = npy_u8(&dir.join("src.npy"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let Some((h, w)) = name.split_once('x') else {
            continue;
        };
        let (h, w): (usize, usize) = (h.parse().unwrap(), w.parse().unwrap());
        let (tshape, tf) = npy_f32(&path);
        assert_eq!(tshape, vec![h, w, 3]);
        let ours = resize_bilinear(&src, (shape[0], shape[1], shape[2]), (h, w));
        let d = max_abs_diff(&ours, &tf);
        assert!(d <= 1e-4, "{name}: {d}");
        seen += 1;
    }
    assert_eq!(seen, 6);
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn ints(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn folder_order_labels_and_splits_are_keras_s() {
    let folder = fixture("images/folder");
    let keras = read_json(&fixture("images/folder.json"));
    let index = index_directory(&folder).unwrap();
    assert_eq!(index.class_names, strings(&keras["class_names"]));
    assert_eq!(index.files, strings(&keras["dataset_file_paths"]));
    for case in keras["cases"].as_array().unwrap() {
        let mut base = index.clone();
        if case["shuffle"].as_bool().unwrap() {
            base = base.shuffled(case["seed"].as_u64().unwrap() as u32);
        }
        let what = format!("shuffle {} seed {}", case["shuffle"], case["seed"]);
        assert_eq!(base.files, strings(&case["paths"]), "{what}");
        assert_eq!(base.labels, ints(&case["labels"]), "{what}");
        for (key, want) in case["splits"].as_object().unwrap() {
            let (f, subset) = key.split_once(':').unwrap();
            let subset = if subset == "training" {
                Subset::Training
            } else {
                Subset::Validation
            };
            let got = base.clone().split(f.parse().unwrap(), subset).unwrap();
            assert_eq!(got.files, strings(&want["paths"]), "{what} {key}");
            assert_eq!(got.labels, ints(&want["labels"]), "{what} {key}");
        }
    }
}

#[test]
fn folder_pixels_are_image_dataset_from_directory_s_batch_by_batch() {
    let keras = read_json(&fixture("images/folder.json"));
    let (shape, want) = npy_f32(&fixture("images/folder_pixels.npy"));
    assert_eq!(shape[1..], [10, 12, 3]);
    let folder = open_folder(
        &fixture("images/folder"),
        FolderOptions {
            image_size: (10, 12),
            channels: 3,
            ..FolderOptions::default()
        },
    )
    .unwrap();
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for batch in folder.batches(4) {
        let batch = batch.unwrap();
        assert!(batch.labels.len() <= 4);
        x.extend(batch.x);
        labels.extend(batch.labels);
    }
    assert_eq!(labels, ints(&keras["dataset_labels"]));
    let d = max_abs_diff(&x, &want);
    assert!(d <= 1e-4, "{d}");
}

#[test]
fn folder_options_are_checked_as_keras_checks_them() {
    let folder = fixture("images/folder");
    let open = |o: FolderOptions| open_folder(&folder, o).unwrap_err().to_string();
    let e = open(FolderOptions {
        shuffle: true,
        ..FolderOptions::default()
    });
    assert!(e.contains("seed"), "{e}");
    let e = open(FolderOptions {
        validation_split: Some(0.2),
        ..FolderOptions::default()
    });
    assert!(e.contains("subset"), "{e}");
    // 0.01 of 20 files is int(0.2) = 0 validation files: Keras would train on none.
    let e = open(FolderOptions {
        validation_split: Some(0.01),
        subset: Some(Subset::Training),
        ..FolderOptions::default()
    });
    assert!(e.contains("0 validation files"), "{e}");
    let e = open(FolderOptions {
        channels: 2,
        ..FolderOptions::default()
    });
    assert!(e.contains("channels"), "{e}");
    // Grayscale from a folder holding a BMP and a GIF: TensorFlow refuses, and so does the reader,
    // naming the file.
    let gray = open_folder(
        &folder,
        FolderOptions {
            image_size: (4, 4),
            channels: 1,
            ..FolderOptions::default()
        },
    )
    .unwrap();
    let e = gray.batches(64).next().unwrap().unwrap_err().to_string();
    assert!(e.contains("w.gif") && e.contains("3 channels"), "{e}");
}

// ------------------------------------------------------------------------------------ arrays

#[test]
fn npz_and_npy_of_every_dtype_and_order_give_the_csv_s_numbers() {
    let dir = fixture("images/arrays");
    let (_, rows) = read_csv_f64(&dir.join("xy.csv"));
    let want_x: Vec<f64> = rows.iter().flat_map(|r| r[..4].to_vec()).collect();
    let want_y: Vec<f64> = rows.iter().map(|r| r[4]).collect();
    for name in [
        "xy.npz",
        "xy_compressed.npz",
        "x.npy",
        "xy_f64.npz",
        "xy_fortran.npz",
        "xy_bigendian.npz",
    ] {
        let (x, y) = read_xy(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(x.shape, vec![60, 4], "{name}");
        assert!(x.values == want_x, "{name}: x differs");
        assert!(y.values == want_y, "{name}: y differs");
    }
    let (x, _) = read_xy(&dir.join("xy_u8.npz")).unwrap();
    assert!(
        x.values
            .iter()
            .all(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v))
    );
    let imgs = read_npz(&dir.join("images_u8.npz"), &["x"]).unwrap();
    assert_eq!(imgs[0].shape, vec![4, 5, 6, 3]);
}

#[test]
fn bad_numpy_files_each_have_their_one_line_error() {
    let dir = fixture("images/arrays");
    let cases = [
        ("bad_rows.npz", "y has shape [59]"),
        ("bad_no_y.npz", "no array 'y'"),
        ("bad_complex.npz", "complex"),
        ("bad_object.npz", "object array"),
        ("bad_strings.npz", "text"),
        ("bad_record.npz", "record"),
        ("bad_scalar.npz", "scalar"),
    ];
    for (name, needle) in cases {
        let e = read_xy(&dir.join(name)).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let e = read_npy(&dir.join("bad_object.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad_object.npy") && e.contains("pickle"), "{e}");
}

fn model_weights(path: &Path) -> Vec<Vec<u64>> {
    keras_transfer::keras::h5::load_h5(path)
        .unwrap()
        .weights
        .iter()
        .flatten()
        .map(|w| w.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn an_mlp_trains_on_an_npz_exactly_as_on_the_same_numbers_in_a_csv() {
    let dir = tempdir();
    let d = dir.path();
    let arrays = fixture("images/arrays");
    let arg = |name: &str| arrays.join(name).to_str().unwrap().to_string();
    let train = |x: &str, t: &str, out: &str| {
        let o = run(
            d,
            &[
                "train",
                "--train",
                &arg(x),
                "--test",
                &arg(t),
                "--epochs",
                "3",
                "--seed",
                "4",
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let from_csv = train("xy.csv", "test.csv", "csv.h5");
    let from_npz = train("xy.npz", "test.npz", "npz.h5");
    assert_eq!(from_csv, from_npz);
    let (a, b) = (
        model_weights(&d.join("csv.h5")),
        model_weights(&d.join("npz.h5")),
    );
    assert!(!a.is_empty());
    assert!(a == b, "the weights differ");
    // predict reads the npz's x as it reads the CSV's feature columns.
    for (input, output) in [("test.csv", "p_csv.csv"), ("test.npz", "p_npz.csv")] {
        let o = run(
            d,
            &[
                "predict",
                "--model",
                "npz.h5",
                "--input",
                &arg(input),
                "--label",
                "y",
                "--output",
                output,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let p_csv = std::fs::read_to_string(d.join("p_csv.csv")).unwrap();
    assert_eq!(p_csv, std::fs::read_to_string(d.join("p_npz.csv")).unwrap());
    assert_eq!(p_csv.lines().count(), 13, "{p_csv}");
    // A .npy pair, and a CSV test set with columns x0.. beside it, work the same; a label column by
    // name is refused (a NumPy file has no columns).
    let out = run(
        d,
        &[
            "train",
            "--train",
            &arg("x.npy"),
            "--test",
            &arg("test.csv"),
            "--epochs",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        d,
        &[
            "train",
            "--train",
            &arg("xy.npz"),
            "--label",
            "label",
            "--epochs",
            "1",
        ],
    );
    assert_fails(&out, 3, &["xy.npz", "label column 'label'"]);
    let out = run(
        d,
        &["train", "--train", &arg("bad_object.npz"), "--epochs", "1"],
    );
    assert_fails(&out, 3, &["bad_object.npz", "pickle"]);
    // predict reads a NumPy input while the model is read; the errors stay in their order: the
    // model's first, then the flags', then the file's.
    let predict = |model: &str, input: &str, extra: &[&str]| {
        let a = arg(input);
        let mut args = vec!["predict", "--model", model, "--input", &a];
        args.extend_from_slice(extra);
        run(d, &args)
    };
    let out = predict("missing.h5", "bad_object.npz", &[]);
    assert_fails(&out, 3, &["missing.h5"]);
    let out = predict("npz.h5", "bad_object.npz", &["--ignore", "x0"]);
    assert_fails(&out, 3, &["bad_object.npz", "column 'x0' to ignore"]);
    let out = predict("npz.h5", "bad_object.npz", &[]);
    assert_fails(&out, 3, &["bad_object.npz", "pickle"]);
    // x.npy with and without its y.npy carried along: the same predictions.
    let with_y = predict("npz.h5", "x.npy", &["--label", "y"]);
    let without = predict("npz.h5", "x.npy", &[]);
    assert!(with_y.status.success() && without.status.success());
    let (a, b) = (
        String::from_utf8_lossy(&with_y.stdout),
        String::from_utf8_lossy(&without.stdout),
    );
    assert_eq!(a.lines().count(), 61, "{a}");
    let probs = |t: &str| -> Vec<String> {
        t.lines()
            .skip(1)
            .map(|l| l.split_once(',').map_or("", |(_, rest)| rest).to_string())
            .collect()
    };
    assert_eq!(
        probs(&a),
        b.lines().skip(1).map(String::from).collect::<Vec<_>>()
    );
}

// ------------------------------------------------------------------------------------ hostile

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    out.extend(8u32.to_be_bytes());
    out.extend(idat);
    out.extend(crc32(idat).to_be_bytes());
    out
}

#[test]
fn hostile_images_get_one_line_errors_naming_the_file() {
    let src = fixture("images/decode");
    let png = std::fs::read(src.join("rgb.png")).unwrap();
    let jpg = std::fs::read(src.join("rgb.jpg")).unwrap();
    let bmp = std::fs::read(src.join("rgb24.bmp")).unwrap();
    let gif = std::fs::read(src.join("palette.gif")).unwrap();
    let mut huge_bmp = bmp.clone();
    huge_bmp[18..22].copy_from_slice(&1_000_000i32.to_le_bytes());
    huge_bmp[22..26].copy_from_slice(&1_000_000i32.to_le_bytes());
    let mut huge_gif = gif.clone();
    huge_gif[6..10].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.png",
            png[..png.len() / 2].to_vec(),
            "damaged PNG",
        ),
        (
            "truncated.jpg",
            jpg[..jpg.len() / 2].to_vec(),
            "damaged JPEG",
        ),
        ("headonly.jpg", jpg[..20].to_vec(), "damaged JPEG"),
        ("truncated.bmp", bmp[..bmp.len() - 3].to_vec(), "BMP"),
        ("tiny.bmp", bmp[..20].to_vec(), "truncated BMP"),
        ("truncated.gif", gif[..gif.len() / 2].to_vec(), "GIF"),
        ("empty.png", Vec::new(), "empty file"),
        (
            "text.png",
            b"hello, not an image\n".to_vec(),
            "not an image",
        ),
        (
            "huge.png",
            png_header(1 << 30, 1 << 30),
            "declares 1073741824 x 1073741824 pixels",
        ),
        ("huge.bmp", huge_bmp, "declares 1000000 x 1000000"),
        ("huge.gif", huge_gif, "declares 65535 x 65535"),
        ("zero.png", png_header(0, 5), "0 x 5"),
    ];
    let dir = tempdir();
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = decode(&path, &bytes, 3, MAX_PIXELS)
            .unwrap_err()
            .to_string();
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn a_damaged_file_in_a_folder_stops_or_is_skipped_as_asked() {
    let dir = tempdir();
    let png = std::fs::read(fixture("images/decode/rgb.png")).unwrap();
    for (rel, bytes) in [
        ("a/1.png", png.clone()),
        ("a/2.png", png[..40].to_vec()),
        ("b/3.png", png.clone()),
        ("b/4.jpg", vec![]),
    ] {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let opts = FolderOptions {
        image_size: (3, 3),
        ..FolderOptions::default()
    };
    let folder = open_folder(dir.path(), opts.clone()).unwrap();
    let e = folder.batches(8).next().unwrap().unwrap_err().to_string();
    assert!(e.contains("2.png") && e.contains("damaged PNG"), "{e}");
    let folder = open_folder(
        dir.path(),
        FolderOptions {
            on_bad_file: OnBadFile::Skip,
            ..opts
        },
    )
    .unwrap();
    let batches: Vec<_> = folder.batches(3).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].labels, vec![0, 1]);
    assert_eq!(batches[0].skipped, vec!["a/2.png"]);
    assert_eq!(batches[1].skipped, vec!["b/4.jpg"]);
    assert_eq!(batches[0].x.len(), 2 * 3 * 3 * 3);
    let e = open_folder(&dir.path().join("a"), FolderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no images found"), "{e}");
}

fn npy_with_header(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut h = dict.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

#[test]
fn hostile_numpy_files_are_refused_from_their_headers() {
    let dir = tempdir();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge.npy",
            npy_with_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                &[],
            ),
            "more than 134217728 values",
        ),
        (
            "short.npy",
            npy_with_header(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 3), }",
                &[0; 80],
            ),
            "truncated",
        ),
        (
            "pickle.npy",
            b"\x80\x04\x95\x10\x00\x00\x00".to_vec(),
            "pickle",
        ),
        ("empty.npy", Vec::new(), "truncated"),
        (
            "garbage.npy",
            npy_with_header("{'descr': '<f4', 'shape': 7}", &[]),
            "malformed",
        ),
        (
            "bighead.npy",
            {
                let mut v = b"\x93NUMPY\x02\x00".to_vec();
                v.extend(u32::MAX.to_le_bytes());
                v
            },
            "numpy's limit",
        ),
        (
            "half.npy",
            npy_with_header(
                "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
                &[0; 4],
            ),
            "half",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
    }
    // An .npz whose member claims far more than the archive holds, a pickle named .npz, a zip with
    // a pickle member.
    let npz = std::fs::read(fixture("images/arrays/xy.npz")).unwrap();
    let cut = dir.path().join("cut.npz");
    std::fs::write(&cut, &npz[..npz.len() / 2]).unwrap();
    let e = read_xy(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.npz"), "{e}");
    let pk = dir.path().join("pk.npz");
    std::fs::write(&pk, b"\x80\x04\x95\x10\x00").unwrap();
    let e = read_xy(&pk).unwrap_err().to_string();
    assert!(e.contains("pk.npz") && e.contains("pickle"), "{e}");
    let inner = dir.path().join("inner.npz");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&inner).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        w.start_file("x.npy", o).unwrap();
        std::io::Write::write_all(&mut w, b"\x80\x04\x95pickled").unwrap();
        w.start_file("y.npy", o).unwrap();
        w.finish().unwrap();
    }
    let e = read_xy(&inner).unwrap_err().to_string();
    assert!(
        e.contains("inner.npz (member x.npy)") && e.contains("pickle"),
        "{e}"
    );
}
