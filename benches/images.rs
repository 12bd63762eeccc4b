//! `cargo bench --bench images`: an image folder read batch by batch. Writes folders of 64x64 RGB
//! PNGs (3 classes; 150 and 1,500 images), then reads each, in a process of its own (so that its
//! peak memory, VmHWM, is its own), through `open_folder` at 96x96 in batches of 32, and prints the
//! wall time, images per second and peak memory. The peak must not grow with the number of images.

use keras_transfer::data::images::{FolderOptions, open_folder};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const SIZES: [usize; 2] = [150, 1500];

fn write_folder(dir: &Path, n: usize) {
    let mut state = 12345u32;
    for i in 0..n {
        let class = dir.join(format!("c{}", i % 3));
        std::fs::create_dir_all(&class).unwrap();
        let file = std::fs::File::create(class.join(format!("{i:05}.png"))).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 64, 64);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = (0..64 * 64 * 3)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 24) as u8
            })
            .collect();
        w.write_image_data(&data).unwrap();
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn child(dir: &Path) {
    let start = Instant::now();
    let folder = open_folder(
        dir,
        FolderOptions {
            image_size: (96, 96),
            channels: 3,
            ..FolderOptions::default()
        },
    )
    .unwrap();
    let mut n = 0;
    let mut checksum = 0.0f64;
    for batch in folder.batches(32) {
        let batch = batch.unwrap();
        n += batch.labels.len();
        checksum += batch.x.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n:>5} images: {secs:6.2} s, {:7.0} images/s, peak memory {:6.1} MiB (checksum {checksum:.0})",
        n as f64 / secs,
        vm_hwm_kib() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[i + 1]));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for n in SIZES {
        let dir = tmp.path().join(format!("n{n}"));
        write_folder(&dir, n);
        let out = Command::new(&args[0])
            .args(["--child", dir.to_str().unwrap()])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
