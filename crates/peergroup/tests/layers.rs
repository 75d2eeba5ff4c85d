//! The facade's modules form layers: no module reaches, directly or not, a module that
//! reaches it back (a circle of imports is how a facade grows into one knot). Read from the
//! sources: every `crate::<module>` outside comments counts as a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the modules it names.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = rel.split(['/', '.']).next().unwrap().to_owned();
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(module.clone()).or_default();
            for line in text.lines() {
                let code = line.split("//").next().unwrap();
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name != module && name.chars().next().is_some_and(char::is_lowercase) {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn the_facade_modules_import_each_other_in_no_circle() {
    let graph = dependencies();
    assert!(graph.len() >= 10, "too few modules found: {graph:?}");
    for start in graph.keys() {
        // Depth-first from `start`; reaching it again is a circle.
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = todo.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                assert!(
                    next != start,
                    "the facade's modules import each other in a circle: {} → {next}",
                    path.join(" → ")
                );
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    todo.push((next.clone(), p));
                }
            }
        }
    }
}
