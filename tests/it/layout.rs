//! The shape of the code: no import circles between files. A file that
//! names another (`crate::a::b`, `super::x`, `self::y`, or a child module it
//! declares) depends on it; a circle of such dependencies fails, naming its
//! files. Test modules (`#[cfg(test)] mod tests`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

fn modules() -> BTreeMap<Module, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] {
                parts.clear();
            }
            out.insert(parts, std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The source without comments and without its test module.
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(at) => &src[..at],
        None => src,
    };
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths named in `code`, as written after `crate::`, `super::` or
/// `self::`, with group imports (`super::{a, b::c}`) spread out.
fn paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    for (at, _) in code.match_indices(prefix) {
        if code[..at].ends_with(|c: char| ident(c) || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let segs: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|s| s.trim().to_string())
                    .take_while(|s| !s.is_empty() && s.chars().all(ident))
                    .collect();
                out.push(segs);
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(ident(c) || c == ':'))
            .unwrap_or(rest.len());
        let segs = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        out.push(segs);
    }
    out
}

/// The longest prefix of `path` that is a file of the crate.
fn resolve(files: &BTreeMap<Module, String>, path: &[String]) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| files.contains_key(m))
}

fn graph(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges = BTreeMap::new();
    for (module, src) in files {
        let code = code(src);
        let parent = &module[..module.len().saturating_sub(1)];
        let mut named = Vec::new();
        for p in paths(&code, "crate::") {
            named.push(p);
        }
        for p in paths(&code, "super::") {
            named.push([parent, &p].concat());
        }
        for p in paths(&code, "self::") {
            named.push([&module[..], &p].concat());
        }
        // A module's own children, named without a prefix.
        for line in code.lines() {
            let decl = line.trim().trim_start_matches("pub(crate) ");
            let decl = decl
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ");
            if let Some(child) = decl.strip_prefix("mod ").and_then(|c| c.strip_suffix(';'))
                && code.contains(&format!("{child}::"))
            {
                named.push([&module[..], &[child.to_string()]].concat());
            }
        }
        let deps: BTreeSet<Module> = named
            .iter()
            .filter_map(|p| resolve(files, p))
            .filter(|m| m != module)
            .collect();
        edges.insert(module.clone(), deps);
    }
    edges
}

/// A circle through `start`, if any: depth-first search back to it.
fn circle_through(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    start: &Module,
) -> Option<Vec<Module>> {
    let mut stack = vec![(start.clone(), vec![start.clone()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                stack.push((
                    next.clone(),
                    [&path[..], std::slice::from_ref(next)].concat(),
                ));
            }
        }
    }
    None
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let files = modules();
    let edges = graph(&files);
    let name = |m: &Module| {
        if m.is_empty() {
            "lib".into()
        } else {
            m.join("/")
        }
    };
    let circles: Vec<String> = files
        .keys()
        .filter_map(|m| circle_through(&edges, m))
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle() {
    let mut files = BTreeMap::new();
    files.insert(vec!["a".to_string()], "use crate::b::X;".to_string());
    files.insert(vec!["b".to_string()], "use super::a::Y;".to_string());
    files.insert(vec!["c".to_string()], "use crate::a;".to_string());
    let edges = graph(&files);
    assert!(circle_through(&edges, &vec!["a".to_string()]).is_some());
    assert!(circle_through(&edges, &vec!["c".to_string()]).is_none());
}
