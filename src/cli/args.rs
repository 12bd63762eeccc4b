//! The command line's arguments: clap structs for every command and their translation into library
//! settings.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use keras_transfer::data::csv::class_list_text;
use keras_transfer::data::ingest::{Dialect, Missing};
use keras_transfer::error::shown;
use keras_transfer::experiment::data::{DataRequest, ModelData};
use keras_transfer::model::Activation;
use keras_transfer::train::OptimizerKind;
use keras_transfer::{
    Compile, DataSchema, Dataset, FitConfig, Format, KerasModel, Loss, Metric, OptimizerSpec,
};
use std::path::{Path, PathBuf};

/// Transfer learning with Keras's semantics and checkpoints, in Rust.
#[derive(Parser)]
#[command(name = "keras-transfer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Write any layer's output for the rows or images of a dataset (.npy or .csv): a base's features.
    Features(FeaturesArgs),
    /// Convert a model between Keras .h5, .keras, .weights.h5 and .safetensors.
    Convert(ConvertArgs),
    /// Fine-tune a saved model on new data: freeze, re-initialise or add layers (transfer learning).
    Finetune(FinetuneArgs),
    /// The tutorial's repeated comparison: standalone vs transfer with 0, 1, 2 frozen layers.
    Compare(CompareArgs),
    /// The whole study end to end: figures, model.h5, comparisons, extensions and a report.
    Tutorial(TutorialArgs),
}

#[derive(Args)]
pub struct TutorialArgs {
    /// Where the figures, models, JSON files and report.md go.
    #[arg(long, default_value = "study")]
    pub out_dir: PathBuf,
    /// Fits per configuration in the comparisons.
    #[arg(long, default_value_t = 30)]
    pub repeats: usize,
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Seed of the whole study (weights, shuffles, repeats). The transfer rows depend on the one
    /// Problem-1 model it makes: see the README.
    #[arg(long, default_value_t = 7)]
    pub seed: u32,
    /// Worker threads, at most 256 (default: one per core); results do not depend on it.
    #[arg(long, default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
}

/// How a loaded model is adapted before fine-tuning.
#[derive(Args, Clone)]
pub struct AdaptArgs {
    /// Re-initialise these layers randomly: positions from 1 in Keras's `model.layers` (as `inspect`
    /// lists them; every layer counts). Any layer with weights (Dense, BatchNormalization, ...); a
    /// layer without weights (Dropout, Activation, ...) is refused.
    #[arg(long, value_delimiter = ',')]
    pub reinit: Vec<usize>,
    /// Train layers the file saved frozen (`trainable=False`) again: `all`, or layer names
    /// (comma-separated, as `inspect` lists them). By default the file's flags stand, as after
    /// Keras's load_model.
    #[arg(long, value_delimiter = ',')]
    pub unfreeze: Vec<String>,
    /// Insert a new ReLU hidden layer of this width right after the frozen layers.
    #[arg(long)]
    pub add_hidden: Option<usize>,
    /// Replace the output layer by a fresh one for the data's class count.
    #[arg(long)]
    pub new_head: bool,
}

/// Training hyper-parameters shared by train, finetune and compare.
#[derive(Args, Clone)]
pub struct FitArgs {
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Optimizer (Keras's defaults for its settings), as model.compile(optimizer=NAME): sgd, adam,
    /// adamw, rmsprop, adagrad, adadelta, adamax, nadam, lion, ftrl. Default: sgd for train and compare,
    /// the model file's own for finetune.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate (default: the optimizer's; 0.01 for sgd). Kept as the double given (Keras's
    /// Python float): a float64 model's optimizer uses it as it is, a float32 model's rounded.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum of sgd or rmsprop.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// Loss: categorical_crossentropy, sparse_categorical_crossentropy, binary_crossentropy, mse,
    /// mae, huber (default: categorical_crossentropy for train, the model file's for finetune).
    #[arg(long)]
    pub loss: Option<String>,
    /// Keep the training rows in order every epoch (Keras fit(shuffle=False)).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Seed of random weights and shuffle orders.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Validate on the last fraction of the --train rows, taken before any shuffling (Keras's
    /// validation_split); not with --test.
    #[arg(long)]
    pub validation_split: Option<f64>,
    /// Stop when the monitored value has not improved for this many epochs (Keras's EarlyStopping).
    #[arg(long)]
    pub patience: Option<usize>,
    /// The smallest change that counts as an improvement (EarlyStopping min_delta).
    #[arg(long, default_value_t = 0.0, requires = "patience")]
    pub min_delta: f32,
    /// The history key early stopping watches (val_loss, loss, val_accuracy, ...).
    #[arg(long, default_value = "val_loss", requires = "patience")]
    pub monitor: String,
    /// After early stopping, go back to the weights of the best epoch.
    #[arg(long, requires = "patience")]
    pub restore_best_weights: bool,
    /// Print Keras-style per-epoch lines (`Epoch 3/20 - accuracy: ... - loss: ...`) on stderr.
    #[arg(long)]
    pub verbose: bool,
    /// Weight each training row's loss by its class (Keras's class_weight): `LABEL:W,...` for every
    /// class, or `balanced` (sklearn's n_samples / (n_classes * count)).
    #[arg(long)]
    pub class_weight: Option<String>,
    /// Where a frozen base's outputs are kept while the rest trains (computed once, not every
    /// epoch): auto (in memory, in a temporary file past 4 GiB), disk, or off (recompute every
    /// batch). The numbers are the same.
    #[arg(long, value_enum, default_value = "auto")]
    pub cache: CacheArg,
}

/// `--cache`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheArg {
    Auto,
    Disk,
    Off,
}

impl FitArgs {
    /// The `--class-weight` weights for `data`'s classes, in class order.
    pub fn class_weights(&self, data: &Dataset) -> Result<Option<Vec<f32>>> {
        let Some(text) = &self.class_weight else {
            return Ok(None);
        };
        let bad = |why: String| -> anyhow::Error {
            keras_transfer::Error::invalid("--class-weight", why).into()
        };
        if data.targets.is_some() {
            return Err(bad("is for class labels, not numeric targets".into()));
        }
        if text == "balanced" {
            let counts = data.class_counts();
            let present = counts.iter().filter(|&&c| c > 0).count() as f64;
            return Ok(Some(
                counts
                    .iter()
                    .map(|&c| {
                        if c == 0 {
                            0.0
                        } else {
                            (data.len() as f64 / (present * c as f64)) as f32
                        }
                    })
                    .collect(),
            ));
        }
        let mut w: Vec<Option<f32>> = vec![None; data.n_classes];
        for part in text.split(',') {
            let (label, value) = part
                .split_once(':')
                .ok_or_else(|| bad(format!("{} is not LABEL:WEIGHT", shown(part))))?;
            let c = data
                .class_names
                .iter()
                .position(|n| n == label.trim())
                .ok_or_else(|| {
                    bad(format!(
                        "{} is not among {}",
                        shown(label),
                        class_list_text(&data.class_names)
                    ))
                })?;
            let v: f32 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(format!("{} is not a non-negative number", shown(value))))?;
            w[c] = Some(v);
        }
        w.iter()
            .enumerate()
            .map(|(c, v)| {
                v.ok_or_else(|| {
                    bad(format!(
                        "no weight for class {}",
                        shown(&data.class_names[c])
                    ))
                })
            })
            .collect::<Result<Vec<f32>>>()
            .map(Some)
    }

    /// `compile(...)` from the flags alone (SGD 0.01 and categorical cross-entropy unless told
    /// otherwise) + `fit(epochs, batch_size, shuffle)`.
    pub fn config(&self) -> Result<FitConfig> {
        self.config_over(None)
    }

    /// The loss the flags ask for, if any.
    pub fn loss(&self) -> Result<Option<Loss>> {
        loss_flag(self.loss.as_deref())
    }

    /// The fit settings over a model file's compile settings `file` (as `load_model` + `fit`): the
    /// flags override as `model.compile(...)` would; `--optimizer` starts from that optimizer's
    /// defaults, `--lr`/`--momentum`/`--nesterov` change the file's (or the default) optimizer.
    pub fn config_over(&self, file: Option<Compile>) -> Result<FitConfig> {
        let base = file.unwrap_or_default();
        let mut optimizer = match &self.optimizer {
            Some(name) => OptimizerSpec::named(name)?,
            None => base.optimizer.clone(),
        };
        if let Some(lr) = self.lr {
            optimizer.learning_rate = keras_transfer::LearningRate::Constant(lr);
        }
        if self.momentum.is_some() || self.nesterov {
            match &mut optimizer.kind {
                OptimizerKind::Sgd(keras_transfer::train::optimizer::Sgd {
                    momentum,
                    nesterov,
                }) => {
                    if let Some(m) = self.momentum {
                        *momentum = m;
                    }
                    *nesterov |= self.nesterov;
                }
                OptimizerKind::RmsProp(keras_transfer::train::optimizer::RmsProp {
                    momentum,
                    ..
                }) if !self.nesterov => {
                    if let Some(m) = self.momentum {
                        *momentum = m;
                    }
                }
                _ => {
                    return Err(keras_transfer::Error::invalid(
                        if self.nesterov {
                            "--nesterov"
                        } else {
                            "--momentum"
                        },
                        format!("{} has no such setting", optimizer.keras_class()),
                    )
                    .into());
                }
            }
        }
        let (loss, metrics) = match self.loss()? {
            Some(l) if l != base.loss => (l, vec![Metric::default_for(l)]),
            _ => (base.loss, base.metrics),
        };
        let early_stopping = self
            .patience
            .map(|patience| keras_transfer::train::EarlyStopping {
                monitor: self.monitor.clone(),
                min_delta: self.min_delta.abs(),
                patience,
                restore_best_weights: self.restore_best_weights,
            });
        let cfg = FitConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            shuffle: !self.no_shuffle,
            early_stopping,
            cache: match self.cache {
                CacheArg::Auto => keras_transfer::train::feature_cache::CachePolicy::Auto,
                CacheArg::Disk => keras_transfer::train::feature_cache::CachePolicy::Disk,
                CacheArg::Off => keras_transfer::train::feature_cache::CachePolicy::Off,
            },
            ..FitConfig::default()
        }
        .with_compile(Compile {
            optimizer,
            loss,
            metrics,
        });
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Where a single fit's results go.
#[derive(Args)]
pub struct OutputArgs {
    /// Write the per-epoch history as Keras CSVLogger does.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Draw the learning curves to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Save the trained model: .h5/.hdf5 (Keras HDF5), .keras (Keras 3 archive), .weights.h5
    /// (weights only) or .safetensors.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keras dialect of an .h5 output.
    #[arg(long, value_enum, default_value = "keras3")]
    pub format: FormatArg,
}

impl OutputArgs {
    /// Checks every output before any work: a model name this tool can write, and targets that
    /// are absent or regular files in existing folders.
    pub fn check(&self) -> Result<()> {
        if let Some(out) = &self.out {
            let kind = keras_transfer::checkpoint::FileKind::of_target(out)?;
            check_format(self.format, kind)?;
        }
        for p in [&self.history, &self.plot].into_iter().flatten() {
            keras_transfer::fsutil::check_target(p)?;
        }
        Ok(())
    }
}

/// `--format` chooses the dialect of an `.h5` output; any other dialect than Keras 3's is refused
/// for the other formats rather than ignored (a `.keras` archive is Keras 3's format).
pub fn check_format(format: FormatArg, kind: keras_transfer::checkpoint::FileKind) -> Result<()> {
    use keras_transfer::checkpoint::FileKind;
    if format == FormatArg::Universal && kind != FileKind::KerasH5 {
        return Err(keras_transfer::Error::invalid(
            "--format",
            "universal applies to .h5/.hdf5 outputs only; .keras and .weights.h5 are Keras 3 formats",
        )
        .into());
    }
    Ok(())
}

#[derive(Args)]
pub struct FinetuneArgs {
    /// The model to start from: a Keras .h5/.hdf5 or .keras file (from Keras or this tool), or a
    /// .safetensors file this tool wrote.
    #[arg(long)]
    pub from: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Freeze the first N layers of Keras's `model.layers`, as `inspect` lists them: every layer
    /// counts (BatchNormalization, Dropout, ...), and a Functional model's InputLayer is layer 1.
    /// Layers the file saved frozen stay frozen too (see --unfreeze).
    #[arg(long, default_value_t = 0)]
    pub freeze: usize,
    #[command(flatten)]
    pub adapt: AdaptArgs,
    #[command(flatten)]
    pub fit: FitArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Second phase (Keras's fine-tuning recipe): after --epochs, train this many more epochs with
    /// layers thawed by --then-unfreeze, re-compiled as Keras's `compile` does (a new optimizer,
    /// its state and iteration count from zero; the same loss and metric). One --history holds both.
    #[arg(long)]
    pub then_epochs: Option<usize>,
    /// Layers the second phase thaws: NAME (a layer inside a nested model: from it to the nested
    /// model's end, as `base.layers[k:]`; a nested model: all of it; a top-level layer: it and every
    /// layer after it) or `all`. Default: none beyond the first phase's.
    #[arg(long)]
    pub then_unfreeze: Option<String>,
    /// Learning rate of the second phase's new optimizer (default: the first phase's).
    #[arg(long, allow_negative_numbers = true)]
    pub then_lr: Option<f64>,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The model the transfer configurations start from: a Keras .h5/.hdf5 or .keras file, or a
    /// .safetensors file this tool wrote.
    #[arg(long)]
    pub from: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Fits per configuration.
    #[arg(long, default_value_t = 30)]
    pub repeats: usize,
    /// Transfer configurations: the numbers of first layers to freeze (counted as `finetune
    /// --freeze` counts them), one configuration each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub freeze: Vec<usize>,
    /// Leave out the standalone model.
    #[arg(long)]
    pub no_standalone: bool,
    #[command(flatten)]
    pub adapt: AdaptArgs,
    #[command(flatten)]
    pub fit: FitArgs,
    /// Worker threads, at most 256 (default: one per core); results do not depend on it.
    #[arg(long, default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
    /// Draw the box-and-whisker plot to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write every score and statistic as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// A model file: Keras .h5/.hdf5 or .keras (from Keras or this tool), or a .safetensors file
    /// this tool wrote. A .weights.h5 holds no architecture: put it into one with `convert --weights`.
    pub file: PathBuf,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// The model file: Keras .h5/.hdf5 or .keras, or a .safetensors file this tool wrote (a
    /// .weights.h5 holds no architecture: put it into one with `convert --weights`).
    #[arg(long)]
    pub model: PathBuf,
    /// The tutorial blobs problem with this random_state; its test half (rows 500..) is evaluated.
    #[arg(long, conflicts_with = "data")]
    pub problem: Option<u32>,
    /// A labelled CSV to evaluate on (header row; label column by --label, default the last).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Name of the label column (default: the model's, else the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// The model's classes in output order, comma-separated or `@FILE` (one per line): needed for text
    /// labels on a model that stores no class names.
    #[arg(long)]
    pub classes: Option<String>,
    #[command(flatten)]
    pub csv: CsvArgs,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Evaluate with this loss, as `model.compile(loss=...)` + `evaluate` would: for a model saved
    /// uncompiled, or in place of the compiled loss (a note says so).
    #[arg(long)]
    pub loss: Option<String>,
    /// The metrics to report, comma-separated, as `compile(metrics=[...])`: accuracy,
    /// binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mae, mse (and their long
    /// names). In place of the compiled metrics (a note says so).
    #[arg(long)]
    pub metrics: Option<String>,
}

/// The loss `--loss` names, if given.
pub fn loss_flag(name: Option<&str>) -> Result<Option<Loss>> {
    name.map(|n| {
        Loss::named(n).ok_or_else(|| {
            keras_transfer::Error::invalid(
                "--loss",
                format!("{} is not one of categorical_crossentropy, sparse_categorical_crossentropy, binary_crossentropy, mse, mae, huber", shown(n)),
            )
            .into()
        })
    })
    .transpose()
}

/// The metrics `--metrics` names (comma-separated), as `compile(loss=loss, metrics=[...])` resolves
/// them; a metric this tool does not compute, or one named twice, is refused.
pub fn metrics_flag(list: &str) -> Result<Vec<Metric>> {
    let mut out: Vec<Metric> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = Metric::named(name).ok_or_else(|| {
            keras_transfer::Error::invalid(
                "--metrics",
                format!(
                    "{} is not one of accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mae, mse, mean_absolute_error, mean_squared_error",
                    shown(name)
                ),
            )
        })?;
        if out.iter().any(|o| o.key == m.key) {
            return Err(keras_transfer::Error::invalid(
                "--metrics",
                format!("names {} twice", shown(name)),
            )
            .into());
        }
        out.push(m);
    }
    Ok(out)
}

#[derive(Args)]
pub struct PredictArgs {
    /// The model file: Keras .h5/.hdf5 or .keras, or a .safetensors file this tool wrote (a
    /// .weights.h5 holds no architecture: put it into one with `convert --weights`).
    #[arg(long)]
    pub model: PathBuf,
    /// Input CSV: a header and the model's input columns (by name when the model knows them).
    #[arg(long)]
    pub input: PathBuf,
    /// Output file: per row the predicted class and each class's probability (`predicted,p_<class>,...`);
    /// standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// A column of the input to carry through to the output (e.g. the label or an id); not a feature.
    #[arg(long)]
    pub label: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutputFormat,
    /// The model's classes in output order, comma-separated or `@FILE` (one per line), to name the
    /// outputs of a model that stores no class names.
    #[arg(long)]
    pub classes: Option<String>,
    #[command(flatten)]
    pub csv: CsvArgs,
}

/// `features`: a layer's output (Keras's `Model(inputs, layer.output).predict`).
#[derive(Args)]
pub struct FeaturesArgs {
    /// The model file: Keras .h5/.hdf5 or .keras, or a .safetensors file this tool wrote.
    #[arg(long)]
    pub model: PathBuf,
    /// The layer: its name, its 0-based index into Keras's model.layers (a Functional model's
    /// InputLayer is 0), or BASE/NAME for a layer inside the nested model BASE.
    #[arg(long)]
    pub layer: String,
    /// The data: a CSV file, .npy/.npz, or an image folder (resized to the model's input).
    #[arg(long)]
    pub input: PathBuf,
    /// Output file: .npy (shape [N, dims...], the model's float type) or .csv (one flattened row
    /// per sample, header f0,f1,...; a first column `file` for an image folder).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub csv: CsvArgs,
}

/// For `--missing mean` on a saved model's data: the means of the data the model was trained on,
/// which it stores, fill the gaps (the file's own would give a row other values in another file);
/// refused when the model stores none.
pub fn training_means(
    model: &Path,
    names: Option<&DataSchema>,
    dialect: &mut Dialect,
) -> Result<()> {
    if dialect.missing != Missing::Mean {
        return Ok(());
    }
    match names.filter(|n| !n.means.is_empty()) {
        Some(n) => {
            dialect.means = Some(n.means.clone());
            Ok(())
        }
        None => Err(keras_transfer::Error::invalid(
            "--missing",
            format!(
                "mean fills a gap with the training data's column mean, which {} does not keep (it was not trained with --missing mean by keras-transfer); use --missing zero or fill the gaps",
                model.display()
            ),
        )
        .into()),
    }
}

/// `--classes` read: `None` when not given.
pub fn class_list(given: Option<&str>) -> Result<Option<Vec<String>>> {
    Ok(given
        .map(keras_transfer::data::classes::parse_class_list)
        .transpose()?)
}

/// How `predict` writes its rows.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A header and one line per row.
    Csv,
    /// A JSON array with one object per row, keyed like the CSV's columns.
    Json,
}

/// How the CSV files are read: their dialect, missing values and columns to leave out.
#[derive(Args, Clone, Default)]
pub struct CsvArgs {
    /// Field delimiter of the CSV files: a character, or `tab` (default: detected from the header
    /// among , ; tab |).
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// What to do with a missing value (an empty field, NA, NaN, null, ...): refuse the file (the
    /// default), drop its row, or fill it with its column's mean or with zero.
    #[arg(long, value_enum, default_value = "error")]
    pub missing: MissingArg,
    /// Columns of the CSV files to leave out, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Whether the values feed a float64 model (set by the command, not a flag): otherwise a value
    /// beyond float32's range is refused.
    /// Leave out an image that cannot be decoded (damaged, truncated, not an image), with a line
    /// on stderr, instead of stopping (image folders only).
    #[arg(long)]
    pub skip_bad_images: bool,
    /// The model's N-D per-sample input shape (an image's `[height, width, channels]`): what an
    /// image folder or an N-D array is read as (set from the model, not a flag).
    #[arg(skip)]
    pub sample_shape: Option<Vec<usize>>,
    #[arg(skip)]
    pub float64: bool,
}

/// `--missing`.
#[derive(Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MissingArg {
    #[default]
    Error,
    Drop,
    Mean,
    Zero,
}

/// The most hidden layers `train --hidden` builds (a model file may hold up to
/// `keras_transfer::model::spec::MAX_LAYERS` layers).
pub const MAX_HIDDEN: usize = 10_000;

/// The most worker threads `--threads` may ask for: far more than any machine's cores, far fewer
/// than a system's thread limit.
pub const MAX_THREADS: usize = 256;

fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_THREADS => Ok(n),
        _ => Err(format!(
            "'{s}' is not a thread count from 0 (one per core) to {MAX_THREADS}"
        )),
    }
}

fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" && s != "\r" => {
            Ok(s.as_bytes()[0])
        }
        _ => Err(format!(
            "'{s}' is not a delimiter: give one ASCII character such as , ; | or the word tab"
        )),
    }
}

impl CsvArgs {
    /// The dialect these flags ask for.
    pub fn dialect(&self) -> Dialect {
        Dialect {
            delimiter: self.delimiter,
            missing: match self.missing {
                MissingArg::Error => Missing::Error,
                MissingArg::Drop => Missing::Drop,
                MissingArg::Mean => Missing::Mean,
                MissingArg::Zero => Missing::Zero,
            },
            float64: self.float64,
            means: None,
        }
    }
}

/// What the readers recognised or did, told once the command has succeeded (a failing command
/// prints its one error line only).
static NOTES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Queues notes for the user (one line each, each said once).
pub fn tell(notes: &[String]) {
    if let Ok(mut q) = NOTES.lock() {
        for n in notes {
            if !q.contains(n) {
                q.push(n.clone());
            }
        }
    }
}

/// Prints the queued notes on stderr.
pub fn flush_notes() {
    if let Ok(mut q) = NOTES.lock() {
        for n in q.drain(..) {
            crate::cli::output::tell_err!("note: {n}");
        }
    }
}

/// The reading of a data file for a loaded model: by the model's stored names when it has them;
/// else (a file Keras made) by position, said once on stderr.
pub fn model_names<'m>(model_path: &Path, data: Option<&'m DataSchema>) -> Option<&'m DataSchema> {
    if data.is_none() {
        tell(&[format!(
            "{} stores no column or class names (a file keras-transfer did not write): columns are taken by position, integer labels as output indices, text labels by --classes",
            model_path.display()
        )]);
    }
    data
}

#[derive(Args)]
pub struct ConvertArgs {
    /// The model to read (.h5, .hdf5, .keras or .safetensors).
    pub input: PathBuf,
    /// The file to write (.h5, .hdf5, .keras, .weights.h5 or .safetensors).
    pub output: PathBuf,
    /// Put the weights of this Keras 3 .weights.h5 file into the input's architecture first.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The Keras dialect of an .h5 output (default: the input's).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

#[derive(Args)]
pub struct BlobsArgs {
    /// make_blobs random_state (0..=4294967295).
    #[arg(long)]
    pub seed: u32,
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    #[arg(long, default_value_t = 3)]
    pub centers: usize,
    #[arg(long, default_value_t = 2)]
    pub features: usize,
    /// cluster_std.
    #[arg(long, default_value_t = 2.0)]
    pub std: f64,
    /// Keep the samples grouped by center (make_blobs shuffle=False).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Write the samples as CSV (`x0,...,y`).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw the scatter plot to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Where the training data comes from: a tutorial blobs problem or the user's CSV files.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// The tutorial's blobs problem with this random_state (1000 samples, 500/500 split); the
    /// default when no data is given is 1 for train, 2 for finetune and compare.
    #[arg(long, conflicts_with_all = ["train", "test"])]
    pub problem: Option<u32>,
    /// Training data CSV (header row; label column by --label, default the last), or NumPy arrays:
    /// an .npz holding x (2-D) and y (integer labels), or x.npy with y.npy beside it.
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Test (validation) data CSV, same columns as --train (or .npz / x.npy, as --train).
    #[arg(long, requires = "train")]
    pub test: Option<PathBuf>,
    /// Name of the label column in the CSV files (default: a base model's, else the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// The classes in output order, comma-separated or `@FILE` (one per line): needed for text labels
    /// on a model that stores no class names; for a new model, the order of its outputs.
    #[arg(long)]
    pub classes: Option<String>,
    #[command(flatten)]
    pub csv: CsvArgs,
    /// Rows of the blobs problem used for training; the rest are the test set.
    #[arg(long, default_value_t = 500)]
    pub split: usize,
}

impl DataArgs {
    /// The library's data request these flags make (`sample_shape`: a saved model's input shape
    /// when it is not flat).
    fn request(&self, sample_shape: Option<Vec<usize>>) -> Result<DataRequest<'_>> {
        Ok(DataRequest {
            problem: self.problem,
            train: self.train.as_deref(),
            test: self.test.as_deref(),
            label: self.label.as_deref(),
            classes: class_list(self.classes.as_deref())?,
            ignore: &self.csv.ignore,
            dialect: self.csv.dialect(),
            sample_shape: sample_shape.or_else(|| self.csv.sample_shape.clone()),
            skip_bad_images: self.csv.skip_bad_images,
            split: self.split,
        })
    }

    /// The data for a new model fitted with `loss` (see `DataRequest::load`): the train set and
    /// the test set or validation split, and whether it is a validation split.
    pub fn load_split(
        &self,
        default_problem: u32,
        loss: Loss,
        loss_chosen: bool,
        split: Option<f64>,
    ) -> Result<((Dataset, Option<Dataset>), bool)> {
        let l = self
            .request(None)?
            .load(default_problem, None, loss, loss_chosen, split)?;
        tell(&l.notes);
        Ok(((l.train, l.test), l.validation))
    }

    /// `load_split` for the model `base` read from `path` (its names, or by position when it has
    /// none, said once on stderr when files are read; a new head's labels need not be its classes).
    pub fn load_split_for_model(
        &self,
        default_problem: u32,
        path: &Path,
        base: &KerasModel,
        new_head: bool,
        loss: Loss,
        split: Option<f64>,
    ) -> Result<((Dataset, Option<Dataset>), bool)> {
        let names = match &self.train {
            Some(_) => model_names(path, base.data.as_ref()),
            None => base.data.as_ref(),
        };
        // A binary head's one sigmoid unit stands for the two classes 0 and 1.
        let binary = matches!(base.compile(), Some(Ok(c)) if c.loss.target() == keras_transfer::Target::Binary)
            && base.spec.output_dim() == 1;
        let model = ModelData {
            path,
            names,
            outputs: if binary { 2 } else { base.spec.output_dim() },
            new_head,
        };
        let l = self.request(base.spec.sample_shape())?.load(
            default_problem,
            Some(&model),
            loss,
            true,
            split,
        )?;
        tell(&l.notes);
        Ok(((l.train, l.test), l.validation))
    }
}

/// The Keras dialect of an .h5 output.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// What Keras 3.15 writes; loads in Keras 3.
    Keras3,
    /// A Keras-2-style file that loads cleanly in both Keras 3 and tf.keras 2.
    Universal,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Keras3 => Format::Keras3,
            FormatArg::Universal => Format::Universal,
        }
    }
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden layer widths, comma-separated (at most 10,000 layers).
    #[arg(long, value_delimiter = ',', default_value = "5,5")]
    pub hidden: Vec<usize>,
    /// Hidden activation: one for all hidden layers, or one per hidden layer (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "relu")]
    pub activation: Vec<Activation>,
    /// The model's float type: float32 (Keras's default) or float64 (every layer, the data, the loss
    /// and the optimizer in float64, as Keras under `keras.config.set_floatx("float64")`).
    #[arg(long, default_value = "float32", value_parser = parse_dtype)]
    pub dtype: keras_transfer::FloatDtype,
    #[command(flatten)]
    pub fit: FitArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_dtype(s: &str) -> std::result::Result<keras_transfer::FloatDtype, String> {
    keras_transfer::FloatDtype::from_keras(s).ok_or_else(|| {
        format!("'{s}' is not float32 or float64 (the dtypes keras-transfer computes in)")
    })
}
