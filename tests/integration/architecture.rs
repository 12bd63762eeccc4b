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

// ---- No cycles between files -------------------------------------------------------------------
//
// Every `crate::...` and `super::...` path in a file (comments included, groups `{a, b::c}` expanded)
// is resolved to the file that defines its item: module files are walked segment by segment, and a
// name a module re-exports (`pub use spec::{FloatDtype, ...}` in `model/mod.rs`) is followed to the
// file it comes from. A `super::` path that names nothing outside the file (`use super::*` in a test
// module) is the file itself. The files then form a graph that must have no cycle, of any length.

use std::collections::{BTreeMap, BTreeSet};

/// A file's module path (`model/ops.rs` -> `[model, ops]`, `model/mod.rs` -> `[model]`).
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file of module `path`, when there is one.
fn module_file(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    if path.is_empty() {
        return Some("lib.rs".to_string());
    }
    let base = path.join("/");
    [format!("{base}.rs"), format!("{base}/mod.rs")]
        .into_iter()
        .find(|f| files.contains_key(f))
}

/// The paths starting at each `prefix` (`crate::` or `super::`) in `text`, groups expanded, as
/// segments after the prefix.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `foo::super::` or `xcrate::`
        }
        expand(rest, Vec::new(), &mut out);
    }
    out
}

/// Expands the path at the start of `s` (after a `::`) onto `head`.
fn expand(s: &str, mut head: Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        // Split the group at its top-level commas.
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&inner[start..i], head.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], head.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    // `@` joins a re-export's name to its alias (`D as E` is read as `D@E`).
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '*' | '@'))
        .collect();
    if name.is_empty() {
        if !head.is_empty() {
            out.push(head);
        }
        return;
    }
    let after = &s[name.len()..];
    if name != "self" {
        head.push(name);
    }
    match after.strip_prefix("::") {
        Some(more) => expand(more, head, out),
        None => out.push(head),
    }
}

/// The names module file `file` re-exports (`pub use x::{A, B as C}`), each with the absolute path
/// of what it names.
fn reexports(file: &str, text: &str) -> BTreeMap<String, Vec<String>> {
    let here = module_path(file);
    let mut out = BTreeMap::new();
    for stmt in text.split(';') {
        let stmt = stmt.trim();
        // The statement starts at a line beginning with `pub use` (comments and items before it
        // end at an earlier `;` or line).
        let Some(body) = stmt.lines().enumerate().find_map(|(i, l)| {
            let l = l.trim_start();
            ["pub use ", "pub(crate) use "].iter().find_map(|p| {
                l.strip_prefix(p)
                    .map(|_| stmt.lines().skip(i).collect::<Vec<_>>().join(" "))
            })
        }) else {
            continue;
        };
        let body = body.trim_start();
        let body = body
            .strip_prefix("pub use ")
            .or_else(|| body.strip_prefix("pub(crate) use "))
            .unwrap_or(body);
        let mut paths = Vec::new();
        expand(&body.replace(" as ", "@"), Vec::new(), &mut paths);
        for p in paths {
            let (Some(first), Some(last)) = (p.first(), p.last()) else {
                continue;
            };
            let mut abs = match first.as_str() {
                "crate" => Vec::new(),
                "super" => here[..here.len().saturating_sub(1)].to_vec(),
                _ => here.clone(),
            };
            let skip = usize::from(first == "crate" || first == "super");
            abs.extend(
                p[skip..]
                    .iter()
                    .map(|s| s.split('@').next().unwrap().to_string()),
            );
            let alias = last.rsplit('@').next().unwrap().to_string();
            out.insert(alias, abs);
        }
    }
    out
}

/// The file defining the item at absolute path `path`, following re-exports (at most `depth` hops).
fn defining_file(
    files: &BTreeMap<String, String>,
    path: &[String],
    depth: usize,
) -> Option<String> {
    // The longest prefix that is a module with a file of its own.
    let mut k = path.len();
    let file = loop {
        if let Some(f) = module_file(files, &path[..k]) {
            break f;
        }
        if k == 0 {
            return None;
        }
        k -= 1;
    };
    let Some(item) = path.get(k) else {
        return Some(file);
    };
    if depth > 0
        && let Some(target) = reexports(&file, &files[&file]).get(item)
    {
        let mut full = target.clone();
        full.extend_from_slice(&path[k + 1..]);
        return defining_file(files, &full, depth - 1).or(Some(file));
    }
    Some(file)
}

/// Each file's dependencies on other files (re-export lines of a module file are not uses).
fn file_graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (f, text) in files {
        let here = module_path(f);
        let reexported = reexports(f, text);
        let mut deps = BTreeSet::new();
        for p in paths_after(text, "crate::") {
            if let Some(d) = defining_file(files, &p, 8) {
                deps.insert(d);
            }
        }
        let parent = here[..here.len().saturating_sub(1)].to_vec();
        for p in paths_after(text, "super::") {
            let is_mod = f.ends_with("mod.rs");
            if is_mod || p.first().is_none_or(|s| s == "*" || s == "super") {
                continue;
            }
            let sibling = module_file(files, &[parent.clone(), vec![p[0].clone()]].concat());
            let via_parent = module_file(files, &parent)
                .and_then(|pf| reexports(&pf, &files[&pf]).get(&p[0]).cloned());
            let mut full = parent.clone();
            full.extend(p.iter().cloned());
            if (sibling.is_some() || via_parent.is_some())
                && let Some(d) = defining_file(files, &full, 8)
            {
                deps.insert(d);
            }
        }
        if f.ends_with("mod.rs") || f == "lib.rs" {
            // A module file's `pub use` lines pass names through; they are not uses of their own.
            let passed: BTreeSet<String> = reexported
                .values()
                .filter_map(|p| defining_file(files, p, 8))
                .collect();
            deps.retain(|d| !passed.contains(d));
        }
        deps.remove(f);
        graph.insert(f.clone(), deps);
    }
    graph
}

/// A cycle in `graph`, as the files around it, when there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut marks, &mut Vec::new()))
}

/// The library's files (not the binary's), by path under `src/`.
fn library_files() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .filter(|(rel, _)| rel != "main.rs" && !rel.starts_with("cli/"))
        .collect()
}

#[test]
fn no_two_files_import_each_other_by_any_path() {
    let files = library_files();
    let graph = file_graph(&files);
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 50,
        "too few dependencies found: {graph:?}"
    );
    // Every cycle found, each broken at its last edge to look for the next (at most 50).
    let mut g = graph.clone();
    let mut cycles = Vec::new();
    while let Some(cycle) = find_cycle(&g).filter(|_| cycles.len() < 50) {
        let (a, b) = (&cycle[cycle.len() - 2], &cycle[cycle.len() - 1]);
        g.get_mut(a).unwrap().remove(b);
        cycles.push(cycle.join(" -> "));
    }
    assert!(
        cycles.is_empty(),
        "cycles between files:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_cycle_check_sees_through_super_paths_groups_and_reexports() {
    let files = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // Three files around a loop: a via a re-export of its parent, b via `super::`, c via a group.
    let looped = files(&[
        ("lib.rs", "pub mod m;"),
        (
            "m/mod.rs",
            "pub mod a; pub mod b; pub mod c;\npub use a::A;\npub use c::{C, D as E};",
        ),
        ("m/a.rs", "use super::b::B;\npub struct A;"),
        ("m/b.rs", "use crate::m::{x::y, E};\npub struct B;"),
        (
            "m/c.rs",
            "//! docs\nuse crate::m::A;\npub struct C; pub struct D;",
        ),
    ]);
    let g = file_graph(&looped);
    assert_eq!(g["m/a.rs"], BTreeSet::from(["m/b.rs".to_string()]));
    assert!(g["m/b.rs"].contains("m/c.rs"), "{g:?}");
    assert_eq!(g["m/c.rs"], BTreeSet::from(["m/a.rs".to_string()]));
    let cycle = find_cycle(&g).expect("the loop a -> b -> c -> a");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    // The same files without c's use of A: no cycle, and a test module's `use super::*` is no edge.
    let open = files(&[
        ("lib.rs", "pub mod m;"),
        (
            "m/mod.rs",
            "pub mod a; pub mod b; pub mod c;\npub use a::A;\npub use c::{C, D as E};",
        ),
        ("m/a.rs", "use super::b::B;\npub struct A;"),
        ("m/b.rs", "use crate::m::E;\npub struct B;"),
        (
            "m/c.rs",
            "pub struct C; pub struct D;\nmod tests { use super::*; }",
        ),
    ]);
    assert_eq!(find_cycle(&file_graph(&open)), None);
}
