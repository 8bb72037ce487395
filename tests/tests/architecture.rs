//! The rules of docs/architecture.md, checked on the source tree:
//!
//! - which Stele crate may depend on which (read from each Cargo.toml's
//!   `[dependencies]`: dev-dependencies may reach further);
//! - no import cycle between the modules of a crate: a module may use its
//!   ancestors' items (a private submodule is part of its parent), but two
//!   modules that are not ancestor and descendant must not use each other,
//!   directly or through others;
//! - no source file over 700 lines of code before its unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The library crates and their source roots (binaries aside).
const CRATES: [(&str, &str); 5] = [
    ("stele-tiles", "tiles/src"),
    ("stele-rekor", "rekor/src"),
    ("stele-sequencer", "sequencer/src"),
    ("stele-lambda", "sequencer/lambda/src"),
    ("stele-verifier", "verifier/src"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `a::b` for `a/b.rs` or `a/b/mod.rs`, empty
/// for the crate root.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).expect("under the root");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file before its inline unit tests (`mod tests {`; a
/// `mod tests;` in a file of its own is not cut), comments removed.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path segments (lowercase names) at the start of `text`.
fn segments(text: &str) -> Vec<String> {
    let mut path = Vec::new();
    for segment in text.split("::") {
        let name: String = segment
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        let whole = segment.len() == name.len();
        path.push(name);
        if !whole {
            break;
        }
    }
    path
}

/// Every `crate::a::b::...` and `super::...` path in `code`, as module
/// paths from the crate root; a group (`crate::{a::x, b}`) gives a path
/// for each of its members.
fn references(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let mut path = base.clone();
            path.extend(segments(rest));
            // What follows the path: a group of members, or nothing more.
            let after = rest
                .split("::")
                .nth(path.len() - base.len())
                .filter(|next| next.starts_with('{'));
            match after {
                Some(_) => {
                    let group_at = rest.find('{').unwrap_or(0);
                    let group = &rest[group_at + 1..];
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for member in group.split(',') {
                        let mut member_path = path.clone();
                        member_path.extend(segments(member.trim()));
                        found.push(member_path);
                    }
                }
                None => found.push(path),
            }
        }
    }
    found
}

#[test]
fn crates_depend_only_as_the_architecture_allows() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("tiles", &[][..]),
        ("rekor", &["stele-tiles"][..]),
        ("sequencer", &["stele-tiles", "stele-rekor"][..]),
        ("sequencer/lambda", &["stele-tiles", "stele-rekor"][..]),
        ("verifier", &["stele-tiles", "stele-rekor"][..]),
    ]);
    for (dir, allowed) in allowed {
        let manifest =
            std::fs::read_to_string(repo().join(dir).join("Cargo.toml")).expect("a manifest");
        let mut section = "";
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line;
                continue;
            }
            if section != "[dependencies]" {
                continue;
            }
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            if name.starts_with("stele-") {
                assert!(
                    allowed.contains(&name),
                    "{dir} depends on {name}; docs/architecture.md allows only {allowed:?}"
                );
            }
        }
    }
}

#[test]
fn no_import_cycles_and_no_long_files() {
    let mut long = Vec::new();
    for (name, src) in CRATES {
        let root = repo().join(src);
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut modules: BTreeMap<Vec<String>, PathBuf> = BTreeMap::new();
        for file in &files {
            modules.insert(module_of(&root, file), file.clone());
        }
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (module, file) in &modules {
            let text = std::fs::read_to_string(file).expect("a source file");
            let code = code(&text);
            let is_tests = file.file_name().is_some_and(|name| name == "tests.rs");
            let lines = code.lines().count();
            if lines > MAX_LINES && !is_tests {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
            if is_tests {
                continue;
            }
            for path in references(module, &code) {
                // The longest prefix that is a module of this crate.
                let target = (1..=path.len())
                    .rev()
                    .map(|len| path[..len].to_vec())
                    .find(|prefix| modules.contains_key(prefix));
                let Some(target) = target else { continue };
                // Using an ancestor's (or one's own) items is not an edge.
                if module.starts_with(&target) {
                    continue;
                }
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
        // Depth-first search for a cycle.
        fn visit(
            node: &Vec<String>,
            edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
            state: &mut BTreeMap<Vec<String>, bool>,
            stack: &mut Vec<Vec<String>>,
        ) -> Option<Vec<Vec<String>>> {
            match state.get(node) {
                Some(true) => return None,
                Some(false) => {
                    let start = stack.iter().position(|n| n == node).unwrap_or(0);
                    return Some(stack[start..].to_vec());
                }
                None => {}
            }
            state.insert(node.clone(), false);
            stack.push(node.clone());
            for next in edges.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(next, edges, state, stack) {
                    return Some(cycle);
                }
            }
            stack.pop();
            state.insert(node.clone(), true);
            None
        }
        let mut state = BTreeMap::new();
        for module in modules.keys() {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(module, &edges, &mut state, &mut stack) {
                let names: Vec<String> = cycle
                    .iter()
                    .map(|m| format!("crate::{}", m.join("::")))
                    .collect();
                panic!("{name}: import cycle {}", names.join(" -> "));
            }
        }
        assert!(modules.len() > 1, "{name}: no modules found under {src}");
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines of code: {long:?}"
    );
}

/// The checks find what they look for: a cycle and an allowed ancestor use.
#[test]
fn references_resolve_crate_and_super_paths() {
    let module = vec!["api".to_owned(), "route".to_owned()];
    let text = "use crate::published::{read_tile, CHECKPOINT_KEY};\n\
                use crate::{log::Log, storage};\n\
                use super::Api; let x = super::body::read_limited(); a_crate::x::y();";
    let owned = |path: &[&str]| path.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        references(&module, text),
        vec![
            owned(&["published", "read_tile"]),
            owned(&["published"]),
            owned(&["log"]),
            owned(&["storage"]),
            owned(&["api"]),
            owned(&["api", "body", "read_limited"]),
        ]
    );
    let file = "mod a;\n#[cfg(test)]\nmod tests;\nuse crate::x;\n#[cfg(test)]\nmod tests {\n use crate::y;\n}";
    assert!(code(file).contains("crate::x") && !code(file).contains("crate::y"));
}
