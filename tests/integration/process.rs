//! The process side: file modes under the umask, a full disk or file size limit (exit 5), a standard
//! error that cannot be written, and SIGINT/SIGTERM while outputs are written (no temporary file
//! left, exit 130/143).

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary with `args` in `dir`, its child set up by `setup` (between fork and exec).
fn run_with(dir: &Path, args: &[&str], setup: fn() -> std::io::Result<()>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keras-transfer"));
    cmd.args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null());
    // SAFETY: `setup` only makes async-signal-safe system calls (umask, setrlimit, signal).
    unsafe { cmd.pre_exec(setup) };
    cmd.output().expect("the binary runs")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Names in `dir` that look like a temporary file of ours (`.NAME.XXXXXX.ext`).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

const OUTPUTS: [&str; 4] = ["m.h5", "m.keras", "m.safetensors", "h.csv"];

fn train_writing_all() -> Vec<&'static str> {
    vec![
        "train",
        "--epochs",
        "2",
        "--out",
        "m.h5",
        "--history",
        "h.csv",
    ]
}

#[test]
fn new_outputs_follow_the_umask_and_replaced_ones_keep_their_mode() {
    let dir = tempdir();
    let d = dir.path();
    let private = || {
        // SAFETY: umask is async-signal-safe.
        unsafe { libc::umask(0o077) };
        Ok(())
    };
    let usual = || {
        unsafe { libc::umask(0o022) };
        Ok(())
    };
    for out in OUTPUTS.iter().take(3) {
        let o = run_with(d, &["train", "--epochs", "1", "--out", out], private);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(mode(&d.join(out)), 0o600, "{out} under umask 077");
    }
    let o = run_with(d, &["train", "--epochs", "1", "--history", "h.csv"], usual);
    assert!(o.status.success());
    assert_eq!(mode(&d.join("h.csv")), 0o644, "h.csv under umask 022");
    // An existing file keeps its mode when it is replaced, whatever the umask.
    std::fs::set_permissions(d.join("m.h5"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = run_with(d, &["train", "--epochs", "1", "--out", "m.h5"], usual);
    assert!(o.status.success());
    assert_eq!(mode(&d.join("m.h5")), 0o640, "replaced m.h5");
}

/// A file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) gives EFBIG on every write past it: the same
/// path as a full disk. Each output kind is refused with exit 5, naming the file, with nothing left.
#[test]
fn a_full_disk_is_exit_5_naming_the_file_and_leaves_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let limited = || {
        let lim = libc::rlimit {
            rlim_cur: 2048,
            rlim_max: 2048,
        };
        // SAFETY: signal and setrlimit are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    for (args, file) in [
        (vec!["train", "--epochs", "1", "--out", "m.h5"], "m.h5"),
        (
            vec!["train", "--epochs", "1", "--out", "m.keras"],
            "m.keras",
        ),
        (
            vec!["train", "--epochs", "1", "--out", "m.safetensors"],
            "m.safetensors",
        ),
        (vec!["train", "--epochs", "1", "--plot", "c.png"], "c.png"),
        (vec!["blobs", "--seed", "1", "--csv", "b.csv"], "b.csv"),
    ] {
        let o = run_with(d, &args, limited);
        assert_fails(&o, 5, &[file, "cannot write"]);
        assert!(!d.join(file).exists(), "{file} written");
        assert_eq!(leftovers(d), Vec::<String>::new(), "{args:?}");
    }
}

/// `>/dev/full`: the standard output cannot take the lines: exit 5, naming it.
#[test]
fn a_full_standard_output_is_exit_5() {
    let dir = tempdir();
    let model = fixture("keras_h5/k3_tutorial/model.h5");
    std::fs::write(dir.path().join("x.csv"), "x0,x1\n1,2\n3,4\n").unwrap();
    for args in [
        vec![
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            "x.csv",
        ],
        vec!["inspect", model.to_str().unwrap()],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_fails(&out, 5, &["standard output", "cannot write"]);
    }
}

/// `2>/dev/full`: the notes and the error line are lost, but the command neither panics (101) nor
/// changes its outcome.
#[test]
fn a_standard_error_that_cannot_be_written_is_no_panic() {
    let dir = tempdir();
    let d = dir.path();
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full");
    let model = fixture("keras_h5/k3_tutorial/model.h5");
    for (args, code) in [
        (train_writing_all(), 0),
        (vec!["inspect", "missing.h5"], 3),
        (
            vec![
                "finetune",
                "--from",
                model.to_str().unwrap(),
                "--epochs",
                "1",
                "--lr",
                "0.02",
            ],
            0,
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
            .args(&args)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(full().expect("/dev/full"))
            .status()
            .unwrap();
        assert_eq!(out.code(), Some(code), "{args:?}");
    }
}

/// SIGINT or SIGTERM at any moment of a run that writes a large model: the temporary files are
/// removed and the process exits 130 or 143 (or 0 when it finished first); the target holds a whole
/// model or nothing.
#[test]
fn sigint_and_sigterm_leave_no_temporary_file() {
    let dir = tempdir();
    let d = dir.path();
    let args = [
        "train", "--epochs", "1", "--hidden", "600,600", "--out", "m.h5", "--plot", "c.png",
    ];
    let t = std::time::Instant::now();
    let o = run(d, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runtime = t.elapsed().as_micros() as u64;
    let mut rng = keras_transfer::rng::NumpyRandomState::new(5);
    let mut signalled = 0;
    for round in 0..40 {
        let (sig, code) = if round % 2 == 0 {
            (libc::SIGINT, 130)
        } else {
            (libc::SIGTERM, 143)
        };
        let child = Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
            .args(args)
            .current_dir(d)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // From a third of the run on: the signal handler is in place, the writing window is hit.
        std::thread::sleep(std::time::Duration::from_micros(
            runtime / 3 + rng.bounded(runtime),
        ));
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait_with_output().unwrap().status;
        let got = status.code();
        assert!(
            got == Some(code) || got == Some(0),
            "round {round}: exit {status:?} after signal {sig}"
        );
        signalled += usize::from(got == Some(code));
        assert_eq!(leftovers(d), Vec::<String>::new(), "round {round}");
        if d.join("m.h5").exists() {
            keras_transfer::keras::load_h5(&d.join("m.h5")).expect("a whole model");
        }
    }
    assert!(signalled > 0, "no run was interrupted");
}

/// Flags that would exhaust the machine are refused with their limit named: `--threads` (at most
/// 256), `blobs --centers` (a 16 GB allocation), `--hidden` beyond the layer limit.
#[test]
fn flags_that_would_exhaust_the_machine_are_refused_with_their_limit() {
    let dir = tempdir();
    let d = dir.path();
    let too_deep = vec!["1"; 10_001].join(",");
    for (args, flag, limit) in [
        (
            vec!["compare", "--threads", "100000", "--repeats", "1"],
            "--threads",
            "256",
        ),
        (vec!["tutorial", "--threads", "100000"], "--threads", "256"),
        (
            vec!["blobs", "--seed", "1", "--centers", "1000000000"],
            "--centers",
            "1048576",
        ),
        (
            vec![
                "blobs",
                "--seed",
                "1",
                "--centers",
                "100000",
                "--features",
                "1000",
            ],
            "--centers",
            "16777216",
        ),
        (vec!["train", "--hidden", &too_deep], "--hidden", "10000"),
    ] {
        let out = run_limited(d, &args, 30);
        assert_fails(&out, 2, &[flag, limit]);
    }
}

/// 10,000 one-unit hidden layers (`--hidden`'s limit) train and are saved (the recursion over the
/// layers' graph once overflowed the stack and aborted with 134). Not as .h5: its `layer_names`
/// attribute would pass HDF5's 64 KiB object header limit (Keras splits such attributes; this
/// tool does not yet).
#[test]
fn a_model_of_ten_thousand_layers_trains() {
    let dir = tempdir();
    let hidden = vec!["1"; 10_000].join(",");
    let out = run_limited(
        dir.path(),
        &[
            "train",
            "--hidden",
            &hidden,
            "--epochs",
            "1",
            "--split",
            "64",
            "--out",
            "deep.keras",
        ],
        300,
    );
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let m = keras_transfer::load_model(&dir.path().join("deep.keras")).unwrap();
    assert_eq!(m.spec.layers.len(), 10_001);
}
