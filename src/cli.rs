//! The command line: clap structs, one small function per subcommand over the library.

use crate::sandbox::load_model_guarded as load_model;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use keras_transfer::Error;
use keras_transfer::checkpoint::{convert_model, is_safetensors, save_mlp};
use keras_transfer::data::csv::{
    LabelSpec, read_features, read_labelled, write_dataset, write_table,
};
use keras_transfer::data::{BlobsParams, Dataset, make_blobs};
use keras_transfer::experiment::compare::{Arm, CompareConfig, compare};
use keras_transfer::experiment::finetune::{Transfer, adapt};
use keras_transfer::experiment::tutorial::{StudyOptions, run_study};
use keras_transfer::keras::Format;
use keras_transfer::model::{Activation, Mlp, MlpSpec};
use keras_transfer::report::compare_json;
use keras_transfer::report::compare_lines;
use keras_transfer::train::{FitConfig, evaluate, fit};
use std::path::PathBuf;

/// Transfer learning with Keras's semantics and checkpoints, in Rust.
#[derive(Parser)]
#[command(name = "keras-transfer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a blobs problem exactly as sklearn's make_blobs does.
    Blobs(BlobsArgs),
    /// Train an MLP (the tutorial's by default) and report train/test accuracy.
    Train(TrainArgs),
    /// Show a model file's layers, shapes and parameter counts, like Keras's model.summary().
    Inspect(InspectArgs),
    /// Report a saved model's loss and accuracy on a dataset, as Keras's evaluate.
    Evaluate(EvaluateArgs),
    /// Write a saved model's class probabilities for the rows of a CSV file.
    Predict(PredictArgs),
    /// Convert a model between Keras .h5 and .safetensors.
    Convert(ConvertArgs),
    /// Fine-tune a saved model on new data: freeze, re-initialise or add layers (transfer learning).
    Finetune(FinetuneArgs),
    /// The tutorial's repeated comparison: standalone vs transfer with 0, 1, 2 frozen layers.
    Compare(CompareArgs),
    /// The whole study end to end: figures, model.h5, comparisons, extensions and a report.
    Tutorial(TutorialArgs),
}

#[derive(Args)]
struct TutorialArgs {
    /// Where the figures, models, JSON files and report.md go.
    #[arg(long, default_value = "study")]
    out_dir: PathBuf,
    /// Fits per configuration in the comparisons.
    #[arg(long, default_value_t = 30)]
    repeats: usize,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Seed of the whole study (weights, shuffles, repeats). The transfer rows depend on the one
    /// Problem-1 model it makes: see the README.
    #[arg(long, default_value_t = 7)]
    seed: u32,
    /// Worker threads (default: one per core); results do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// How a loaded model is adapted before fine-tuning.
#[derive(Args, Clone)]
struct AdaptArgs {
    /// Re-initialise these Dense layers randomly (positions from 1, as `inspect` lists them).
    #[arg(long, value_delimiter = ',')]
    reinit: Vec<usize>,
    /// Insert a new ReLU hidden layer of this width right after the frozen layers.
    #[arg(long)]
    add_hidden: Option<usize>,
    /// Replace the output layer by a fresh one for the data's class count.
    #[arg(long)]
    new_head: bool,
}

/// Training hyper-parameters shared by train, finetune and compare.
#[derive(Args, Clone)]
struct FitArgs {
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    lr: f32,
    /// Keep the training rows in order every epoch (Keras fit(shuffle=False)).
    #[arg(long)]
    no_shuffle: bool,
    /// Seed of random weights and shuffle orders.
    #[arg(long, default_value_t = 0)]
    seed: u32,
}

impl FitArgs {
    fn config(&self, frozen: usize) -> FitConfig {
        FitConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            shuffle: !self.no_shuffle,
            seed: self.seed,
            frozen,
        }
    }
}

/// Where a single fit's results go.
#[derive(Args)]
struct OutputArgs {
    /// Write the per-epoch history as Keras CSVLogger does.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Draw the learning curves to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Save the trained model (.h5: Keras HDF5; .safetensors).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keras dialect of an .h5 output.
    #[arg(long, value_enum, default_value = "keras3")]
    format: Format,
}

#[derive(Args)]
struct FinetuneArgs {
    /// The model to start from (Keras .h5, from Keras or this tool, or .safetensors).
    #[arg(long)]
    from: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Freeze the first N Dense layers.
    #[arg(long, default_value_t = 0)]
    freeze: usize,
    #[command(flatten)]
    adapt: AdaptArgs,
    #[command(flatten)]
    fit: FitArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct CompareArgs {
    /// The model the transfer configurations start from.
    #[arg(long)]
    from: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Fits per configuration.
    #[arg(long, default_value_t = 30)]
    repeats: usize,
    /// Transfer configurations: the numbers of frozen layers to try.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    freeze: Vec<usize>,
    /// Leave out the standalone model.
    #[arg(long)]
    no_standalone: bool,
    #[command(flatten)]
    adapt: AdaptArgs,
    #[command(flatten)]
    fit: FitArgs,
    /// Worker threads (default: one per core); results do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Draw the box-and-whisker plot to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write every score and statistic as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct InspectArgs {
    /// A Keras .h5 or a .safetensors model file.
    file: PathBuf,
}

#[derive(Args)]
struct EvaluateArgs {
    /// The model file (.h5 or .safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The tutorial blobs problem with this random_state; its test half (rows 500..) is evaluated.
    #[arg(long, conflicts_with = "data")]
    problem: Option<u32>,
    /// A labelled CSV to evaluate on (header row; label column by --label, default the last).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Name of the label column.
    #[arg(long)]
    label: Option<String>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

#[derive(Args)]
struct PredictArgs {
    /// The model file (.h5 or .safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Input CSV: a header and one column per model input.
    #[arg(long)]
    input: PathBuf,
    /// Output CSV (`p0,...`); standard output when absent.
    #[arg(long)]
    output: Option<PathBuf>,
    /// A column of the input to ignore (e.g. the label).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Args)]
struct ConvertArgs {
    /// The model to read (.h5 or .safetensors).
    input: PathBuf,
    /// The file to write (.h5 or .safetensors).
    output: PathBuf,
    /// The Keras dialect of an .h5 output (default: the input's).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Args)]
struct BlobsArgs {
    /// make_blobs random_state (0..=4294967295).
    #[arg(long)]
    seed: u32,
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    #[arg(long, default_value_t = 3)]
    centers: usize,
    #[arg(long, default_value_t = 2)]
    features: usize,
    /// cluster_std.
    #[arg(long, default_value_t = 2.0)]
    std: f64,
    /// Keep the samples grouped by center (make_blobs shuffle=False).
    #[arg(long)]
    no_shuffle: bool,
    /// Write the samples as CSV (`x0,...,y`).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Draw the scatter plot to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Where the training data comes from: a tutorial blobs problem or the user's CSV files.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// The tutorial's blobs problem with this random_state (1000 samples, 500/500 split); the
    /// default when no data is given is 1 for train, 2 for finetune and compare.
    #[arg(long, conflicts_with_all = ["train", "test"])]
    problem: Option<u32>,
    /// Training data CSV (header row; label column by --label, default the last).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Test (validation) data CSV, same columns as --train.
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// Name of the label column in the CSV files.
    #[arg(long)]
    label: Option<String>,
    /// Rows of the blobs problem used for training; the rest are the test set.
    #[arg(long, default_value_t = 500)]
    split: usize,
}

impl DataArgs {
    /// The train and optional test sets; without --problem or --train, the tutorial problem
    /// `default_problem`.
    fn load(&self, default_problem: u32) -> Result<(Dataset, Option<Dataset>)> {
        if let Some(path) = &self.train {
            let spec = LabelSpec {
                column: self.label.as_deref(),
                classes: None,
            };
            let train = read_labelled(path, &spec)?;
            let test = match &self.test {
                Some(t) => {
                    // The classes of both files, in sorted order, so the indices agree.
                    let both = read_labelled(t, &spec)?;
                    let classes = keras_transfer::data::csv::sorted_classes(
                        train.class_names.iter().chain(&both.class_names),
                    );
                    let spec = LabelSpec {
                        column: self.label.as_deref(),
                        classes: Some(&classes),
                    };
                    let train = read_labelled(path, &spec)?;
                    let test = read_labelled(t, &spec)?;
                    return Ok((train, Some(test)));
                }
                None => None,
            };
            return Ok((train, test));
        }
        let seed = self.problem.unwrap_or(default_problem);
        let blobs = make_blobs(&BlobsParams::tutorial(seed))?;
        let (train, test) = blobs.data.split_at(self.split)?;
        Ok((train, Some(test)))
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,5")]
    hidden: Vec<usize>,
    /// Hidden activation: one for all hidden layers, or one per hidden layer (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "relu")]
    activation: Vec<Activation>,
    #[command(flatten)]
    fit: FitArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Prints a line of output. A closed standard output (`keras-transfer ... | head`) is not an error:
/// the output is dropped and the work (writing files, say) goes on.
pub fn emit(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// `println!` through `emit`.
macro_rules! say {
    ($($t:tt)*) => {
        emit(&format!($($t)*)).context("writing to standard output")?
    };
}

/// A command-line usage error, already reduced to one line.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

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
    match cli.command {
        Command::Blobs(a) => blobs(a),
        Command::Train(a) => train(a),
        Command::Inspect(a) => inspect(a),
        Command::Evaluate(a) => evaluate_cmd(a),
        Command::Predict(a) => predict(a),
        Command::Convert(a) => Ok(convert_model(&load_model(&a.input)?, &a.output, a.format)?),
        Command::Finetune(a) => finetune(a),
        Command::Compare(a) => compare_cmd(a),
        Command::Tutorial(a) => {
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
    }
}

/// The process exit code for an error: 2 for a bad flag, 3 for bad input data or files, 4 when
/// training diverged, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Usage>().is_some() {
        return 2;
    }
    if let Some(r) = e.downcast_ref::<crate::sandbox::ReaderError>() {
        return r.code;
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Invalid { .. }) => 2,
        Some(
            Error::Io { .. }
            | Error::Csv { .. }
            | Error::NotKerasModel { .. }
            | Error::Unsupported { .. }
            | Error::ShapeMismatch { .. }
            | Error::Hdf5 { .. }
            | Error::Safetensors { .. }
            | Error::Mismatch(_),
        ) => 3,
        Some(Error::Diverged { .. }) => 4,
        _ => 1,
    }
}

fn blobs(a: BlobsArgs) -> Result<()> {
    let params = BlobsParams {
        n_samples: a.samples,
        centers: a.centers,
        n_features: a.features,
        cluster_std: a.std,
        center_box: (-10.0, 10.0),
        shuffle: !a.no_shuffle,
        random_state: a.seed,
    };
    let b = make_blobs(&params)?;
    if let Some(path) = &a.csv {
        write_dataset(path, &b.data)?;
    }
    if let Some(path) = &a.plot {
        keras_transfer::experiment::tutorial::plot_problems(
            path,
            &[(format!("Blobs problem (random_state={})", a.seed), &b.data)],
        )?;
    }
    if a.csv.is_none() && a.plot.is_none() {
        say!(
            "make_blobs(n_samples={}, centers={}, n_features={}, cluster_std={}, random_state={})",
            a.samples,
            a.centers,
            a.features,
            a.std,
            a.seed
        );
        for (c, count) in b.data.class_counts().iter().enumerate() {
            let center = &b.centers[c * a.features..(c + 1) * a.features];
            say!("  class {c}: {count} samples around {center:?}");
        }
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let (train, test) = a.data.load(1)?;
    let spec = MlpSpec::classifier(train.n_features, &a.hidden, &a.activation, train.n_classes)?;
    let mlp = Mlp::new(spec, a.fit.seed)?;
    let title = match a.data.problem.or(a.data.train.is_none().then_some(1)) {
        Some(p) => format!("MLP on blobs problem {p}"),
        None => "MLP".to_string(),
    };
    fit_and_report(
        &mlp,
        &train,
        test.as_ref(),
        &a.fit.config(0),
        &a.output,
        &title,
    )
}

/// Fits, prints the tutorial's `Train: ..., Test: ...` line, and writes the history, the curves and
/// the model where asked. Nothing is written when training fails.
fn fit_and_report(
    mlp: &Mlp,
    train: &Dataset,
    test: Option<&Dataset>,
    cfg: &FitConfig,
    o: &OutputArgs,
    title: &str,
) -> Result<()> {
    let history = fit(mlp, train, test, cfg)?;
    let tr = evaluate(mlp, train, cfg.batch_size)?;
    match test {
        Some(t) => say!(
            "Train: {:.3}, Test: {:.3}",
            tr.accuracy,
            evaluate(mlp, t, cfg.batch_size)?.accuracy
        ),
        None => say!("Train: {:.3}", tr.accuracy),
    }
    if let Some(p) = &o.history {
        history
            .write_csv(p)
            .with_context(|| format!("writing --history {}", p.display()))?;
    }
    if let Some(p) = &o.plot {
        keras_transfer::experiment::tutorial::plot_history(p, title, &history)?;
    }
    if let Some(out) = &o.out {
        save_mlp(out, mlp, o.format, cfg.lr)?;
    }
    Ok(())
}

fn transfer_of(freeze: usize, a: &AdaptArgs) -> Transfer {
    Transfer {
        freeze,
        reinit: a.reinit.clone(),
        add_hidden: a.add_hidden,
        new_head: a.new_head,
    }
}

fn finetune(a: FinetuneArgs) -> Result<()> {
    let base = load_model(&a.from)?;
    let (train, test) = a.data.load(2)?;
    let t = transfer_of(a.freeze, &a.adapt);
    let mlp = adapt(&base, &t, train.n_features, train.n_classes, a.fit.seed)
        .with_context(|| format!("adapting {}", a.from.display()))?;
    let title = format!("Transfer from {} (fixed={})", a.from.display(), a.freeze);
    fit_and_report(
        &mlp,
        &train,
        test.as_ref(),
        &a.fit.config(t.freeze),
        &a.output,
        &title,
    )
}

fn compare_cmd(a: CompareArgs) -> Result<()> {
    let base = load_model(&a.from)?;
    let (train, test) = a.data.load(2)?;
    let test = test
        .ok_or_else(|| Error::invalid("--test", "compare needs test data to score the models"))?;
    let mut arms = Vec::new();
    if !a.no_standalone {
        arms.push(Arm::Standalone);
    }
    arms.extend(
        a.freeze
            .iter()
            .map(|&f| Arm::Transfer(transfer_of(f, &a.adapt))),
    );
    if arms.is_empty() {
        return Err(Error::invalid(
            "--freeze",
            "nothing to compare: give --freeze values or drop --no-standalone",
        )
        .into());
    }
    let cfg = CompareConfig {
        repeats: a.repeats,
        fit: a.fit.config(0),
        seed: a.fit.seed,
        threads: a.threads,
    };
    let bar = progress_bar((arms.len() * a.repeats) as u64);
    let results = compare(&base, &arms, &train, &test, &cfg, &|| bar.inc(1))?;
    bar.finish_and_clear();
    for line in compare_lines(&results) {
        say!("{line}");
    }
    if let Some(p) = &a.json {
        let meta = serde_json::json!({"model": a.from.display().to_string(), "repeats": a.repeats, "epochs": a.fit.epochs,
            "batch_size": a.fit.batch_size, "learning_rate": a.fit.lr, "seed": a.fit.seed});
        let text = serde_json::to_string_pretty(&compare_json(&results, meta))?;
        keras_transfer::fsutil::write_bytes_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = &a.plot {
        let groups: Vec<(String, Vec<f64>)> = results
            .iter()
            .map(|r| (r.arm.label(), r.scores.clone()))
            .collect();
        keras_transfer::plot::box_plot(p, "Test accuracy over repeated fits", &groups)?;
    }
    Ok(())
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} fits  {elapsed} (eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

fn inspect(a: InspectArgs) -> Result<()> {
    let m = load_model(&a.file)?;
    let layout = match m.format {
        Format::Keras3 => "keras3",
        Format::Universal => "keras2 (universal)",
    };
    let kind = if is_safetensors(&a.file) {
        "safetensors"
    } else {
        "Keras HDF5"
    };
    let version = if m.keras_version.is_empty() {
        "-".to_string()
    } else {
        m.keras_version.clone()
    };
    say!(
        "{}: {kind}, keras_version {version}, {layout} layout",
        a.file.display()
    );
    print!("{}", summary(&m.spec));
    if let Some(lr) = m.learning_rate {
        say!("Optimizer: SGD, learning rate {lr}");
    }
    Ok(())
}

/// A `model.summary()`-like table.
fn summary(spec: &MlpSpec) -> String {
    let mut rows = vec![[
        "Layer (type)".to_string(),
        "Activation".into(),
        "Output Shape".into(),
        "Param #".into(),
        "Trainable".into(),
    ]];
    rows.push([
        format!("input ({} features)", spec.input_dim),
        "".into(),
        format!("(None, {})", spec.input_dim),
        "0".into(),
        "".into(),
    ]);
    let (mut total, mut trainable) = (0, 0);
    for (i, l) in spec.layers.iter().enumerate() {
        let p = spec.param_count(i);
        total += p;
        if l.trainable {
            trainable += p;
        }
        rows.push([
            format!("{} (Dense)", l.name),
            l.activation.keras_name().into(),
            format!("(None, {})", l.units),
            p.to_string(),
            if l.trainable { "yes" } else { "no" }.into(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 8));
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "Total params: {total}\nTrainable params: {trainable}\nNon-trainable params: {}\n",
        total - trainable
    ));
    out
}

/// The classes a model's outputs stand for when evaluating integer-labelled data: "0".."K-1".
fn model_classes(spec: &MlpSpec) -> Vec<String> {
    (0..spec.output_dim()).map(|c| c.to_string()).collect()
}

fn evaluate_cmd(a: EvaluateArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let mlp = m.to_mlp()?;
    let data = match (&a.data, a.problem) {
        (Some(path), _) => {
            let classes = model_classes(&m.spec);
            let labelled = read_labelled(
                path,
                &LabelSpec {
                    column: a.label.as_deref(),
                    classes: None,
                },
            )?;
            if labelled
                .class_names
                .iter()
                .all(|c| c.parse::<i64>().is_ok())
            {
                read_labelled(
                    path,
                    &LabelSpec {
                        column: a.label.as_deref(),
                        classes: Some(&classes),
                    },
                )?
            } else {
                labelled
            }
        }
        (None, seed) => {
            make_blobs(&BlobsParams::tutorial(seed.unwrap_or(1)))?
                .data
                .split_at(500)?
                .1
        }
    };
    let s = evaluate(&mlp, &data, a.batch_size)?;
    say!("loss: {:.4}, accuracy: {:.3}", s.loss, s.accuracy);
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let mlp = m.to_mlp()?;
    let (x, _rows) = read_features(&a.input, m.spec.input_dim, a.label.as_deref())?;
    let p = mlp.predict(&x)?;
    let header: Vec<String> = (0..m.spec.output_dim()).map(|k| format!("p{k}")).collect();
    match &a.output {
        Some(out) => write_table(out, &header, &p)?,
        None => {
            say!("{}", header.join(","));
            for row in p.chunks(header.len()) {
                say!(
                    "{}",
                    row.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
    }
    Ok(())
}
