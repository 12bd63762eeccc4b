//! The command line: parse the arguments (`args`), run one command (one file each) over the library,
//! print through `output`, and map errors to exit codes. Keras `.h5` files are read in a child process
//! (`sandbox`).

mod args;
mod blobs;
mod compare;
mod convert;
mod evaluate;
mod features;
mod finetune;
mod inspect;
mod output;
mod predict;
pub mod sandbox;
mod train;
mod tutorial;

use anyhow::Result;
use args::{Cli, Command};
use clap::Parser;

/// A command-line usage error, already reduced to one line.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Parses the command line and runs the command.
pub fn run() -> Result<()> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ")
                .to_string();
            return Err(Usage(format!("{first} (see keras-transfer --help)")).into());
        }
    };
    let result = match cli.command {
        Command::Blobs(a) => blobs::run(a),
        Command::Train(a) => train::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Features(a) => features::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Finetune(a) => finetune::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Tutorial(a) => tutorial::run(a),
    };
    if result.is_ok() {
        args::flush_notes();
    }
    result
}

/// The command-line flag of each library parameter that a library error may name: the library
/// speaks its parameters (`batch_size`), the command line its flags (`--batch-size`).
const FLAGS: &[(&str, &str)] = &[
    ("activation", "--activation"),
    ("add_hidden", "--add-hidden"),
    ("batch_size", "--batch-size"),
    ("centers", "--centers"),
    ("class_weight", "--class-weight"),
    ("classes", "--classes"),
    ("cluster_std", "--std"),
    ("epochs", "--epochs"),
    ("freeze", "--freeze"),
    ("ignore", "--ignore"),
    ("label", "--label"),
    ("layer", "--layer"),
    ("learning_rate", "--lr"),
    ("missing", "--missing"),
    ("loss", "--loss"),
    ("momentum", "--momentum"),
    ("monitor", "--monitor"),
    ("n_features", "--features"),
    ("n_samples", "--samples"),
    ("new_head", "--new-head"),
    ("optimizer", "--optimizer"),
    ("reinit", "--reinit"),
    ("repeats", "--repeats"),
    ("seed", "--seed"),
    ("split", "--split"),
    ("threads", "--threads"),
    ("unfreeze", "--unfreeze"),
    ("validation_split", "--validation-split"),
    ("weights", "--weights"),
];

/// One error of a chain as the command line says it: an invalid library parameter is named by its
/// flag.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(keras_transfer::Error::Invalid { what, reason }) = e.downcast_ref()
        && let Some((_, flag)) = FLAGS.iter().find(|(p, _)| p == what)
    {
        return format!("invalid {flag}: {reason}");
    }
    e.to_string()
}

/// The process exit code for an error: the library error's own code (`Error::exit_code`), 2 for a
/// usage error, the model reader's code for its errors, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Usage>().is_some() {
        return 2;
    }
    if let Some(r) = e.downcast_ref::<sandbox::ReaderError>() {
        return r.code;
    }
    e.downcast_ref::<keras_transfer::Error>()
        .map(keras_transfer::Error::exit_code)
        .unwrap_or(1)
}
