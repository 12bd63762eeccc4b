//! The study: adapting a saved model (freeze, re-initialise, add a layer, new head), the repeated
//! comparison (seeded, thread-count independent), and the one-command tutorial run.

use crate::common::*;
use keras_transfer::Error;
use keras_transfer::experiment::compare::{Arm, CompareConfig, compare};
use keras_transfer::experiment::finetune::{Transfer, adapt};
use keras_transfer::keras::{KerasModel, load_h5};
use keras_transfer::train::FitConfig;

fn keras_model() -> KerasModel {
    load_h5(&fixture("keras_h5/k3_tutorial/model.h5")).unwrap()
}

#[test]
fn adapt_keeps_reinits_and_inserts_layers() {
    let base = keras_model();
    let kept = adapt(
        &base,
        &Transfer {
            freeze: 1,
            ..Transfer::default()
        },
        2,
        3,
        0,
    )
    .unwrap();
    assert_eq!(kept.weights().unwrap(), base.weights);
    assert_eq!(
        kept.spec()
            .layers
            .iter()
            .map(|l| l.trainable())
            .collect::<Vec<_>>(),
        vec![false, true, true]
    );

    let re = adapt(
        &base,
        &Transfer {
            freeze: 1,
            reinit: vec![2, 3],
            ..Transfer::default()
        },
        2,
        3,
        4,
    )
    .unwrap();
    let w = re.weights().unwrap();
    assert_eq!(w[0], base.weights[0]);
    assert_ne!(w[1][0], base.weights[1][0]);
    assert_ne!(w[2][0], base.weights[2][0]);
    assert!(
        w[1][1].iter().all(|&b| b == 0.0),
        "re-initialised biases start at zero"
    );

    let added = adapt(
        &base,
        &Transfer {
            freeze: 2,
            add_hidden: Some(5),
            ..Transfer::default()
        },
        2,
        3,
        4,
    )
    .unwrap();
    let spec = added.spec();
    assert_eq!(spec.layers.len(), 4);
    assert_eq!(spec.output_width(2), 5);
    let names: std::collections::HashSet<&str> = spec.layers.iter().map(|l| l.name()).collect();
    assert_eq!(names.len(), 4, "unique names");
    let aw = added.weights().unwrap();
    assert_eq!(aw[0], base.weights[0]);
    assert_eq!(aw[1], base.weights[1]);
    assert_eq!(
        aw[3], base.weights[2],
        "the output layer still reads 5 values, so it is kept"
    );

    let wider = adapt(
        &base,
        &Transfer {
            freeze: 2,
            add_hidden: Some(8),
            ..Transfer::default()
        },
        2,
        3,
        4,
    )
    .unwrap();
    assert_eq!(wider.spec().fan_in(3), 8);

    let head = adapt(
        &base,
        &Transfer {
            freeze: 2,
            new_head: true,
            ..Transfer::default()
        },
        2,
        4,
        4,
    )
    .unwrap();
    assert_eq!(head.spec().output_dim(), 4);
}

#[test]
fn adapt_refuses_what_cannot_work() {
    let base = keras_model();
    let cases: Vec<(Transfer, usize, usize, &str)> = vec![
        (
            Transfer {
                freeze: 4,
                ..Transfer::default()
            },
            2,
            3,
            "invalid freeze",
        ),
        (
            Transfer {
                reinit: vec![4],
                ..Transfer::default()
            },
            2,
            3,
            "invalid reinit",
        ),
        (
            Transfer {
                reinit: vec![0],
                ..Transfer::default()
            },
            2,
            3,
            "invalid reinit",
        ),
        (
            Transfer {
                freeze: 2,
                reinit: vec![1],
                ..Transfer::default()
            },
            2,
            3,
            "frozen",
        ),
        (
            Transfer {
                freeze: 3,
                add_hidden: Some(5),
                ..Transfer::default()
            },
            2,
            3,
            "invalid add_hidden",
        ),
        (Transfer::default(), 3, 3, "3 features"),
        (Transfer::default(), 2, 4, "--new-head"),
    ];
    for (t, inputs, classes, needle) in cases {
        let e = adapt(&base, &t, inputs, classes, 0)
            .err()
            .unwrap_or_else(|| panic!("{t:?} was accepted"));
        assert!(e.to_string().contains(needle), "{t:?}: {e}");
        assert!(
            matches!(e, Error::Invalid { .. } | Error::Mismatch(_)),
            "{e}"
        );
    }
}

#[test]
fn compare_is_reproducible_whatever_the_thread_count() {
    let base = keras_model();
    let (train, test) = tutorial_problem(2);
    let arms = vec![
        Arm::Standalone,
        Arm::Transfer(Transfer {
            freeze: 1,
            ..Transfer::default()
        }),
    ];
    let run = |threads| {
        let cfg = CompareConfig {
            repeats: 3,
            fit: FitConfig {
                epochs: 4,
                ..FitConfig::default()
            },
            seed: 11,
            threads,
        };
        compare(&base, &arms, &train, &test, &cfg, &|| {}).unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    assert_eq!(one.len(), 2);
    assert!(
        one.iter()
            .all(|a| a.scores.len() == 3 && a.scores.iter().all(|s| (0.0..=1.0).contains(s)))
    );
}

#[test]
fn compare_cli_prints_the_tutorial_lines_and_writes_json_and_plot() {
    let dir = tempdir();
    let d = dir.path();
    let model = fixture("keras_h5/k3_tutorial/model.h5");
    let out = run(
        d,
        &[
            "compare",
            "--from",
            model.to_str().unwrap(),
            "--problem",
            "2",
            "--repeats",
            "3",
            "--epochs",
            "3",
            "--json",
            "s.json",
            "--plot",
            "box.png",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for (i, title) in [
        "Standalone",
        "Transfer (fixed=0)",
        "Transfer (fixed=1)",
        "Transfer (fixed=2)",
    ]
    .iter()
    .enumerate()
    {
        let l = lines[i];
        assert!(l.starts_with(title), "{l}");
        let rest = &l[title.len()..];
        assert!(
            rest.len() == " 0.787 (0.101)".len() && rest.starts_with(" 0.") && rest.ends_with(')'),
            "{l}"
        );
    }
    assert!(text.contains("vs Standalone: "), "{text}");
    let json = read_json(&d.join("s.json"));
    assert_eq!(json["arms"].as_array().unwrap().len(), 4);
    assert_eq!(json["arms"][0]["scores"].as_array().unwrap().len(), 3);
    assert_eq!(json["tests"].as_array().unwrap().len(), 3);
    assert!(
        std::fs::read(d.join("box.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
}

#[test]
fn the_tutorial_writes_every_figure_table_and_model() {
    let dir = tempdir();
    let d = dir.path();
    let out = run(
        d,
        &[
            "tutorial",
            "--out-dir",
            "study",
            "--repeats",
            "2",
            "--epochs",
            "3",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = d.join("study");
    for f in [
        "problems.png",
        "problem1_curves.png",
        "problem2_standalone_curves.png",
        "problem2_transfer_curves.png",
        "comparison_box.png",
        "reverse_box.png",
        "extensions_box.png",
    ] {
        assert!(
            std::fs::read(s.join(f)).unwrap().starts_with(b"\x89PNG"),
            "{f}"
        );
    }
    for f in ["comparison.json", "reverse.json", "extensions.json"] {
        read_json(&s.join(f));
    }
    for f in ["model.h5", "model_problem2.h5"] {
        // The study's models keep the names of the blobs data they were trained on.
        let names = load_h5(&s.join(f)).unwrap().data.unwrap();
        assert_eq!(
            (names.features, names.label, names.classes),
            (
                vec!["x0".to_string(), "x1".into()],
                Some("y".to_string()),
                vec!["0".to_string(), "1".into(), "2".into()]
            ),
            "{f}"
        );
    }
    let report = std::fs::read_to_string(s.join("report.md")).unwrap();
    for needle in [
        "![Comparison](comparison_box.png)",
        "| Standalone |",
        "0.787 (0.101)",
        "+hidden(5)",
        "reinit=2,3",
        "Reverse",
    ] {
        assert!(report.contains(needle), "report lacks {needle}");
    }
}

#[test]
fn stacked_members_get_the_bits_of_lone_fits() {
    use keras_transfer::train::{Loss, evaluate, fit};
    use keras_transfer::{Model, ModelSpec};
    let (train, test) = tutorial_problem(2);
    let seeds = [3u32, 17, 99];
    let cfg = FitConfig {
        epochs: 7,
        ..FitConfig::default()
    };
    for frozen in [vec![], vec![0], vec![1]] {
        let mut spec = ModelSpec::tutorial();
        spec.freeze_only(&frozen).unwrap();
        let stacked = Model::new_members(spec.clone(), &seeds).unwrap();
        let hs = fit(&stacked, &train, Some(&test), &cfg, &seeds).unwrap();
        let scores = evaluate(&stacked, &test, 32, Loss::CATEGORICAL).unwrap();
        for (m, &s) in seeds.iter().enumerate() {
            let lone = Model::new(spec.clone(), s).unwrap();
            let h = fit(&lone, &train, Some(&test), &cfg, &[s]).unwrap();
            assert_eq!(
                stacked.member_weights(m).unwrap(),
                lone.weights().unwrap(),
                "member {m}, frozen {frozen:?}"
            );
            assert_eq!(hs[m], h[0], "history of member {m}, frozen {frozen:?}");
            let lone_score = evaluate(&lone, &test, 32, Loss::CATEGORICAL).unwrap()[0];
            assert_eq!(scores[m].accuracy.to_bits(), lone_score.accuracy.to_bits());
            assert_eq!(scores[m].loss.to_bits(), lone_score.loss.to_bits());
        }
    }
}

/// `compare` (the repeats of an arm stacked into ensembles, spread over a pool) gives, bit for bit,
/// the scores of lone models fitted one at a time through the plain single-model path: built with
/// `Model::new` or `adapt` (not `run_members`' stacking), `fit` with its default per-step metric,
/// then `evaluate`. Only the seeds (`repeat_seed`) are shared with `compare`.
#[test]
fn the_fast_compare_equals_lone_fits_one_at_a_time() {
    use keras_transfer::Model;
    use keras_transfer::experiment::compare::repeat_seed;
    use keras_transfer::experiment::finetune::standalone_spec;
    use keras_transfer::train::{evaluate, fit};
    let base = keras_model();
    let (train, test) = tutorial_problem(2);
    let arms = vec![
        Arm::Standalone,
        Arm::Transfer(Transfer {
            freeze: 1,
            ..Transfer::default()
        }),
        Arm::Transfer(Transfer {
            freeze: 2,
            add_hidden: Some(4),
            ..Transfer::default()
        }),
    ];
    let cfg = CompareConfig {
        repeats: 3,
        fit: FitConfig {
            epochs: 5,
            ..FitConfig::default()
        },
        seed: 5,
        threads: 2,
    };
    let fast = compare(&base, &arms, &train, &test, &cfg, &|| {}).unwrap();
    for (a, arm) in arms.iter().enumerate() {
        for r in 0..cfg.repeats {
            let seed = repeat_seed(cfg.seed, a, r);
            let lone = match arm {
                Arm::Standalone => Model::new(standalone_spec(&base.spec), seed).unwrap(),
                Arm::Transfer(t) => {
                    adapt(&base, t, train.n_features, train.n_classes, seed).unwrap()
                }
            };
            fit(&lone, &train, None, &cfg.fit, &[seed]).unwrap();
            let score = evaluate(&lone, &test, cfg.fit.batch_size, cfg.fit.loss).unwrap()[0];
            assert_eq!(
                fast[a].scores[r].to_bits(),
                f64::from(score.accuracy).to_bits(),
                "arm {a} repeat {r}: compare {} against a lone fit {}",
                fast[a].scores[r],
                score.accuracy
            );
        }
    }
}

#[test]
fn welch_and_summaries_match_scipy_and_numpy() {
    use keras_transfer::experiment::stats::{Summary, welch};
    let cases = read_json(&fixture("stats/welch.json"));
    let f = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Vec<f64>>()
    };
    for c in cases.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (f(&c["a"]), f(&c["b"]));
        let close = |x: f64, y: f64, what: &str| {
            assert!(
                (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                "{name} {what}: {x} vs scipy/numpy {y}"
            )
        };
        let w = welch(&a, &b).unwrap();
        close(w.diff, c["mean_diff"].as_f64().unwrap(), "mean difference");
        close(w.t, c["t"].as_f64().unwrap(), "t");
        close(w.df, c["df"].as_f64().unwrap(), "df");
        assert!(
            (w.p - c["p"].as_f64().unwrap()).abs() <= 1e-9,
            "{name} p: {} vs {}",
            w.p,
            c["p"]
        );
        let ci = f(&c["ci95"]);
        assert!(
            (w.ci95.0 - ci[0]).abs() <= 1e-7 && (w.ci95.1 - ci[1]).abs() <= 1e-7,
            "{name} ci {:?} vs {ci:?}",
            w.ci95
        );
        for (side, s) in [("a", Summary::of(&a)), ("b", Summary::of(&b))] {
            close(s.mean, c[format!("{side}_mean")].as_f64().unwrap(), "mean");
            close(
                s.std,
                c[format!("{side}_std")].as_f64().unwrap(),
                "population std",
            );
            close(
                s.median,
                c[format!("{side}_median")].as_f64().unwrap(),
                "median",
            );
        }
    }
}

#[test]
fn finetune_no_shuffle_tracks_keras_from_a_keras_made_model() {
    let dir = tempdir();
    let d = dir.path();
    let model = fixture("keras_finetune/model.h5");
    for freeze in 0..3 {
        let case = read_json(&fixture(&format!(
            "keras_finetune/freeze{freeze}/case.json"
        )));
        let out = run(
            d,
            &[
                "finetune",
                "--from",
                model.to_str().unwrap(),
                "--problem",
                "2",
                "--freeze",
                &freeze.to_string(),
                "--no-shuffle",
                "--epochs",
                "100",
                "--out",
                "ft.h5",
                "--history",
                "h.csv",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = load_h5(&d.join("ft.h5")).unwrap();
        let diff = weights_diff(&got.weights, &json_weights(&case["final"]));
        assert!(
            diff <= 1e-5,
            "freeze {freeze}: weights differ from Keras by {diff}"
        );
        let trainable: Vec<bool> = got.spec.layers.iter().map(|l| l.trainable()).collect();
        assert_eq!(
            trainable,
            (0..3).map(|i| i >= freeze).collect::<Vec<_>>(),
            "saved trainable flags"
        );
        let (_, hist) = read_csv_f64(&d.join("h.csv"));
        let loss: Vec<f32> = hist.iter().map(|r| r[2] as f32).collect();
        let dl = max_abs_diff(&loss, &f32s(&case["history"]["loss"]));
        assert!(
            dl <= 1e-5,
            "freeze {freeze}: loss history differs from Keras by {dl}"
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let want = format!(
            "Train: {:.3}, Test: {:.3}",
            case["evaluate"]["train"][1].as_f64().unwrap(),
            case["evaluate"]["test"][1].as_f64().unwrap()
        );
        assert_eq!(line.trim(), want, "freeze {freeze}");
    }
}
