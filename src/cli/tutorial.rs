//! `keras-transfer tutorial`: the whole study, end to end.

use crate::cli::args::TutorialArgs;
use crate::cli::output::emit;
use anyhow::Result;
use keras_transfer::study::{StudyOptions, run_study};

pub fn run(a: TutorialArgs) -> Result<()> {
    let opts = StudyOptions {
        out_dir: a.out_dir,
        repeats: a.repeats,
        epochs: a.epochs,
        seed: a.seed,
        threads: a.threads,
    };
    run_study(&opts, &mut |line| {
        let _ = emit(line);
    })?;
    Ok(())
}
