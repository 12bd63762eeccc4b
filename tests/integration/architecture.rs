//! The module graph runs one way: every `crate::` path in a library module names a module listed
//! before it in `ORDER` (or itself), so nothing reaches back up the chain; the library knows nothing
//! of clap; and the binary uses the library only through its public API.

use crate::common::rust_files;
use std::path::Path;

/// The library's top-level modules, lowest first (see the crate docs in `src/lib.rs`).
const ORDER: &[&str] = &[
    "error",
    "fsutil",
    "rng",
    "data",
    "model",
    "train",
    "keras",
    "checkpoint",
    "experiment",
    "plot",
    "report",
    "study",
];

/// The top-level module a file under `src/` belongs to (`src/model/ops.rs` -> `model`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every module named right after `crate::` in the text (comments included: a doc link up the
/// chain is a dependency too).
fn crate_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            refs.push(name);
        }
    }
    refs
}

#[test]
fn no_library_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    for f in &files {
        let m = module_of(&src, f);
        if matches!(m.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        let rank = ORDER
            .iter()
            .position(|o| *o == m)
            .unwrap_or_else(|| panic!("{}: module '{m}' is not in ORDER", f.display()));
        let text = std::fs::read_to_string(f).unwrap();
        for r in crate_refs(&text) {
            let target = ORDER
                .iter()
                .position(|o| *o == r)
                .unwrap_or_else(|| panic!("{}: crate::{r} is not a known module", f.display()));
            assert!(
                target <= rank,
                "{} (module {m}) refers to crate::{r}, which stands above it",
                f.display()
            );
        }
        assert!(
            !text.contains("clap"),
            "{}: the library must not know clap",
            f.display()
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} library files found");
}

#[test]
fn the_binary_uses_only_its_own_modules_and_the_library() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("main.rs")];
    rust_files(&src.join("cli"), &mut files);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for r in crate_refs(&text) {
            assert_eq!(r, "cli", "{}: crate::{r} in the binary", f.display());
        }
    }
}

#[test]
fn the_rank_check_catches_a_back_edge() {
    // The checker itself must be able to fail: a model file naming crate::study is caught.
    let refs = crate_refs("use crate::study::run_study; // and crate::model::Model");
    assert_eq!(refs, vec!["study", "model"]);
    let rank = |m: &str| ORDER.iter().position(|o| *o == m).unwrap();
    assert!(rank("study") > rank("model"));
}
