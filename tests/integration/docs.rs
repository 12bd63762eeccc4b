//! The docs stay honest: every repository path that `README.md` and `docs/*.md` name exists, and
//! every `cargo bench --bench X` / `--example X` they name is a bench or example of this package.

use crate::common::rust_files;
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
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
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

/// Fails unless the scan found more than `at_least` `what` (else the scanner is broken) and none of
/// them is `missing`.
fn assert_none_missing(what: &str, seen: usize, at_least: usize, missing: &[String]) {
    assert!(
        seen > at_least,
        "only {seen} {what} found in the docs: the scanner is broken"
    );
    assert!(
        missing.is_empty(),
        "the docs name {what} that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_path_scanner_finds_paths_and_skips_foreign_ones() {
    let text = "see `src/model/wide.rs`, tests/integration/ and (fixtures/blobs/odd_cache). \
                Keras's keras/src/optimizers/base_optimizer.py is not ours; fixtures/<concern>/<case> is a pattern.";
    assert_eq!(
        repo_paths(text),
        [
            "src/model/wide.rs",
            "tests/integration/",
            "fixtures/blobs/odd_cache"
        ]
    );
    assert_eq!(
        named_after(
            "cargo bench --bench scale -- --data DIR; --bench compare`",
            "--bench "
        ),
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
    assert_none_missing("paths", seen, 20, &missing);
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
    assert_none_missing("benches and examples", seen, 3, &missing);
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_` kept, spaces made `-`,
/// everything else dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings (outside fenced code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut v = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            v.push(anchor(line.trim_start_matches('#')));
        }
    }
    v
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            rest.find(')').map(|end| rest[..end].to_string())
        })
        .collect()
}

#[test]
fn the_anchor_and_link_helpers_work() {
    assert_eq!(
        anchor(" Compile settings: optimizers, losses, regularisers, fit options"),
        "compile-settings-optimizers-losses-regularisers-fit-options"
    );
    assert_eq!(anchor(" At the user's scale"), "at-the-users-scale");
    assert_eq!(
        anchors("# A\n```sh\n# not a heading\n```\n## B c\n"),
        ["a", "b-c"]
    );
    assert_eq!(
        link_targets("see [x](docs/a.md#b) and [y](#c)."),
        ["docs/a.md#b", "#c"]
    );
}

/// Every link from the README or a doc to a local file names a file that exists, and every `#anchor`
/// names a heading of its page.
#[test]
fn every_link_between_the_docs_resolves() {
    let mut broken = Vec::new();
    for (name, text) in doc_files() {
        let here = repo().join(&name);
        let folder = here.parent().unwrap();
        for target in link_targets(&text) {
            if target.contains("://") {
                continue;
            }
            let (file, frag) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let page = if file.is_empty() {
                here.clone()
            } else {
                folder.join(file)
            };
            if !page.exists() {
                broken.push(format!("{name}: {target} (no such file)"));
                continue;
            }
            if !frag.is_empty() && page.extension().is_some_and(|e| e == "md") {
                let page_text = std::fs::read_to_string(&page).unwrap();
                if !anchors(&page_text).iter().any(|a| a == frag) {
                    broken.push(format!("{name}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links in the docs:\n{}",
        broken.join("\n")
    );
}

/// The test-name filters of the `cargo test` commands in `text` (`cargo test --release --lib
/// wide_timing -- --ignored` gives `wide_timing`); upper-case placeholders such as `FILTER` are left out.
fn test_filters(text: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (i, _) in text.match_indices("cargo test") {
        let rest = &text[i + "cargo test".len()..];
        let end = rest.find(['`', '\n', ';', ')', '&']).unwrap_or(rest.len());
        let mut words = rest[..end].split_whitespace();
        while let Some(w) = words.next() {
            match w {
                "--" => break,
                "--test" | "--bench" | "--example" | "-p" | "--package" => {
                    words.next();
                }
                w if w.starts_with('-') => {}
                w if w.chars().all(|c| c.is_ascii_uppercase()) => {}
                w => v.push(w.to_string()),
            }
        }
    }
    v
}

#[test]
fn every_cargo_test_filter_the_docs_name_matches_a_test() {
    assert_eq!(
        test_filters(
            "`cargo test --release --lib wide_timing -- --ignored`, `cargo test keras_compile`; cargo test --release --test integration FILTER"
        ),
        ["wide_timing", "keras_compile"]
    );
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    rust_files(&repo().join("tests"), &mut files);
    // The names of every function and module, as `cargo test` matches a filter against them.
    let mut names = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for key in ["fn ", "mod "] {
            for (i, _) in text.match_indices(key) {
                let rest = &text[i + key.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                names.push(rest[..end].to_string());
            }
        }
    }
    let mut missing = Vec::new();
    for (name, text) in doc_files() {
        for filter in test_filters(&text) {
            if !names.iter().any(|n| n.contains(&filter)) {
                missing.push(format!("{name}: cargo test {filter}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name test filters that match no test:\n{}",
        missing.join("\n")
    );
}
