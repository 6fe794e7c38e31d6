//! The workspace's shape, checked from its sources: no crate's modules import each other in a
//! circle, no source file grows past about 800 lines, and nothing outside `problem/` names the
//! arithmetic domain but tests (a second domain is one more module of `problem`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

/// The workspace's crates, by directory.
const CRATES: &[&str] = &[
    ".",
    "lab",
    "problem",
    "policy",
    "proposer",
    "solver",
    "judge",
    "scorers",
    "curriculum",
    "store",
    "bench",
    "workers",
];
const MAX_LINES: usize = 800;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's module path inside its crate: `src/commands/archive.rs` is `commands::archive`,
/// `src/round/mod.rs` is `round`, `src/lib.rs` is the root (empty).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without its comments and its trailing `#[cfg(test)]` module (whose
/// `super` is the file itself).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The module paths a file's code names with `crate::` and `super::`, as written.
fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (prefix, base) in
        [("crate::", Vec::new()), ("super::", module[..module.len().saturating_sub(1)].to_vec())]
    {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            // `self::super::` and `foo_crate::` are not what we look for.
            let before = rest[..i].chars().next_back();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut path = base.clone();
            let mut tail = rest;
            loop {
                let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(tail.len());
                if end == 0 {
                    break;
                }
                path.push(tail[..end].to_string());
                tail = &tail[end..];
                match tail.strip_prefix("::") {
                    Some(t) => tail = t,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn no_crate_has_a_module_import_cycle() {
    let mut cycles = Vec::new();
    for krate in CRATES {
        let src = root().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(!files.is_empty(), "no sources in {}", src.display());
        let modules: BTreeMap<Vec<String>, PathBuf> =
            files.iter().map(|f| (module_of(&src, f), f.clone())).collect();
        let mut graph = DiGraph::<Vec<String>, ()>::new();
        let nodes: BTreeMap<Vec<String>, _> =
            modules.keys().map(|m| (m.clone(), graph.add_node(m.clone()))).collect();
        let mut edges = BTreeSet::new();
        for (module, file) in &modules {
            let text = std::fs::read_to_string(file).unwrap();
            for path in named_paths(&code(&text), module) {
                // The longest prefix of the path that is a module of the crate.
                let Some(target) =
                    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p))
                else {
                    continue;
                };
                // A module and its own submodules are one unit: phases written as `impl` blocks
                // of their parent's type name it, and it names them.
                if target.starts_with(module) || module.starts_with(&target) {
                    continue;
                }
                edges.insert((module.clone(), target));
            }
        }
        for (a, b) in &edges {
            graph.add_edge(nodes[a], nodes[b], ());
        }
        for scc in tarjan_scc(&graph) {
            if scc.len() > 1 {
                let names: Vec<String> =
                    scc.iter().map(|n| format!("{krate}::{}", graph[*n].join("::"))).collect();
                cycles.push(names.join(" ↔ "));
            }
        }
    }
    assert!(cycles.is_empty(), "modules that import each other in a circle:\n{}", cycles.join("\n"));
}

#[test]
fn no_source_file_is_longer_than_about_800_lines() {
    let mut files = Vec::new();
    for dir in CRATES
        .iter()
        .map(|c| root().join(c).join("src"))
        .chain([root().join("tests"), root().join("examples")])
    {
        rust_files(&dir, &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by idea: {long:?}");
}

#[test]
fn only_the_problem_crate_names_the_arithmetic_domain_outside_tests() {
    let mut files = Vec::new();
    for krate in CRATES.iter().filter(|c| **c != "problem") {
        rust_files(&root().join(krate).join("src"), &mut files);
    }
    let naming: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let code = code(&text);
            code.contains("Arith") || code.contains("arith::")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        naming.is_empty(),
        "choose the domain through problem::domain_by_name or the configuration: {naming:?}"
    );
}

#[test]
fn the_module_paths_are_read_as_written() {
    // The parsing the checks rely on, on code written to fail them.
    let module = vec!["commands".to_string(), "archive".to_string()];
    let code = code("use crate::browse::App;\nuse super::open_input;\n// crate::report is a comment\nlet x = my_crate::y;\n#[cfg(test)]\nmod tests { use super::*; }");
    let paths = named_paths(&code, &module);
    assert_eq!(
        paths,
        vec![vec!["browse".to_string(), "App".into()], vec!["commands".to_string(), "open_input".into()]]
    );
}
