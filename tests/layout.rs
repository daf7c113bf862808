//! The shape of the code, checked: no import circles between the files of the engine
//! (`actors/src`) or of the service (`src`), and no source file over 500 lines unless its
//! header says why (a line starting `//! Longer than 500 lines:`).
//!
//! A file depends on another when it names it by path: `crate::a::b`, `super::b`, or a
//! submodule it declares (`mod b;` … `b::x`). `use a::{b, c}` counts as `a::b` and `a::c`.
//! Comments, strings and `#[cfg(test)]` modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate (`["deal", "state"]`); the crate root is `[]`.
type Module = Vec<String>;

fn source_files(root: &Path) -> BTreeMap<Module, PathBuf> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(root).expect("under the root");
                let mut module: Module = relative
                    .with_extension("")
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                // `main.rs` and `lib.rs` are both the root: keep lib's.
                if module.is_empty() && path.ends_with("main.rs") {
                    continue;
                }
                files.insert(module, path);
            }
        }
    }
    files
}

/// The code of a file without comments, string contents and its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            for rest in chars.by_ref() {
                if rest == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else if c == '"' {
            in_string = true;
            out.push('"');
        } else {
            out.push(c);
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path the code names that starts with `head::` (a word boundary before `head`),
/// brace groups expanded one level.
fn paths_after(code: &str, head: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let needle = format!("{head}::");
    let mut from = 0;
    while let Some(found) = code[from..].find(&needle) {
        let start = from + found;
        from = start + needle.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let rest = &code[from..];
        let mut segments = Vec::new();
        let mut cursor = rest;
        loop {
            let name: String = cursor.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                segments.push(name.clone());
                cursor = &cursor[name.len()..];
                if let Some(next) = cursor.strip_prefix("::") {
                    cursor = next;
                    continue;
                }
                paths.push(segments.clone());
            } else if let Some(group) = cursor.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let item: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|part| part.chars().take_while(|c| is_ident(*c)).collect())
                        .filter(|part: &String| !part.is_empty())
                        .collect();
                    let mut full = segments.clone();
                    full.extend(item);
                    paths.push(full);
                }
            } else {
                paths.push(segments.clone());
            }
            break;
        }
    }
    paths
}

/// Which files each file depends on.
fn dependencies(files: &BTreeMap<Module, PathBuf>) -> BTreeMap<Module, BTreeSet<Module>> {
    let resolve = |path: &[String]| -> Option<Module> {
        (0..=path.len())
            .rev()
            .map(|len| path[..len].to_vec())
            .find(|candidate| files.contains_key(candidate))
    };
    let mut graph = BTreeMap::new();
    for (module, file) in files {
        let text = code(&std::fs::read_to_string(file).expect("readable source"));
        let mut named: Vec<Vec<String>> = paths_after(&text, "crate");
        let parent = &module[..module.len().saturating_sub(1)];
        for path in paths_after(&text, "super") {
            named.push(parent.iter().cloned().chain(path).collect());
        }
        let children: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let line = line
                    .trim()
                    .trim_start_matches("pub ")
                    .trim_start_matches("pub(crate) ");
                line.strip_prefix("mod ")?
                    .strip_suffix(';')
                    .map(str::to_owned)
            })
            .collect();
        for child in &children {
            for path in paths_after(&text, child) {
                named.push(
                    module
                        .iter()
                        .cloned()
                        .chain([child.clone()])
                        .chain(path)
                        .collect(),
                );
            }
        }
        let depends: BTreeSet<Module> = named
            .iter()
            .filter_map(|path| resolve(path))
            .filter(|target| target != module)
            .collect();
        graph.insert(module.clone(), depends);
    }
    graph
}

/// The groups of files that depend on each other in a circle (Tarjan's algorithm).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        found: Vec<Vec<Module>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, node: &Module) {
            let at = self.index.len();
            self.index.insert(node.clone(), at);
            self.low.insert(node.clone(), at);
            self.stack.push(node.clone());
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node.clone(), low);
                } else if self.stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node.clone(), low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    let done = &member == node;
                    group.push(member);
                    if done {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

fn roots() -> [PathBuf; 2] {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [manifest.join("actors/src"), manifest.join("src")]
}

/// No file of the engine or of the service reaches itself through its imports.
#[test]
fn no_import_circles() {
    for root in roots() {
        let graph = dependencies(&source_files(&root));
        let found: Vec<String> = circles(&graph)
            .into_iter()
            .map(|group| {
                group
                    .iter()
                    .map(|module| format!("{}/{}", root.display(), module.join("/")))
                    .collect::<Vec<_>>()
                    .join(" ↔ ")
            })
            .collect();
        assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
    }
}

/// The checker itself finds a circle: two files that name each other.
#[test]
fn the_checker_sees_a_circle() {
    let dir = std::env::temp_dir().join(format!("topkart_layout_{}", std::process::id()));
    std::fs::create_dir_all(dir.join("deal")).expect("temp dir");
    std::fs::write(dir.join("lib.rs"), "mod deal;\nmod writer;\n").expect("write");
    std::fs::write(dir.join("writer.rs"), "use crate::deal::{Actor, X};\n").expect("write");
    std::fs::write(dir.join("deal/mod.rs"), "mod state;\npub use state::S;\n").expect("write");
    std::fs::write(
        dir.join("deal/state.rs"),
        "fn f() { crate::writer::go(); }\n",
    )
    .expect("write");
    let found = circles(&dependencies(&source_files(&dir)));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].len(),
        3,
        "writer → deal → deal/state → writer: {found:?}"
    );
}

/// Files past 500 lines say at their top why they are not split.
#[test]
fn long_files_say_why() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut roots = roots().to_vec();
    roots.extend([
        manifest.join("tests"),
        manifest.join("actors/tests"),
        manifest.join("benches"),
    ]);
    let mut unexplained = Vec::new();
    for root in roots {
        for file in source_files(&root).into_values() {
            let text = std::fs::read_to_string(&file).expect("readable");
            let explained = text
                .lines()
                .take_while(|line| line.starts_with("//!") || line.trim().is_empty())
                .any(|line| line.starts_with("//! Longer than 500 lines:"));
            if text.lines().count() > 500 && !explained {
                unexplained.push(format!(
                    "{} ({} lines)",
                    file.display(),
                    text.lines().count()
                ));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "split these or say why:\n{}",
        unexplained.join("\n")
    );
}
