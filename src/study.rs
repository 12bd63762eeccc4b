//! The whole study of the tutorial in one call: both problems, the Problem-1 model saved as
//! `model.h5`, standalone and transfer fits on Problem 2, the repeated comparison, the reverse
//! experiment, the two other extensions, and a Markdown report beside the figures.

use crate::checkpoint::{load_model, save_model};
use crate::data::{BlobsParams, Dataset, make_blobs};
use crate::error::{Error, Result};
use crate::experiment::compare::{Arm, ArmScores, CompareConfig, compare};
use crate::experiment::finetune::{Transfer, adapt};
use crate::experiment::stats::Summary;
use crate::fsutil::write_bytes_atomic;
use crate::keras::KerasModel;
use crate::model::{Model, ModelSpec};
use crate::plot::{self, plot_history, plot_problems};
use crate::report;
use crate::train::{FitConfig, evaluate, fit};
use std::path::{Path, PathBuf};

/// What the study runs.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    pub out_dir: PathBuf,
    pub repeats: usize,
    pub epochs: usize,
    pub seed: u32,
    /// Worker threads for the comparisons (0: one per core).
    pub threads: usize,
}

/// One single fit of the study, as the tutorial prints it.
#[derive(Debug, Clone)]
pub struct SingleRun {
    pub name: String,
    pub train_acc: f32,
    pub test_acc: f32,
    pub figure: String,
}

/// Everything the study produced.
#[derive(Debug, Clone)]
pub struct StudyResults {
    pub singles: Vec<SingleRun>,
    pub comparison: Vec<ArmScores>,
    pub reverse: Vec<ArmScores>,
    pub extensions: Vec<ArmScores>,
    /// How the transfer result depends on the Problem-1 model (one row per base model).
    pub base_models: Vec<BaseModelRow>,
    pub report: PathBuf,
}

/// One Problem-1 model of the base-model check: its seed, its own test accuracy, and the mean test
/// accuracy on Problem 2 of transfer with 0, 1 and 2 fixed layers.
#[derive(Debug, Clone)]
pub struct BaseModelRow {
    pub seed: u32,
    pub problem1_test: f32,
    pub transfer_means: Vec<f64>,
}

/// Base models in the base-model check, and repeats per configuration for each.
const BASE_MODELS: u32 = 10;
const BASE_REPEATS: usize = 10;

/// Trains `BASE_MODELS` Problem-1 models (seeds `seed..`) and measures how well each transfers.
fn base_model_check(
    opts: &StudyOptions,
    p1: &(Dataset, Dataset),
    p2: &(Dataset, Dataset),
    arms: &[Arm],
) -> Result<Vec<BaseModelRow>> {
    let mut rows = Vec::new();
    for k in 0..BASE_MODELS {
        let seed = opts.seed.wrapping_add(k);
        let m = Model::new(ModelSpec::tutorial(), seed)?;
        let cfg = FitConfig {
            epochs: opts.epochs,
            ..FitConfig::default()
        };
        fit(&m, &p1.0, None, &cfg, &[seed])?;
        let problem1_test = evaluate(&m, &p1.1, cfg.batch_size, cfg.loss)?[0].accuracy;
        let base = KerasModel::new(m.spec().clone(), m.weights()?, Some(&cfg.optimizer));
        let ccfg = CompareConfig {
            repeats: BASE_REPEATS,
            fit: FitConfig {
                epochs: opts.epochs,
                ..FitConfig::default()
            },
            seed,
            threads: opts.threads,
        };
        let r = compare(&base, arms, &p2.0, &p2.1, &ccfg, &|| {})?;
        let transfer_means = r.iter().map(|a| Summary::of(&a.scores).mean).collect();
        rows.push(BaseModelRow {
            seed,
            problem1_test,
            transfer_means,
        });
    }
    Ok(rows)
}

fn problem(seed: u32) -> Result<(Dataset, Dataset)> {
    make_blobs(&BlobsParams::tutorial(seed))?.data.split_at(500)
}

/// Fits `model` (shuffling with `seed`) with per-epoch validation, draws its curves to `figure`, and
/// records the accuracies.
fn single(
    name: &str,
    model: &Model,
    p: &(Dataset, Dataset),
    cfg: &FitConfig,
    seed: u32,
    dir: &Path,
    figure: &str,
) -> Result<SingleRun> {
    let h = fit(model, &p.0, Some(&p.1), cfg, &[seed])?;
    plot_history(&dir.join(figure), name, &h[0])?;
    let train_acc = evaluate(model, &p.0, cfg.batch_size, cfg.loss)?[0].accuracy;
    let test_acc = evaluate(model, &p.1, cfg.batch_size, cfg.loss)?[0].accuracy;
    Ok(SingleRun {
        name: name.to_string(),
        train_acc,
        test_acc,
        figure: figure.to_string(),
    })
}

fn write_json(
    dir: &Path,
    name: &str,
    results: &[ArmScores],
    meta: serde_json::Value,
) -> Result<()> {
    let text = serde_json::to_string_pretty(&report::compare_json(results, meta))
        .map_err(|e| Error::invalid("json", e.to_string()))?;
    write_bytes_atomic(&dir.join(name), text.as_bytes())
}

/// Writes a comparison's box plot `<stem>_box.png` and `<stem>.json`, and logs its lines.
fn publish(
    dir: &Path,
    stem: &str,
    what: &str,
    title: &str,
    results: &[ArmScores],
    meta: serde_json::Value,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    box_figure(dir, &format!("{stem}_box.png"), title, results)?;
    write_json(dir, &format!("{stem}.json"), results, meta)?;
    log(&format!("{what} ({stem}_box.png, {stem}.json):"));
    for l in report::compare_lines(results) {
        log(&format!("  {l}"));
    }
    Ok(())
}

fn box_figure(dir: &Path, name: &str, title: &str, results: &[ArmScores]) -> Result<()> {
    let groups: Vec<(String, Vec<f64>)> = results
        .iter()
        .map(|r| (r.arm.label(), r.scores.clone()))
        .collect();
    plot::box_plot(&dir.join(name), title, &groups)
}

/// Runs the study, writing every figure, model, JSON file and `report.md` into `opts.out_dir`;
/// `log` receives each line a person would want to see as it goes.
pub fn run_study(opts: &StudyOptions, log: &mut dyn FnMut(&str)) -> Result<StudyResults> {
    let dir = &opts.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let p1 = problem(1)?;
    let p2 = problem(2)?;
    let full1 = make_blobs(&BlobsParams::tutorial(1))?.data;
    let full2 = make_blobs(&BlobsParams::tutorial(2))?.data;
    plot_problems(
        &dir.join("problems.png"),
        &[
            ("Problem 1 (random_state=1)".into(), &full1),
            ("Problem 2 (random_state=2)".into(), &full2),
        ],
    )?;
    log("Scatter plots of Problems 1 and 2: problems.png");

    let cfg = FitConfig {
        epochs: opts.epochs,
        ..FitConfig::default()
    };
    let save = |path: &Path, m: &Model, data: &Dataset| -> Result<()> {
        save_model(
            path,
            &KerasModel::new(m.spec().clone(), m.weights()?, Some(&cfg.optimizer))
                .with_data(data.schema()),
        )
    };
    let mut singles = Vec::new();
    // Problem 1: the model every transfer starts from.
    let m1 = Model::new(ModelSpec::tutorial(), opts.seed)?;
    singles.push(single(
        "Problem 1 MLP",
        &m1,
        &p1,
        &cfg,
        opts.seed,
        dir,
        "problem1_curves.png",
    )?);
    let model_h5 = dir.join("model.h5");
    save(&model_h5, &m1, &p1.0)?;
    // Problem 2, standalone and with transfer from the saved file (read back, as the tutorial does).
    let m2 = Model::new(ModelSpec::tutorial(), opts.seed.wrapping_add(1))?;
    singles.push(single(
        "Problem 2 standalone MLP",
        &m2,
        &p2,
        &cfg,
        opts.seed.wrapping_add(1),
        dir,
        "problem2_standalone_curves.png",
    )?);
    let base = load_model(&model_h5)?;
    let mt = adapt(&base, &Transfer::default(), 2, 3, opts.seed)?;
    singles.push(single(
        "Problem 2 MLP with transfer from model.h5",
        &mt,
        &p2,
        &cfg,
        opts.seed,
        dir,
        "problem2_transfer_curves.png",
    )?);
    for s in &singles {
        log(&format!(
            "{}: Train: {:.3}, Test: {:.3}  ({})",
            s.name, s.train_acc, s.test_acc, s.figure
        ));
    }

    let ccfg = CompareConfig {
        repeats: opts.repeats,
        fit: FitConfig {
            epochs: opts.epochs,
            ..FitConfig::default()
        },
        seed: opts.seed,
        threads: opts.threads,
    };
    let fixed = |f: usize| {
        Arm::Transfer(Transfer {
            freeze: f,
            ..Transfer::default()
        })
    };
    let meta = |what: &str, model: &str, problem: u32| serde_json::json!({"experiment": what, "model": model, "problem": problem, "repeats": opts.repeats, "epochs": opts.epochs, "seed": opts.seed});

    // The tutorial's comparison on Problem 2.
    let arms = vec![Arm::Standalone, fixed(0), fixed(1), fixed(2)];
    let comparison = compare(&base, &arms, &p2.0, &p2.1, &ccfg, &|| {})?;
    publish(
        dir,
        "comparison",
        "Comparison on Problem 2",
        "Problem 2: standalone vs transfer from Problem 1",
        &comparison,
        meta("comparison", "model.h5", 2),
        log,
    )?;

    // Extension 1, the reverse experiment: a Problem-2 model helping on Problem 1.
    let m2b = Model::new(ModelSpec::tutorial(), opts.seed.wrapping_add(2))?;
    fit(&m2b, &p2.0, None, &cfg, &[opts.seed.wrapping_add(2)])?;
    let model2_h5 = dir.join("model_problem2.h5");
    save(&model2_h5, &m2b, &p2.0)?;
    let base2 = load_model(&model2_h5)?;
    let reverse = compare(&base2, &arms, &p1.0, &p1.1, &ccfg, &|| {})?;
    publish(
        dir,
        "reverse",
        "Reverse experiment on Problem 1",
        "Reverse: Problem 1, transfer from a Problem-2 model",
        &reverse,
        meta("reverse", "model_problem2.h5", 1),
        log,
    )?;

    // Extensions 2 and 3: a new hidden layer after the two fixed ones; re-initialised upper layers.
    let ext_arms = vec![
        Arm::Standalone,
        fixed(1),
        fixed(2),
        Arm::Transfer(Transfer {
            freeze: 2,
            add_hidden: Some(5),
            ..Transfer::default()
        }),
        Arm::Transfer(Transfer {
            freeze: 1,
            reinit: vec![2, 3],
            ..Transfer::default()
        }),
    ];
    let extensions = compare(&base, &ext_arms, &p2.0, &p2.1, &ccfg, &|| {})?;
    publish(
        dir,
        "extensions",
        "Extensions on Problem 2",
        "Extensions on Problem 2",
        &extensions,
        meta("extensions", "model.h5", 2),
        log,
    )?;

    // How much the transfer rows owe to the one Problem-1 model they all start from.
    let transfer_arms = vec![fixed(0), fixed(1), fixed(2)];
    let base_models = base_model_check(opts, &p1, &p2, &transfer_arms)?;
    log(&format!(
        "Transfer from {BASE_MODELS} different Problem-1 models ({BASE_REPEATS} repeats each), mean test accuracy on Problem 2:"
    ));
    log("  seed  P1 test  fixed=0  fixed=1  fixed=2");
    for r in &base_models {
        log(&format!(
            "  {:>4}  {:.3}    {:.3}    {:.3}    {:.3}",
            r.seed, r.problem1_test, r.transfer_means[0], r.transfer_means[1], r.transfer_means[2]
        ));
    }

    let report_path = dir.join("report.md");
    let md = markdown(
        opts,
        &singles,
        &comparison,
        &reverse,
        &extensions,
        &base_models,
    );
    write_bytes_atomic(&report_path, md.as_bytes())?;
    log(&format!("Report: {}", report_path.display()));
    Ok(StudyResults {
        singles,
        comparison,
        reverse,
        extensions,
        base_models,
        report: report_path,
    })
}

/// The tutorial's own numbers (Keras 2.3) and those measured with Keras 3.15
/// (docs/keras-training.md#results).
const REFERENCE: &[(&str, &str, &str)] = &[
    ("Standalone", "0.787 (0.101)", "0.786 (0.077)"),
    ("Transfer (fixed=0)", "0.805 (0.004)", "0.813 (0.009)"),
    ("Transfer (fixed=1)", "0.817 (0.005)", "0.811 (0.005)"),
    ("Transfer (fixed=2)", "0.750 (0.014)", "0.810 (0.006)"),
];

fn markdown(
    opts: &StudyOptions,
    singles: &[SingleRun],
    comparison: &[ArmScores],
    reverse: &[ArmScores],
    extensions: &[ArmScores],
    base_models: &[BaseModelRow],
) -> String {
    let mut md = String::new();
    md.push_str("# Transfer learning on the blobs problems: the study\n\n");
    md.push_str(&format!(
        "Made by `keras-transfer tutorial --out-dir {} --repeats {} --epochs {} --seed {}`. Every fit is \
         Keras's: SGD 0.01, batches of 32, shuffled epochs, softmax cross-entropy, he_uniform/glorot_uniform.\n\n",
        opts.out_dir.display(), opts.repeats, opts.epochs, opts.seed
    ));
    md.push_str("## The two problems\n\n![Problems 1 and 2](problems.png)\n\n");
    md.push_str("## Single fits\n\n| model | train | test | tutorial (Keras 2.3) train / test |\n|---|---|---|---|\n");
    let tut = ["0.916 / 0.920", "0.794 / 0.794", "0.786 / 0.810"];
    for (s, t) in singles.iter().zip(tut) {
        md.push_str(&format!(
            "| {} | {:.3} | {:.3} | {t} |\n",
            s.name, s.train_acc, s.test_acc
        ));
    }
    md.push('\n');
    for s in singles {
        md.push_str(&format!("![{}]({})\n\n", s.name, s.figure));
    }
    md.push_str(&format!("The Problem-1 model is saved as `model.h5` (Keras 3 HDF5 layout); the transfer fits load it back.\n\n## Comparison on Problem 2 ({} repeats each)\n\n", opts.repeats));
    md.push_str("```\n");
    for l in comparison.iter().map(report::tutorial_line) {
        md.push_str(&l);
        md.push('\n');
    }
    md.push_str("```\n\n");
    md.push_str(&report::compare_markdown(comparison));
    md.push_str("\nBeside the tutorial's own numbers, mean (std) of test accuracy:\n\n| configuration | keras-transfer | tutorial (Keras 2.3) | Keras 3.15 |\n|---|---|---|---|\n");
    for (title, tut, k3) in REFERENCE {
        if let Some(r) = comparison.iter().find(|r| r.arm.title() == *title) {
            let s = Summary::of(&r.scores);
            md.push_str(&format!(
                "| {title} | {:.3} ({:.3}) | {tut} | {k3} |\n",
                s.mean, s.std
            ));
        }
    }
    md.push_str("\n![Comparison](comparison_box.png)\n\n");
    md.push_str("## Extension: the reverse experiment (Problem 2 model, Problem 1 data)\n\n");
    md.push_str(&report::compare_markdown(reverse));
    md.push_str("\n![Reverse](reverse_box.png)\n\n");
    md.push_str("## Extensions: a new hidden layer, re-initialised layers\n\n");
    md.push_str("`Transfer (fixed=2) +hidden(5)` keeps both hidden layers fixed and adds a new randomly initialised \
        hidden layer before the output layer; `Transfer (fixed=1) reinit=2,3` keeps the first hidden layer and \
        re-initialises the second hidden layer and the output layer.\n\n");
    md.push_str(&report::compare_markdown(extensions));
    md.push_str("\n![Extensions](extensions_box.png)\n\n");
    md.push_str(&format!(
        "## How much the transfer result owes to the one Problem-1 model\n\nEvery transfer row above starts \
         from the same `model.h5`. Here {BASE_MODELS} Problem-1 models (seeds {} to {}) are each used as the \
         starting point of {BASE_REPEATS} transfer fits per configuration on Problem 2 (mean test accuracy):\n\n\
         | seed | Problem 1 test | fixed=0 | fixed=1 | fixed=2 |\n|---|---|---|---|---|\n",
        opts.seed,
        opts.seed.wrapping_add(BASE_MODELS - 1)
    ));
    for r in base_models {
        md.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            r.seed, r.problem1_test, r.transfer_means[0], r.transfer_means[1], r.transfer_means[2]
        ));
    }
    md
}
