//! Words and tables of results: the tutorial's printed lines for a comparison, its JSON, and
//! Markdown tables for the study report.

use crate::experiment::compare::ArmScores;
use crate::experiment::stats::{Summary, Welch, welch};
use serde_json::{Value, json};

/// The tutorial's line, `Standalone 0.787 (0.101)`: the mean and population std of the scores.
pub fn tutorial_line(a: &ArmScores) -> String {
    let s = Summary::of(&a.scores);
    format!("{} {:.3} ({:.3})", a.arm.title(), s.mean, s.std)
}

/// Each transfer arm tested against the standalone arm, when there is one.
pub fn tests_against_standalone(results: &[ArmScores]) -> Vec<(String, Welch)> {
    let Some(base) = results
        .iter()
        .find(|r| r.arm == crate::experiment::compare::Arm::Standalone)
    else {
        return Vec::new();
    };
    results
        .iter()
        .filter(|r| r.arm != base.arm)
        .filter_map(|r| welch(&r.scores, &base.scores).map(|w| (r.arm.title(), w)))
        .collect()
}

/// All the lines `compare` prints: the tutorial's lines, then min/median/max, then the tests.
pub fn compare_lines(results: &[ArmScores]) -> Vec<String> {
    let mut lines: Vec<String> = results.iter().map(tutorial_line).collect();
    lines.push(String::new());
    let width = results
        .iter()
        .map(|r| r.arm.title().len())
        .max()
        .unwrap_or(0);
    lines.push(format!(
        "{:width$}  {:>5}  {:>6}  {:>5}",
        "", "min", "median", "max"
    ));
    for r in results {
        let s = Summary::of(&r.scores);
        lines.push(format!(
            "{:width$}  {:.3}  {:>6.3}  {:.3}",
            r.arm.title(),
            s.min,
            s.median,
            s.max
        ));
    }
    let tests = tests_against_standalone(results);
    if !tests.is_empty() {
        lines.push(String::new());
        for (title, w) in tests {
            lines.push(format!("{title} vs Standalone: {}", w.verdict()));
        }
    }
    lines
}

/// Every score and summary as JSON.
pub fn compare_json(results: &[ArmScores], meta: Value) -> Value {
    let arms: Vec<Value> = results
        .iter()
        .map(|r| {
            let s = Summary::of(&r.scores);
            json!({"title": r.arm.title(), "label": r.arm.label(), "scores": r.scores,
                   "mean": s.mean, "std": s.std, "min": s.min, "median": s.median, "max": s.max})
        })
        .collect();
    let tests: Vec<Value> = tests_against_standalone(results)
        .into_iter()
        .map(|(title, w)| json!({"arm": title, "against": "Standalone", "mean_difference": w.diff,
            "ci95": [w.ci95.0, w.ci95.1], "welch_t": w.t, "welch_df": w.df, "p_value": w.p, "verdict": w.verdict()}))
        .collect();
    json!({"meta": meta, "arms": arms, "tests": tests})
}

/// A Markdown table of the comparison: arm, mean (std), min, median, max, and the test against
/// standalone.
pub fn compare_markdown(results: &[ArmScores]) -> String {
    let tests = tests_against_standalone(results);
    let mut md = String::from(
        "| configuration | mean (std) | min | median | max | vs standalone |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        let s = Summary::of(&r.scores);
        let t = tests
            .iter()
            .find(|(title, _)| *title == r.arm.title())
            .map(|(_, w)| w.verdict())
            .unwrap_or_else(|| "-".into());
        md.push_str(&format!(
            "| {} | {:.3} ({:.3}) | {:.3} | {:.3} | {:.3} | {t} |\n",
            r.arm.title(),
            s.mean,
            s.std,
            s.min,
            s.median,
            s.max
        ));
    }
    md
}
