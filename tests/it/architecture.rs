//! The house's shape, held by a test: the modules of `src/` import each other without a circle, the
//! domain (engine, record model, ports, features) imports no adapter, no entry point and no wiring,
//! and only the edge (the binaries and the CLI) imports the wiring.
//!
//! Imports are read from the text: every `crate::name` path outside comments and outside a file's
//! `#[cfg(test)]` module, with `use crate::{a, b::c}` groups opened.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders that hold the domain: none of them may import an adapter, an entry point or the
/// wiring.
const DOMAIN: &[&str] = &[
    "compare",
    "config",
    "record",
    "ports",
    "shared",
    "verify",
    "report",
    "baseline",
    "poller",
    "readiness",
    "revalidate",
    "repair",
    "preflight",
];
/// What the domain must not know.
const OUTER: &[&str] = &["aws", "lambda", "cli", "wiring", "testkit"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The test kit's sources (the workspace's dev-only crate).
fn testkit_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testkit/src")
}

/// The files held to the house's length and comment rules: `src/` and the test kit.
fn house_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(&testkit_src(), &mut files);
    files
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/aws/reader.rs` → `aws`, `src/compare.rs` →
/// `compare`); `None` for the crate root and the binaries.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .to_string();
    match first.as_str() {
        "lib.rs" | "bin" => None,
        _ => Some(first.trim_end_matches(".rs").to_string()),
    }
}

/// The file's code outside comments and outside its test module.
fn code_of(text: &str) -> String {
    let body = text.split("\n#[cfg(test)]\nmod tests").next().unwrap();
    body.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named by a `crate::` path in `code`.
fn imports_of(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').filter_map(|part| first_name(part.trim())));
        } else if let Some(name) = first_name(rest) {
            out.insert(name);
        }
    }
    out
}

fn first_name(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// Module → the modules it imports.
type Edges = BTreeMap<String, BTreeSet<String>>;
/// For each import between two modules, a file that makes it.
type Witnesses = BTreeMap<(String, String), PathBuf>;

/// The modules' imports, and for each a file that makes it.
fn graph() -> (Edges, Witnesses) {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let (mut edges, mut witness) = (BTreeMap::new(), BTreeMap::new());
    for file in files {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let imports: &mut BTreeSet<String> = edges.entry(module.clone()).or_default();
        for import in imports_of(&code) {
            if import != module {
                witness.insert((module.clone(), import.clone()), file.clone());
                imports.insert(import);
            }
        }
    }
    (edges, witness)
}

/// A circle through `start`, if there is one (depth-first, the path kept).
fn circle_from(edges: &Edges, start: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
    let here = path.last().unwrap().clone();
    for next in edges.get(&here).into_iter().flatten() {
        if next == start {
            let mut circle = path.clone();
            circle.push(start.to_string());
            return Some(circle);
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(circle) = circle_from(edges, start, path) {
                return Some(circle);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_modules_of_src_import_each_other_without_a_circle() {
    let (edges, witness) = graph();
    assert!(
        edges.contains_key("verify") && edges.contains_key("aws"),
        "src/ was read: {edges:?}"
    );
    for start in edges.keys() {
        if let Some(circle) = circle_from(&edges, start, &mut vec![start.clone()]) {
            let steps: Vec<String> = circle
                .windows(2)
                .map(|w| {
                    format!(
                        "{} → {} ({})",
                        w[0],
                        w[1],
                        witness[&(w[0].clone(), w[1].clone())].display()
                    )
                })
                .collect();
            panic!("an import circle: {}", steps.join(", "));
        }
    }
}

#[test]
fn the_domain_imports_no_adapter_no_entry_point_and_no_wiring() {
    let (_, witness) = graph();
    let breaches: Vec<String> = witness
        .iter()
        .filter(|((from, to), _)| DOMAIN.contains(&from.as_str()) && OUTER.contains(&to.as_str()))
        .map(|((from, to), file)| format!("{from} imports {to} ({})", file.display()))
        .collect();
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[test]
fn only_the_binaries_and_the_cli_import_the_wiring() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src().join("bin")) && !f.starts_with(src().join("cli")))
        .filter(|f| imports_of(&code_of(&std::fs::read_to_string(f).unwrap())).contains("wiring"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn the_import_reader_finds_paths_and_groups_but_not_comments() {
    let code = code_of(
        "use crate::{aws::reader, verify::Verifier};\n// crate::cli in a comment\nlet x = crate::shared::epoch_ms();\n#[cfg(test)]\nmod tests {\n use crate::testkit;\n}",
    );
    let found: Vec<String> = imports_of(&code).into_iter().collect();
    assert_eq!(found, ["aws", "shared", "verify"]);
}

/// The functions of `src/` outside test modules, as (file, first line, name, lines): a function
/// runs from its `fn` line to the closing brace at the `fn` line's indentation.
fn functions() -> Vec<(PathBuf, usize, String, usize)> {
    let files = house_files();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .collect();
        let mut i = 0;
        while i < lines.len() {
            let Some((indent, name)) = fn_start(lines[i]) else {
                i += 1;
                continue;
            };
            let Some(open) = (i..lines.len()).find(|&j| {
                let l = lines[j].trim_end();
                l.ends_with('{') || l.ends_with(';')
            }) else {
                break;
            };
            if lines[open].trim_end().ends_with(';') {
                i = open + 1;
                continue;
            }
            let closing = format!("{}}}", " ".repeat(indent));
            let end = (open + 1..lines.len())
                .find(|&j| lines[j].starts_with(&closing) && !lines[j][indent..].starts_with(' '))
                .unwrap_or(lines.len() - 1);
            out.push((file.clone(), i + 1, name, end - i + 1));
            i = end + 1;
        }
    }
    out
}

/// The indentation and name of a line that opens a function (`pub(crate) async fn name(`).
fn fn_start(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start().len();
    let mut words = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        words = words.strip_prefix(prefix).unwrap_or(words);
    }
    let rest = words.strip_prefix("fn ")?;
    Some((indent, first_name(rest)?))
}

/// The house's signal to split: a function over 80 lines (outside tests).
const LONGEST_FUNCTION: usize = 80;

#[test]
fn no_function_in_src_is_longer_than_eighty_lines() {
    let found = functions();
    assert!(found.len() > 500, "functions were read: {}", found.len());
    let long: Vec<String> = found
        .iter()
        .filter(|(.., lines)| *lines > LONGEST_FUNCTION)
        .map(|(file, line, name, lines)| format!("{}:{line} {name}: {lines} lines", file.display()))
        .collect();
    assert!(long.is_empty(), "split these: {long:#?}");
}

#[test]
fn the_function_reader_measures_a_function_to_its_closing_brace() {
    assert_eq!(
        fn_start("    pub(crate) async fn read_pages("),
        Some((4, "read_pages".into()))
    );
    assert_eq!(fn_start("    let f = fn_start;"), None);
}

#[test]
fn every_file_of_src_opens_with_a_comment_saying_what_it_holds() {
    let files = house_files();
    assert!(files.iter().any(|f| f.starts_with(testkit_src())));
    let silent: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(silent.is_empty(), "{silent:?}");
}
