//! The command line: clap structs, one small function per subcommand over the library.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use keras_transfer::data::csv::{read_labelled, write_dataset, LabelSpec};
use keras_transfer::data::{make_blobs, BlobsParams, Dataset};
use keras_transfer::model::{Activation, Mlp, MlpSpec};
use keras_transfer::train::{evaluate, fit, FitConfig};
use keras_transfer::Error;
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
    /// The tutorial's blobs problem with this random_state (1000 samples, 500/500 split).
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
    /// The train and optional test sets.
    fn load(&self) -> Result<(Dataset, Option<Dataset>)> {
        if let Some(path) = &self.train {
            let spec = LabelSpec { column: self.label.as_deref(), classes: None };
            let train = read_labelled(path, &spec)?;
            let test = match &self.test {
                Some(t) => {
                    // The classes of both files, in sorted order, so the indices agree.
                    let both = read_labelled(t, &spec)?;
                    let classes = keras_transfer::data::csv::sorted_classes(train.class_names.iter().chain(&both.class_names));
                    let spec = LabelSpec { column: self.label.as_deref(), classes: Some(&classes) };
                    let train = read_labelled(path, &spec)?;
                    let test = read_labelled(t, &spec)?;
                    return Ok((train, Some(test)));
                }
                None => None,
            };
            return Ok((train, test));
        }
        let seed = self.problem.unwrap_or(1);
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
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Seed of the initial weights and the shuffle order.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Keep the training rows in order every epoch (Keras fit(shuffle=False)).
    #[arg(long)]
    no_shuffle: bool,
    /// Write the per-epoch history as Keras CSVLogger does.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Draw the learning curves to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Save the trained model.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Blobs(a) => blobs(a),
        Command::Train(a) => train(a),
    }
}

/// The process exit code for an error: 2 for a bad flag, 3 for bad input data or files, 4 when
/// training diverged, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
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
    if a.csv.is_none() && a.plot.is_none() {
        println!("make_blobs(n_samples={}, centers={}, n_features={}, cluster_std={}, random_state={})", a.samples, a.centers, a.features, a.std, a.seed);
        for (c, count) in b.data.class_counts().iter().enumerate() {
            let center = &b.centers[c * a.features..(c + 1) * a.features];
            println!("  class {c}: {count} samples around {center:?}");
        }
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let (train, test) = a.data.load()?;
    let spec = MlpSpec::classifier(train.n_features, &a.hidden, &a.activation, train.n_classes)?;
    let mlp = Mlp::new(spec, a.seed)?;
    let cfg = FitConfig { epochs: a.epochs, batch_size: a.batch_size, lr: a.lr, shuffle: !a.no_shuffle, seed: a.seed, frozen: 0 };
    let history = fit(&mlp, &train, test.as_ref(), &cfg)?;
    let tr = evaluate(&mlp, &train, a.batch_size)?;
    match &test {
        Some(t) => println!("Train: {:.3}, Test: {:.3}", tr.accuracy, evaluate(&mlp, t, a.batch_size)?.accuracy),
        None => println!("Train: {:.3}", tr.accuracy),
    }
    if let Some(p) = &a.history {
        history.write_csv(p).with_context(|| format!("writing --history {}", p.display()))?;
    }
    let _ = (&a.plot, &a.out);
    Ok(())
}
