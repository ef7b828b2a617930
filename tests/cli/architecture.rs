//! The shape of the code, checked: no import circle between the modules of `src/core` (a
//! module is `src/core/<name>.rs` with everything under `src/core/<name>/`). Test code is left
//! out: a test may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core")
}

/// The text of a file without its `#[cfg(test)] mod tests { … }` block (always last here).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Child modules a file declares under `#[cfg(test)]` (`mod tests;`, `mod contract;`).
fn test_children(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.trim() == "#[cfg(test)]"
            && let Some(next) = lines.peek()
        {
            let n = next
                .trim()
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(name) = n.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// Every `crate::core::<name>` a text names, grouped imports (`crate::core::{a, b::c}`) too.
pub fn core_mentions(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let needle = "crate::core::";
    let mut rest = text;
    while let Some(i) = rest.find(needle) {
        rest = &rest[i + needle.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The files of module `name`, test modules left out.
fn files_of(name: &str) -> Vec<String> {
    let dir = core_dir();
    let mut out = Vec::new();
    let top = dir.join(format!("{name}.rs"));
    let mut todo = vec![(top, dir.join(name))];
    while let Some((file, subdir)) = todo.pop() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let skip = test_children(&text);
        if let Ok(rd) = std::fs::read_dir(&subdir) {
            for e in rd.flatten() {
                let p = e.path();
                let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
                if p.extension().is_some_and(|x| x == "rs") && !skip.contains(&stem) {
                    todo.push((p, subdir.join(&stem)));
                }
            }
        }
        out.push(without_tests(&text).to_owned());
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g = BTreeMap::new();
    for e in std::fs::read_dir(core_dir()).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "rs") || p.file_stem().unwrap() == "mod" {
            continue;
        }
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let mut deps = BTreeSet::new();
        for text in files_of(&name) {
            deps.extend(core_mentions(&text));
        }
        deps.remove(&name);
        g.insert(name, deps);
    }
    g
}

/// A circle through `start`, if there is one (depth-first, names sorted: stable output).
fn circle_through(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if g.contains_key(next) && seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(g, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_import_circle_in_core() {
    let g = graph();
    assert!(g.len() > 20, "read the modules of src/core: {:?}", g.keys());
    assert!(g["clean"].contains("plan"), "the reader sees imports");
    let circles: Vec<String> = g
        .keys()
        .filter_map(|m| circle_through(&g, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles in src/core:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_finds_grouped_imports_and_a_planted_circle() {
    let m = core_mentions(
        "use crate::core::{clean, store::clean::X};\nlet x = crate::core::util::f();",
    );
    assert_eq!(m, ["clean", "store", "util"].map(String::from).into());
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    g.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(circle_through(&g, "a").unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert!(circle_through(&g, "a").is_none());
}

/// Commands only wire: no store-specific module under `src/cmd`, and only `cmd/mod.rs` (where
/// the fleet is opened) names a backend or asks which kind the fleet is.
#[test]
fn commands_never_branch_on_the_kind_of_store() {
    let cmd = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&cmd).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.push(format!("{}: a folder of commands", p.display()));
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // `backup` is folder-only by nature and refuses a store (exit 2).
        if name == "mod.rs" || name == "backup.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for needle in [
            "is_folder()",
            "store::open",
            "store::sqlite",
            "store::postgres",
            "store::redis",
            "store::clean",
        ] {
            if text.contains(needle) {
                found.push(format!("{name}: {needle}"));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
