//! The `keras-transfer` binary: parse the command line, run one library call, map errors to exit codes.

mod cli;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // SAFETY: nothing else runs yet; this is the first statement of the process.
    unsafe { keras_transfer::single_threaded_candle() };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if (args.len() == 3 || args.len() == 4) && args[1] == cli::sandbox::READ_ARG {
        let weights = args.get(3).map(std::path::Path::new);
        return cli::sandbox::reader_main(std::path::Path::new(&args[2]), weights);
    }
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {}", one_line(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s.replace('\n', " ")
}
