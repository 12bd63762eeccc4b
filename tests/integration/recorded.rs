//! Bit-for-bit guard of the tutorial path: a fixed script of CLI runs (train, finetune with every
//! adaptation, compare with every arm, evaluate, predict, a short tutorial) whose every printed line,
//! history file and saved weight (as float32 bit patterns) must equal the transcript recorded in
//! `fixtures/recorded/transcript.txt`.
//!
//! The transcript was recorded with the code as it stood before the model core was redesigned (one
//! parameter store for 1..R models, layers as a type, optimizers and losses as extension points), so
//! this test proves the redesign changed no result. It goes through the binary and the model files
//! only, never through library types, so it does not move when the library's API does.
//!
//! To re-record after an intended change of results: `KT_RECORD=1 cargo test --release recorded`.

use crate::common::{fixture, run, tempdir};
use std::fmt::Write;
use std::path::Path;

/// The float32 weights of a model file, tensor by tensor in name order, as hex bit patterns: the file
/// is converted to safetensors by the binary and read with the safetensors crate.
fn weights_dump(dir: &Path, model: &str) -> String {
    let st = format!("{model}.dump.safetensors");
    let out = run(dir, &["convert", model, &st]);
    assert!(
        out.status.success(),
        "convert {model}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.join(&st)).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = tensors.names().into_iter().map(String::from).collect();
    names.sort();
    let mut s = String::new();
    for n in names {
        let t = tensors.tensor(&n).unwrap();
        let shape: Vec<usize> = t.shape().iter().copied().filter(|&d| d != 1).collect();
        let bits: Vec<String> = t
            .data()
            .chunks_exact(4)
            .map(|c| format!("{:08x}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        writeln!(s, "  {n} {shape:?}: {}", bits.join(" ")).unwrap();
    }
    s
}

/// Rewrites a model file's `model_config` so that its output layer uses `activation` instead of
/// softmax (a model this tool cannot build from the command line, but reads from Keras files).
fn with_output_activation(dir: &Path, src: &str, dst: &str, activation: &str) {
    std::fs::copy(dir.join(src), dir.join(dst)).unwrap();
    let f = crate::common::h5_open_rw(&dir.join(dst));
    let cfg = f
        .attr("model_config")
        .unwrap()
        .read_raw::<hdf5::types::FixedAscii<65536>>()
        .unwrap()[0]
        .as_str()
        .to_string();
    let at = cfg.rfind("\"softmax\"").expect("a softmax output");
    let cfg = format!(
        "{}\"{activation}\"{}",
        &cfg[..at],
        &cfg[at + "\"softmax\"".len()..]
    );
    f.delete_attr("model_config").unwrap();
    let v: hdf5::types::VarLenUnicode = cfg.parse().unwrap();
    f.new_attr::<hdf5::types::VarLenUnicode>()
        .create("model_config")
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

/// One CLI run: its arguments, exit code, standard output, and the files it was asked to write.
fn step(dir: &Path, log: &mut String, args: &[&str]) {
    let out = run(dir, args);
    writeln!(log, "$ keras-transfer {}", args.join(" ")).unwrap();
    writeln!(log, "exit {}", out.status.code().unwrap_or(-1)).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        writeln!(log, "| {line}").unwrap();
    }
    for (i, a) in args.iter().enumerate() {
        let Some(file) = args.get(i + 1) else { break };
        match *a {
            "--out" => {
                writeln!(log, "weights of {file}:").unwrap();
                log.push_str(&weights_dump(dir, file));
            }
            "--history" | "--json" | "--output" => {
                writeln!(log, "{file}:").unwrap();
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                for line in text.lines() {
                    writeln!(log, "  {line}").unwrap();
                }
            }
            _ => {}
        }
    }
}

fn transcript() -> String {
    let tmp = tempdir();
    let d = tmp.path();
    let mut log = String::new();
    let l = &mut log;
    // Problem-1 models: the tutorial's, and others with fused and candle-composed activations.
    step(
        d,
        l,
        &[
            "train",
            "--problem",
            "1",
            "--seed",
            "5",
            "--out",
            "m1.h5",
            "--history",
            "h1.csv",
        ],
    );
    step(
        d,
        l,
        &[
            "train",
            "--problem",
            "1",
            "--seed",
            "6",
            "--epochs",
            "30",
            "--hidden",
            "6,4,3",
            "--activation",
            "tanh,sigmoid,gelu",
            "--no-shuffle",
            "--batch-size",
            "16",
            "--lr",
            "0.05",
            "--out",
            "m_odd.safetensors",
            "--history",
            "h_odd.csv",
        ],
    );
    step(
        d,
        l,
        &[
            "train",
            "--problem",
            "3",
            "--seed",
            "2",
            "--epochs",
            "20",
            "--hidden",
            "7",
            "--activation",
            "elu",
            "--out",
            "m_elu.h5",
            "--format",
            "universal",
        ],
    );
    // Fine-tuning: every adaptation, frozen and not.
    step(
        d,
        l,
        &[
            "finetune",
            "--from",
            "m1.h5",
            "--problem",
            "2",
            "--freeze",
            "1",
            "--seed",
            "3",
            "--out",
            "f1.h5",
            "--history",
            "hf1.csv",
        ],
    );
    step(
        d,
        l,
        &[
            "finetune",
            "--from",
            "m1.h5",
            "--freeze",
            "2",
            "--add-hidden",
            "4",
            "--seed",
            "4",
            "--epochs",
            "40",
            "--out",
            "f2.h5",
        ],
    );
    step(
        d,
        l,
        &[
            "finetune", "--from", "m1.h5", "--freeze", "1", "--reinit", "2,3", "--seed", "6",
            "--epochs", "40", "--out", "f3.h5",
        ],
    );
    step(
        d,
        l,
        &[
            "finetune",
            "--from",
            "m_odd.safetensors",
            "--freeze",
            "0",
            "--seed",
            "8",
            "--epochs",
            "25",
            "--no-shuffle",
            "--out",
            "f4.safetensors",
        ],
    );
    step(
        d,
        l,
        &[
            "blobs",
            "--seed",
            "9",
            "--centers",
            "4",
            "--samples",
            "300",
            "--csv",
            "four.csv",
        ],
    );
    step(
        d,
        l,
        &[
            "finetune",
            "--from",
            "m1.h5",
            "--train",
            "four.csv",
            "--freeze",
            "1",
            "--new-head",
            "--seed",
            "10",
            "--epochs",
            "30",
            "--out",
            "f5.h5",
        ],
    );
    // A model whose output is not softmax: Keras's clipped probability cross-entropy.
    with_output_activation(d, "m1.h5", "m_sig.h5", "sigmoid");
    step(
        d,
        l,
        &[
            "finetune",
            "--from",
            "m_sig.h5",
            "--freeze",
            "1",
            "--seed",
            "12",
            "--epochs",
            "20",
            "--out",
            "f6.h5",
            "--history",
            "hf6.csv",
        ],
    );
    // The repeated comparison, every arm kind, on the batched path and the sequential fallback.
    step(
        d,
        l,
        &[
            "compare",
            "--from",
            "m1.h5",
            "--repeats",
            "6",
            "--seed",
            "11",
            "--epochs",
            "30",
            "--json",
            "c1.json",
        ],
    );
    step(
        d,
        l,
        &[
            "compare",
            "--from",
            "m1.h5",
            "--repeats",
            "4",
            "--seed",
            "12",
            "--epochs",
            "20",
            "--freeze",
            "2",
            "--add-hidden",
            "3",
            "--no-standalone",
            "--json",
            "c2.json",
        ],
    );
    step(
        d,
        l,
        &[
            "compare",
            "--from",
            "m1.h5",
            "--repeats",
            "4",
            "--seed",
            "13",
            "--epochs",
            "20",
            "--freeze",
            "1",
            "--reinit",
            "2,3",
            "--json",
            "c3.json",
            "--threads",
            "1",
        ],
    );
    step(
        d,
        l,
        &[
            "compare",
            "--from",
            "m_sig.h5",
            "--repeats",
            "3",
            "--seed",
            "14",
            "--epochs",
            "15",
            "--freeze",
            "0,1",
            "--json",
            "c4.json",
        ],
    );
    step(
        d,
        l,
        &[
            "compare",
            "--from",
            "m_odd.safetensors",
            "--problem",
            "1",
            "--repeats",
            "3",
            "--seed",
            "15",
            "--epochs",
            "15",
            "--freeze",
            "1",
            "--json",
            "c5.json",
        ],
    );
    // Evaluation and prediction.
    step(d, l, &["evaluate", "--model", "f1.h5", "--problem", "2"]);
    step(
        d,
        l,
        &["evaluate", "--model", "f5.h5", "--data", "four.csv"],
    );
    step(
        d,
        l,
        &[
            "predict", "--model", "f3.h5", "--input", "four.csv", "--label", "y", "--output",
            "p3.csv",
        ],
    );
    // The study itself, shortened.
    step(
        d,
        l,
        &[
            "tutorial",
            "--out-dir",
            "study",
            "--repeats",
            "3",
            "--epochs",
            "10",
            "--seed",
            "7",
        ],
    );
    writeln!(l, "weights of study/model.h5:").unwrap();
    l.push_str(&weights_dump(d, "study/model.h5"));
    log
}

#[test]
fn the_tutorial_path_gives_the_recorded_bits() {
    let path = fixture("recorded/transcript.txt");
    let got = transcript();
    if std::env::var_os("KT_RECORD").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "transcript line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "transcript length differs"
    );
}
