//! The docs stay honest: every repository path that `README.md` and `docs/*.md` name exists, and
//! every `cargo bench --bench X` / `--example X` they name is a bench or example of this package.

use std::path::{Path, PathBuf};

/// The folders a repository path in the docs starts with.
const ROOTS: [&str; 9] = [
    "src/",
    "tests/",
    "python-check/",
    "fixtures/",
    "benches/",
    "examples/",
    "docs/",
    "assets/",
    ".ci/",
];

/// Paths the docs may name that are made by running something, not kept in the repository.
const GENERATED: [&str; 1] = ["python-check/.venv"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md` and every `docs/*.md`, as (name, text).
fn doc_files() -> Vec<(String, String)> {
    let mut names = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let name = p.strip_prefix(repo()).unwrap().display().to_string();
            (name, text)
        })
        .collect()
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./-".contains(c)
}

/// Every repository path in `text`: a word starting with one of [`ROOTS`] (not inside a longer path
/// such as `keras/src/...`), up to the first character a path does not hold, without a trailing `.`.
/// A path with a placeholder (`fixtures/<concern>/...`) is left out.
fn repo_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.char_indices() {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| path_char(c) || c == '<') {
            continue;
        }
        let rest = &text[i..];
        if !ROOTS.iter().any(|r| rest.starts_with(r)) {
            continue;
        }
        let end = rest.find(|c: char| !path_char(c)).unwrap_or(rest.len());
        if rest[end..].starts_with('<') {
            continue;
        }
        let path = rest[..end].trim_end_matches('.');
        found.push(path.to_string());
    }
    found
}

/// The names after `flag ` in `text` (`--bench compare` gives `compare`).
fn named_after(text: &str, flag: &str) -> Vec<String> {
    text.match_indices(flag)
        .map(|(i, _)| {
            let rest = &text[i + flag.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}

#[test]
fn the_path_scanner_finds_paths_and_skips_foreign_ones() {
    let text = "see `src/model/wide.rs`, tests/integration/ and (fixtures/blobs/odd_cache). \
                Keras's keras/src/optimizers/base_optimizer.py is not ours; fixtures/<concern>/<case> is a pattern.";
    assert_eq!(
        repo_paths(text),
        ["src/model/wide.rs", "tests/integration/", "fixtures/blobs/odd_cache"]
    );
    assert_eq!(
        named_after("cargo bench --bench scale -- --data DIR; --bench compare`", "--bench "),
        ["scale", "compare"]
    );
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    let mut seen = 0;
    for (name, text) in doc_files() {
        for path in repo_paths(&text) {
            seen += 1;
            if GENERATED.contains(&path.as_str()) {
                continue;
            }
            if !repo().join(&path).exists() {
                missing.push(format!("{name}: {path}"));
            }
        }
    }
    assert!(seen > 20, "only {seen} paths found in the docs: the scanner is broken");
    assert!(missing.is_empty(), "the docs name paths that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn every_bench_and_example_the_docs_name_exists() {
    let mut missing = Vec::new();
    let mut seen = 0;
    for (name, text) in doc_files() {
        for (flag, folder) in [("--bench ", "benches"), ("--example ", "examples")] {
            for target in named_after(&text, flag) {
                seen += 1;
                if !repo().join(folder).join(format!("{target}.rs")).is_file() {
                    missing.push(format!("{name}: {flag}{target} (no {folder}/{target}.rs)"));
                }
            }
        }
    }
    assert!(seen > 3, "only {seen} benches and examples found in the docs: the scanner is broken");
    assert!(missing.is_empty(), "the docs name targets that do not exist:\n{}", missing.join("\n"));
}
