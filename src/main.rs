//! The `keras-transfer` binary: parse the command line, run one library call, map errors to exit codes.

mod cli;

use std::io::Write;
use std::process::ExitCode;

/// The stack of the command's thread and of every thread it starts (but the small helpers: signals,
/// pipes): 32 MiB, reserved address space that is only backed by memory as it is used (it counts
/// against `ulimit -v`). Enough for keras_transfer::model::spec::MAX_LAYERS.
const STACK: usize = 32 << 20;

/// glibc's allocator gives a large freed block back to the kernel (a block over its mmap threshold,
/// at most 32 MiB, is mapped and unmapped each time; its heap is trimmed past 128 KiB free), so
/// every layer's output of an image model cost fresh pages: page faults and the kernel zeroing them
/// were a fifth to a quarter of the time of `predict`, head training and fine-tuning over
/// MobileNetV2 (a batch of 32 at 64x64x96 is a 48 MiB tensor). Every block comes from the heap,
/// and up to 256 MiB of freed heap is kept for reuse: head training 28% and fine-tuning 20%
/// faster, peak memory within +-20% (`python-check/bench_apps.py`). And one arena for every thread:
/// a worker thread's arena grows in 64 MiB heaps that glibc unmaps when they empty, so each batch
/// tensor of the frozen-base pass (which runs on the pool's threads) still cost fresh pages; with
/// one arena MobileNetV2's head training took 2.4-2.9 s instead of 4.2-4.5 s, predict 0.95 s
/// instead of 1.08 s, with less peak memory. The environment's `MALLOC_*` settings, when given, win.
fn keep_freed_memory() {
    let set = |v: &str| std::env::var_os(v).is_some();
    if set("MALLOC_MMAP_MAX_") || set("MALLOC_MMAP_THRESHOLD_") || set("MALLOC_TRIM_THRESHOLD_") {
        return;
    }
    // SAFETY: mallopt only changes glibc allocator parameters; nothing has allocated in parallel
    // yet (first statements of the process).
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        if !set("MALLOC_ARENA_MAX") {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn main() -> ExitCode {
    // SAFETY: nothing else runs yet; this is the first statement of the process.
    unsafe { keras_transfer::single_threaded_candle() };
    // Every thread std or rayon starts gets STACK bytes of stack unless told otherwise: a deep model's
    // training recurses once per layer (see MAX_LAYERS).
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: as above, no other thread runs yet.
        unsafe { std::env::set_var("RUST_MIN_STACK", STACK.to_string()) };
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if (args.len() == 3 || args.len() == 4) && args[1] == cli::sandbox::READ_ARG {
        let weights = args.get(3).map(std::path::Path::new);
        return cli::sandbox::reader_main(std::path::Path::new(&args[2]), weights);
    }
    // Not in the reader child: libhdf5 reads damaged files there, and how it fails on one (a
    // crash the parent reports, or garbage it refuses) depends on where blocks are allocated.
    keep_freed_memory();
    clean_up_on_signals();
    // A bug must still end as one error line and exit code 1, never as a panic's 101 and backtrace
    // hint (nor a panic of its own when stderr cannot be written).
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error (please report it): {}{place}",
            what.replace('\n', " ")
        );
    }));
    // The command runs on a thread with a known, large stack (the main thread's is the system's).
    let worker = std::thread::Builder::new()
        .name("main".into())
        .stack_size(STACK)
        .spawn(cli::run);
    let result = match worker.map(|h| h.join()) {
        Ok(Ok(r)) => r,
        // A panic: the hook has said it on one line.
        Ok(Err(_)) => return ExitCode::from(1),
        // No thread could be started: run where we are.
        Err(_) => match std::panic::catch_unwind(cli::run) {
            Ok(r) => r,
            Err(_) => return ExitCode::from(1),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if SIGNALLED.load(std::sync::atomic::Ordering::SeqCst) => {
            // The error is the signal's doing (its handler removed the file being written): the
            // handler ends the process with the signal's code; wait for it.
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {}", one_line(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

/// On SIGINT, SIGTERM and SIGHUP: remove the temporary files being written (the targets keep the
/// old file or the whole new one) and exit with 128 + the signal's number (130, 143, 129), as a
/// shell reports a process the signal ended. The handler runs on a thread of `signal-hook`'s
/// iterator, so it may lock and remove files (no async-signal-safety limits); it ends the process
/// with `_exit`, without running exit handlers under the main thread's feet.
/// Set by the signal handler before it removes the temporary files.
static SIGNALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn clean_up_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(256 << 10)
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                SIGNALLED.store(true, std::sync::atomic::Ordering::SeqCst);
                keras_transfer::fsutil::remove_pending();
                // SAFETY: _exit ends the process at once; it is async-signal-safe and touches no
                // Rust state.
                unsafe { libc::_exit(128 + sig) };
            }
        });
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut s = cli::describe(e.as_ref());
    for cause in e.chain().skip(1) {
        let c = cli::describe(cause);
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s.replace('\n', " ")
}
