//! The transfer-learning application workloads on keras-transfer's side: whole `predict` and
//! `finetune` processes over the models and images python-check/bench_apps.py writes, each timed with
//! its own peak RSS. `cargo bench --bench apps -- --work DIR [--only mobilenet|resnet] [--runs K]
//! [--json] [--mem-limit-gb G]`; without the work dir it says how to make it and exits 0.
//! This file is the one definition of keras-transfer's side of those workloads.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const APPS: [(&str, &str); 2] = [("mobilenet", "MobileNetV2"), ("resnet", "ResNet50")];
/// Model layers: InputLayer, the base (nested Functional), GlobalAveragePooling2D, Dense.
/// `--freeze 2` freezes the input and the nested base: the guide's `base_model.trainable = False`.
const FREEZE_BASE: &str = "2";

/// The workloads: name and the command line after the binary.
fn workloads(work: &Path, key: &str) -> Vec<(&'static str, Vec<String>)> {
    let p = |name: &str| work.join(name).display().to_string();
    let model = p(&format!("{key}.keras"));
    let fit = |epochs: &str, freeze: &str, out: String| {
        let mut v: Vec<String> = [
            "finetune",
            "--from",
            &model,
            "--train",
            &p("x.npy"),
            "--epochs",
            epochs,
            "--batch-size",
            "32",
            "--optimizer",
            "adam",
            "--loss",
            "sparse_categorical_crossentropy",
            "--no-shuffle",
            "--freeze",
            freeze,
            "--out",
            &out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("--history".into());
        v.push(p(&format!("{key}-history-{epochs}.csv")));
        v
    };
    vec![
        (
            "predict",
            vec![
                "predict".into(),
                "--model".into(),
                model.clone(),
                "--input".into(),
                p("x.npy"),
                "--output".into(),
                p(&format!("{key}-predict-ours.csv")),
            ],
        ),
        (
            "head",
            fit("10", FREEZE_BASE, p(&format!("{key}-head-ours.keras"))),
        ),
        ("full", fit("1", "0", p(&format!("{key}-full-ours.keras")))),
    ]
}

struct Measured {
    secs: f64,
    rss: u64,
    ok: bool,
}

/// Runs the binary as a child, waits with wait4 for that child's own rusage.
fn measure(bin: &Path, args: &[String], mem_limit: u64) -> Measured {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    // Bounds the child's address space so a runaway workload fails instead of swapping the machine.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: mem_limit,
                rlim_max: mem_limit,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let start = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("apps: cannot run {}: {e}", bin.display());
            return Measured {
                secs: 0.0,
                rss: 0,
                ok: false,
            };
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    let ok = r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let tail: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with(' '))
            .take(3)
            .collect();
        eprintln!(
            "apps: `keras-transfer {}` failed (status {status}): {}",
            args.join(" "),
            tail.join(" | ")
        );
    }
    Measured {
        secs,
        rss: usage.ru_maxrss as u64 * 1024,
        ok,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let work =
        PathBuf::from(opt("--work").unwrap_or_else(|| "/tmp/keras-transfer-bench-apps".into()));
    let runs: usize = opt("--runs")
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    let json = argv.iter().any(|a| a == "--json");
    let mem_gb: u64 = opt("--mem-limit-gb")
        .and_then(|r| r.parse().ok())
        .unwrap_or(16);
    let only = opt("--only");
    if !work.join("x.npy").exists() {
        println!(
            "apps: no workloads in {} (make them with `python-check/run-venv python-check/bench_apps.py \
             --work {}`, which also runs this bench beside Keras); nothing measured",
            work.display(),
            work.display()
        );
        return;
    }
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/keras-transfer");
    if !bin.exists() {
        println!("apps: build the binary first: cargo build --release");
        std::process::exit(1);
    }
    let mut failed = false;
    for (key, name) in APPS {
        if only.as_deref().is_some_and(|o| o != key) || !work.join(format!("{key}.keras")).exists()
        {
            continue;
        }
        for (workload, args) in workloads(&work, key) {
            let mut best: Option<Measured> = None;
            for _ in 0..runs {
                let m = measure(&bin, &args, mem_gb << 30);
                let better = best
                    .as_ref()
                    .is_none_or(|b| m.ok && (!b.ok || m.secs < b.secs));
                if better {
                    best = Some(m);
                }
            }
            let m = best.expect("runs >= 1");
            failed |= !m.ok;
            if json {
                println!(
                    "RESULT {{\"model\":\"{key}\",\"workload\":\"{workload}\",\"secs\":{},\"rss\":{},\"ok\":{}}}",
                    m.secs, m.rss, m.ok
                );
            } else {
                println!(
                    "{name:12} {workload:8} {:8.2} s {:7.0} MB{}",
                    m.secs,
                    m.rss as f64 / 1048576.0,
                    if m.ok { "" } else { "  FAILED" }
                );
            }
        }
    }
    if failed && !json {
        std::process::exit(1);
    }
}
