//! The simulator's world is the one thing its parts plug into: the world imports the parts
//! (hosts, mesh, workload, Codios, faults, checkers...), never the other way round, so a part
//! can be read and changed alone. This test keeps it so, for `sim/src` and for `core/src`: the
//! graph of which top-level module imports which has no circle.
//!
//! A node is a top-level module: `src/mesh.rs` is `mesh`, and a directory module with all its
//! submodules is one node (`src/world/heap.rs` is `world`). `lib.rs` and `main.rs` are the root,
//! which may import anything, and are left out. An edge is any `crate::<module>` in code (a
//! `use`, grouped `use crate::{a, b::c}` included, or a path in an expression), and a
//! `super::` path that climbs to the crate root; comment lines are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module → the modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`.
fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path under `src`: `mesh.rs` → `[mesh]`, `world/mod.rs` → `[world]`,
/// `world/heap.rs` → `[world, heap]`, `lib.rs` and `main.rs` → `[]` (the root).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    let at_top = parts.is_empty();
    if !(stem == "mod" || (at_top && (stem == "lib" || stem == "main"))) {
        parts.push(stem.to_string());
    }
    parts
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The leading identifier of `s` (after whitespace), if any.
fn ident(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let end = s.find(|c: char| !ident_char(c)).unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The first segment of every path in a `{...}` group that opens `s`: `{a, b::{c, d}, e}` →
/// `a, b, e`.
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                item_start = depth == 1;
                continue;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                item_start = true;
                continue;
            }
            _ => {}
        }
        if depth == 1 && item_start && !c.is_whitespace() {
            item_start = false;
            if let Some(id) = ident(&s[i..]) {
                heads.push(id.to_string());
            }
        }
    }
    heads
}

/// The top-level modules `code` (a file at module path `me`) names: after `crate::`, and
/// after a run of `super::` that climbs to the root.
fn imported(code: &str, me: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut heads = |rest: &str| {
        let rest = rest.trim_start();
        if rest.starts_with('{') {
            out.extend(group_heads(rest));
        } else if let Some(id) = ident(rest) {
            out.insert(id.to_string());
        }
    };
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(ident_char) {
            continue; // `sapix_crate::`: another name that ends in "crate".
        }
        heads(&code[i + "crate::".len()..]);
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with(ident_char) || code[..i].ends_with("::") {
            continue; // Not the start of a path, or a later `super::` of the same run.
        }
        let mut rest = &code[i..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r.trim_start();
        }
        // Only a climb to the root leaves this file's node. (An inline `mod tests` counts one
        // level too few; its `super::*` names nothing, and its `super::Item` is no module.)
        if climbs >= me.len() {
            heads(rest);
        }
    }
    out
}

/// Code without its comment lines (doc comments name modules without importing them).
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The import graph of the crate whose sources are in `src`.
fn graph_of(src: &Path) -> Graph {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    files.sort();
    let paths: Vec<(PathBuf, Vec<String>)> = files
        .into_iter()
        .map(|f| {
            let p = module_path(src, &f);
            (f, p)
        })
        .collect();
    let nodes: BTreeSet<String> = paths
        .iter()
        .filter_map(|(_, p)| p.first().cloned())
        .collect();
    let mut graph: Graph = nodes.iter().map(|n| (n.clone(), BTreeSet::new())).collect();
    for (file, path) in &paths {
        let Some(node) = path.first() else {
            continue; // The root may import anything.
        };
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let to: Vec<String> = imported(&code_of(&text), path)
            .into_iter()
            .filter(|m| m != node && nodes.contains(m))
            .collect();
        graph.get_mut(node).expect("a node").extend(to);
    }
    graph
}

/// A circle in `graph`, as the modules along it (the first repeated at the end), if any.
fn circle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        n: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match marks.get(m.as_str()) {
                Some(Mark::Open) => {
                    let from = stack.iter().position(|s| s == m).expect("on the stack");
                    let mut c = stack[from..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(m, graph, marks, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in graph.keys() {
        if !marks.contains_key(n) {
            if let Some(c) = visit(n, graph, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The graph, one line per module.
fn edges(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(n, to)| {
            format!(
                "  {n} -> {}",
                to.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The import graph of `src`, which must have no circle.
fn assert_no_circle(src: &Path) -> Graph {
    let graph = graph_of(src);
    if let Some(c) = circle(&graph) {
        panic!(
            "the modules of {} import each other in a circle: {}\nthe graph:\n{}",
            src.display(),
            c.join(" -> "),
            edges(&graph)
        );
    }
    graph
}

#[test]
fn the_simulators_modules_form_no_circle() {
    let graph = assert_no_circle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The world imports the parts: a scanner that saw nothing would pass vacuously.
    for part in ["host", "mesh", "workload", "codios", "faults", "checkers"] {
        assert!(graph["world"].contains(part), "world -> {part} not seen");
    }
}

#[test]
fn the_cores_modules_form_no_circle() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src");
    let graph = assert_no_circle(&core);
    assert!(
        graph.values().any(|to| !to.is_empty()),
        "no edges seen in core"
    );
}

#[test]
fn the_scanner_reads_groups_climbs_and_skips_comments() {
    let me = ["world".to_string(), "heap".to_string()];
    let code = code_of(
        "use crate::{\n    a::X,\n    b::{c, d::E},\n    f,\n};\n\
         let x = crate::g::h();\n\
         /// [`crate::doc_only`]\n\
         use super::super::{i, j::K};\n\
         use super::sibling::L;\n\
         let y = sapix_crate::m::N;",
    );
    let got: Vec<String> = imported(&code, &me).into_iter().collect();
    assert_eq!(got, ["a", "b", "f", "g", "i", "j"]);

    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .fold(Graph::new(), |mut g, (from, to)| {
            g.entry(from.into()).or_default().insert(to.into());
            g.entry(to.into()).or_default();
            g
        });
    assert_eq!(circle(&graph).expect("a circle"), ["a", "b", "c", "a"]);
}
