//! `cargo bench --bench ingest`: CSV ingest at the user's scale. Writes a 200,000 x 20 numeric CSV
//! with a 3-class label column (make_blobs values, float32 text, about 40 MB), then times, each in a
//! process of its own (so that its peak memory, VmHWM, is its own), best of `--runs` (default 3):
//! the `csv` crate's plain `ByteRecord` reading with no number parsing (the baseline), a
//! straightforward reader (the csv crate plus `str::parse`, one thread), keras-transfer's float32
//! numeric reader, and the labelled `Dataset` reader `train` uses. Throughput is file bytes per
//! second of wall time; every ratio is against the baseline measured in the same run. The CPU
//! seconds (user + system, all threads) are printed too: on a machine shared with other work, wall
//! time mostly measures the others' load, CPU time what the reader costs.

use keras_transfer::data::csv::{ReadSpec, read_dataset, read_numeric_f32};
use keras_transfer::data::ingest::Dialect;
use keras_transfer::{BlobsParams, make_blobs};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const ROWS: usize = 200_000;
const FEATURES: usize = 20;
const WORKLOADS: &[(&str, &str)] = &[
    (
        "baseline",
        "csv crate ByteRecord reading, no parsing, 1 thread",
    ),
    (
        "straightforward",
        "csv crate + str::parse to f64 -> f32, 1 thread",
    ),
    ("numeric_f32", "keras-transfer read_numeric_f32, all cores"),
    (
        "dataset",
        "keras-transfer read_dataset (labels, f64 Dataset), all cores",
    ),
];

fn write_data(path: &Path) {
    let b = make_blobs(&BlobsParams {
        n_samples: ROWS,
        n_features: FEATURES,
        ..BlobsParams::tutorial(1)
    })
    .expect("blobs");
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let names: Vec<String> = (0..FEATURES).map(|j| format!("x{j}")).collect();
    writeln!(w, "{},y", names.join(",")).expect("write");
    for i in 0..ROWS {
        for v in b.data.row(i) {
            write!(w, "{},", *v as f32).expect("write");
        }
        writeln!(w, "{}", b.data.labels[i]).expect("write");
    }
    w.flush().expect("flush");
}

/// Runs one workload; returns a checksum of what it read.
fn run_one(name: &str, path: &Path) -> f64 {
    match name {
        "baseline" => {
            let mut rdr = csv::Reader::from_path(path).expect("open");
            let mut rec = csv::ByteRecord::new();
            let mut fields = 0usize;
            while rdr.read_byte_record(&mut rec).expect("read") {
                fields += rec.len();
            }
            fields as f64
        }
        "straightforward" => {
            let mut rdr = csv::Reader::from_path(path).expect("open");
            let mut x: Vec<f32> = Vec::new();
            for rec in rdr.records() {
                for f in rec.expect("read").iter() {
                    x.push(f.parse::<f64>().expect("number") as f32);
                }
            }
            x.iter().map(|&v| f64::from(v)).sum()
        }
        "numeric_f32" => {
            let (_, x, _) = read_numeric_f32(path, &Dialect::default()).expect("read");
            x.iter().map(|&v| f64::from(v)).sum()
        }
        "dataset" => {
            let (d, _) = read_dataset(path, &ReadSpec::default()).expect("read");
            d.x.iter().map(|&v| f64::from(v as f32)).sum::<f64>()
                + d.labels.iter().sum::<usize>() as f64
        }
        other => panic!("unknown workload {other}"),
    }
}

/// User + system CPU seconds of this process, all threads (/proc/self/stat, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after_name
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let check = run_one(&args[i + 1], Path::new(&args[i + 2]));
        let wall = t.elapsed().as_secs_f64();
        println!("{wall} {} {} {check}", vm_hwm_kib(), cpu_seconds() - cpu);
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users.csv");
    write_data(&path);
    let mb = std::fs::metadata(&path).expect("size").len() as f64 / 1e6;
    let exe = std::env::current_exe().expect("own path");
    // Per workload, the best of `runs` child runs: (wall s, peak KiB, CPU s, checksum).
    let child = |name: &str| -> [f64; 4] {
        let out = Command::new(&exe)
            .arg("--one")
            .arg(name)
            .arg(&path)
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v = [0f64; 4];
        let mut n = 0;
        for (slot, word) in v.iter_mut().zip(text.split_whitespace()) {
            *slot = word.parse().unwrap_or(f64::NAN);
            n += 1;
        }
        if !out.status.success() || n != 4 {
            panic!("{name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        v
    };
    let rows: Vec<(&str, &str, [f64; 4])> = WORKLOADS
        .iter()
        .map(|&(name, what)| {
            let best = (0..runs)
                .map(|_| child(name))
                .min_by(|a, b| a[0].total_cmp(&b[0]))
                .expect("at least one run");
            (name, what, best)
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "ingest bench: {ROWS} x {FEATURES} + label, {mb:.1} MB, {cores} cores, best of {runs} runs, each in its own process\n"
    );
    println!(
        "| workload | what | wall (s) | MB/s | vs baseline | CPU (s) | MB per CPU s | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let base = rows[0].2[0];
    for (name, what, [secs, kib, cpu, _]) in &rows {
        println!(
            "| {name} | {what} | {secs:.3} | {:.0} | {:.2}x | {cpu:.2} | {:.0} | {:.1} |",
            mb / secs,
            base / secs,
            mb / cpu.max(0.01),
            kib / 1024.0
        );
    }
    let sums: Vec<String> = rows[1..]
        .iter()
        .map(|(n, _, b)| format!("{n} {}", b[3]))
        .collect();
    println!("\nchecksums (sum of the values read): {}", sums.join(", "));
}
