//! The source tree's shape, checked so it stays true (issue 10): no import cycle between the
//! files of `src/` (the `oms` crate) or `wal/src/` (the `wal` crate), no file longer than
//! [`FILE_LINES_MAX`] lines and no function longer than [`FN_LINES_MAX`] lines there
//! (declarative tables excepted, each named in [`LONG_FNS_ALLOWED`] with its reason).
//!
//! The import graph: file `a` depends on file `b` when `a` names an item of `b` by a path
//! (`use crate::x::Y`, `use super::{Y, z::W}`, `super::z::f()` in code, `x::f()` for a child
//! module `x`). A path is resolved to the file that defines the module it names, following
//! re-exports (`pub use b::Y` in a module file makes `Y` an item of `b`). Re-exports and `mod`
//! declarations are structure, not dependencies: a parent that only declares and re-exports its
//! children does not depend on them. Comments and string literals are skipped.
//!
//! Plain text scanning, not a Rust parser: enough for this codebase's style (paths written
//! in full, no macros that build module paths). A construct it cannot read makes it see fewer
//! edges, never more, so a cycle it reports is real.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest file, in lines.
const FILE_LINES_MAX: usize = 600;
/// Longest function, in lines (its signature to its closing brace).
const FN_LINES_MAX: usize = 80;
/// Functions allowed to be longer, as (file, function, reason): declarative tables only.
const LONG_FNS_ALLOWED: &[(&str, &str, &str)] = &[];

/// The crates checked: (name, source directory).
fn crates() -> Vec<(&'static str, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![("oms", root.join("src")), ("wal", root.join("wal/src"))]
}

#[test]
fn no_file_imports_itself_through_others() {
    let mut cycles = Vec::new();
    for (name, dir) in crates() {
        let tree = Tree::read(&dir);
        let graph = tree.graph();
        for cycle in find_cycles(&graph) {
            let files: Vec<String> = cycle.iter().map(|m| tree.file_name(m)).collect();
            cycles.push(format!("{name}: {}", files.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles between files:\n{}", cycles.join("\n"));
}

#[test]
fn files_and_functions_stay_short() {
    let mut long = Vec::new();
    for (_, dir) in crates() {
        for path in rust_files(&dir) {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap()
                .display()
                .to_string();
            let n_lines = text.lines().count();
            if n_lines > FILE_LINES_MAX {
                long.push(format!("{rel}: {n_lines} lines (at most {FILE_LINES_MAX})"));
            }
            for (name, line, n) in functions(&strip(&text)) {
                let allowed = LONG_FNS_ALLOWED.iter().any(|(f, n, _)| rel == *f && name == *n);
                if n > FN_LINES_MAX && !allowed {
                    long.push(format!("{rel}:{line}: fn {name} is {n} lines (at most {FN_LINES_MAX})"));
                }
            }
        }
    }
    assert!(long.is_empty(), "too long:\n{}", long.join("\n"));
}

/// The scanner itself: a cycle through a re-export and a relative child path is found, a
/// parent's declarations and re-exports are not edges, and comments and strings are skipped.
#[test]
fn the_scanner_sees_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\npub use b::Thing;\n");
    write("a.rs", "// use crate::b::Thing;\nfn f() { let _ = \"crate::b\"; }\n");
    write("b.rs", "pub struct Thing;\n");
    let tree = Tree::read(dir.path());
    assert!(find_cycles(&tree.graph()).is_empty(), "{:?}", tree.graph());
    write("a.rs", "use crate::Thing;\npub fn f() {}\n");
    write("b.rs", "pub struct Thing;\nfn g() { super::a::f() }\n");
    let tree = Tree::read(dir.path());
    let cycles = find_cycles(&tree.graph());
    assert_eq!(cycles.len(), 1, "{:?}", tree.graph());
    write("b.rs", "mod c;\npub struct Thing;\nfn g() { c::h() }\n");
    write("b/c.rs", "use super::super::a;\npub fn h() { a::f() }\n");
    let tree = Tree::read(dir.path());
    assert_eq!(find_cycles(&tree.graph()).len(), 1, "{:?}", tree.graph());
    let text = "fn one() {\n}\n\nfn two() -> u8 {\n    let s = \"}\";\n    1\n}\n";
    assert_eq!(
        functions(&strip(text)),
        vec![("one".to_string(), 1, 2), ("two".to_string(), 4, 4)]
    );
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A module path from the crate root, e.g. `["engine", "core"]`.
type ModPath = Vec<String>;

/// A crate's files by module path, each with its code (comments and strings blanked).
struct Tree {
    files: BTreeMap<ModPath, String>,
    names: BTreeMap<ModPath, String>,
}

impl Tree {
    fn read(dir: &Path) -> Tree {
        let mut files = BTreeMap::new();
        let mut names = BTreeMap::new();
        for path in rust_files(dir) {
            let rel = path.strip_prefix(dir).unwrap();
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            let last = parts.pop().unwrap();
            match last.as_str() {
                // A binary's root is a crate of its own.
                "main.rs" if parts.is_empty() => continue,
                "lib.rs" if parts.is_empty() => {}
                "mod.rs" => {}
                other => parts.push(other.trim_end_matches(".rs").to_string()),
            }
            names.insert(parts.clone(), rel.display().to_string());
            files.insert(parts, strip(&std::fs::read_to_string(&path).unwrap()));
        }
        Tree { files, names }
    }

    fn file_name(&self, m: &ModPath) -> String {
        self.names[m].clone()
    }

    /// Every file's dependencies on other files.
    fn graph(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut graph = BTreeMap::new();
        for (module, code) in &self.files {
            let mut deps = BTreeSet::new();
            for (scope, path) in paths(code) {
                let mut base = module.clone();
                base.extend(scope);
                if let Some(target) = self.resolve(&base, &path, 0)
                    && &target != module
                {
                    deps.insert(target);
                }
            }
            graph.insert(module.clone(), deps);
        }
        graph
    }

    /// The file defining what `path` names, seen from module `base`; `None` for anything
    /// outside the crate.
    fn resolve(&self, base: &ModPath, path: &[String], depth: usize) -> Option<ModPath> {
        let mut at: ModPath = match path.first()?.as_str() {
            "crate" => Vec::new(),
            "self" | "super" => base.clone(),
            _ => base.clone(),
        };
        let mut rest = path;
        if rest[0] == "crate" || rest[0] == "self" {
            rest = &rest[1..];
        }
        while rest.first().is_some_and(|s| s == "super") {
            at.pop();
            rest = &rest[1..];
        }
        // Inline modules have no file: the file is the nearest enclosing one.
        while !self.files.contains_key(&at) {
            at.pop();
        }
        let relative = !matches!(path[0].as_str(), "crate" | "self" | "super");
        if relative
            && !self
                .files
                .contains_key(&[at.clone(), vec![rest.first()?.clone()]].concat())
        {
            return None; // an extern crate or a local item, not a child module
        }
        for (i, seg) in rest.iter().enumerate() {
            let child = [at.clone(), vec![seg.clone()]].concat();
            if self.files.contains_key(&child) {
                at = child;
                continue;
            }
            // An item of `at`: defined there, or re-exported from elsewhere (by name, or by
            // a glob over a module that defines it).
            let source = reexport(&self.files[&at], seg).or_else(|| self.glob_source(&at, seg, depth));
            if depth < 8
                && let Some(source) = source
            {
                let mut via = source;
                via.extend(rest[i + 1..].iter().cloned());
                return self.resolve(&at, &via, depth + 1).or(Some(at));
            }
            return Some(at);
        }
        Some(at)
    }
}

impl Tree {
    /// The path to `name` through a glob re-export of `at` (`pub use x::*;`) whose module
    /// defines it.
    fn glob_source(&self, at: &ModPath, name: &str, depth: usize) -> Option<Vec<String>> {
        let globs = use_statements(&self.files[at])
            .into_iter()
            .filter(|(public, _)| *public)
            .flat_map(|(_, tree)| expand(&tree))
            .filter(|(path, _)| path.last().is_some_and(|l| l == "*"));
        for (mut path, _) in globs {
            path.pop();
            let module = self.resolve(at, &path, depth + 1)?;
            if defines(&self.files[&module], name) {
                path.push(name.to_string());
                return Some(path);
            }
        }
        None
    }
}

/// Whether `code` defines an item called `name`.
fn defines(code: &str, name: &str) -> bool {
    [
        "fn", "struct", "enum", "const", "static", "type", "trait", "mod", "union",
    ]
    .iter()
    .any(|kw| {
        let needle = format!("{kw} {name}");
        code.match_indices(&needle).any(|(i, _)| {
            let after = code[i + needle.len()..].chars().next();
            let before = code[..i].chars().next_back();
            !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// The path a module file re-exports `name` from (`pub use x::y::name;`), if it does.
fn reexport(code: &str, name: &str) -> Option<Vec<String>> {
    use_statements(code)
        .into_iter()
        .filter(|(public, _)| *public)
        .flat_map(|(_, tree)| expand(&tree))
        .find(|(_, imported_as)| imported_as == name)
        .map(|(path, _)| path)
}

/// Every path a file names, with the inline module it is written in: from `use` statements
/// (re-exports excepted) and from code (`crate::`, `super::`, `self::`, `child::`).
fn paths(code: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let scopes = inline_scopes(code);
    let scope_at = |pos: usize| -> Vec<String> {
        scopes
            .iter()
            .filter(|(_, start, end)| *start <= pos && pos < *end)
            .map(|(n, _, _)| n.clone())
            .collect()
    };
    let mut use_spans = Vec::new();
    for (start, end, public, tree) in use_spans_of(code) {
        use_spans.push((start, end));
        if !public {
            for (path, _) in expand(&tree) {
                out.push((scope_at(start), path));
            }
        }
    }
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if use_spans.iter().any(|(s, e)| *s <= i && i < *e) {
            i += 1;
            continue;
        }
        let starts_word = (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b':' | b'.')));
        if !starts_word {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut segs = Vec::new();
        loop {
            let s = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            segs.push(code[s..j].to_string());
            if code[j..].starts_with("::") && code[j + 2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                j += 2;
            } else {
                break;
            }
        }
        if segs.len() > 1 {
            out.push((scope_at(i), segs));
        }
        i = j.max(i + 1);
    }
    out
}

/// `(name, start, end)` of every inline `mod name { … }` block, by byte offsets.
fn inline_scopes(code: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = code[search..].find("mod ") {
        let at = search + found;
        search = at + 4;
        if at > 0 && (code.as_bytes()[at - 1].is_ascii_alphanumeric() || code.as_bytes()[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = at + 4 + name.len() + (rest[name.len()..].len() - after.len());
        out.push((name, open, matching_brace(code, open)));
    }
    out
}

fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (k, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// `use` statements as (is a re-export, use tree text).
fn use_statements(code: &str) -> Vec<(bool, String)> {
    use_spans_of(code).into_iter().map(|(_, _, p, t)| (p, t)).collect()
}

/// `(start, end, is a re-export, tree)` of every `use` statement.
fn use_spans_of(code: &str) -> Vec<(usize, usize, bool, String)> {
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = code[search..].find("use ") {
        let at = search + found;
        search = at + 4;
        let before = code[..at].trim_end();
        let boundary = at == 0 || !(code.as_bytes()[at - 1].is_ascii_alphanumeric() || code.as_bytes()[at - 1] == b'_');
        if !boundary {
            continue;
        }
        let public = before.ends_with("pub")
            || (before.ends_with(')')
                && before
                    .rfind("pub(")
                    .is_some_and(|p| before[p..].find(')') == Some(before.len() - p - 1)));
        let Some(len) = code[at..].find(';') else { break };
        let tree: String = code[at + 4..at + len].split_whitespace().collect::<Vec<_>>().join(" ");
        out.push((at, at + len, public, tree));
        search = at + len;
    }
    out
}

/// The paths of a use tree, each with the name it is imported as: `a::{b, c::{d as e}}`
/// gives `a::b` (as `b`) and `a::c::d` (as `e`); `self` in braces names the prefix itself.
fn expand(tree: &str) -> Vec<(Vec<String>, String)> {
    fn go(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, String)>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        let Some(open) = tree.find('{') else {
            let (path, alias) = match tree.split_once(" as ") {
                Some((p, a)) => (p, Some(a.trim())),
                None => (tree, None),
            };
            let mut full = prefix.to_vec();
            for seg in path.split("::").map(str::trim) {
                if seg != "self" || full.is_empty() {
                    full.push(seg.to_string());
                }
            }
            let name = alias
                .map(String::from)
                .unwrap_or_else(|| full.last().cloned().unwrap_or_default());
            out.push((full, name));
            return;
        };
        let head = tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty());
        let prefix: Vec<String> = prefix.iter().cloned().chain(head.map(String::from)).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    go(&prefix, &inner[start..k], out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        go(&prefix, &inner[start..], out);
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// The code with comments, string and char literals blanked (newlines kept, so line
/// numbers hold).
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let end = literal_or_comment_end(&b, i);
        if end > i {
            for c in &b[i..end] {
                out.push(if *c == '\n' { '\n' } else { ' ' });
            }
            i = end;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Where the comment or literal starting at `i` ends (exclusive), or `i` if none starts there.
fn literal_or_comment_end(b: &[char], i: usize) -> usize {
    let at = |k: usize| b.get(k).copied();
    let after_ident = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
    match (b[i], at(i + 1)) {
        ('/', Some('/')) => (i..b.len()).find(|k| b[*k] == '\n').unwrap_or(b.len()),
        ('/', Some('*')) => {
            let (mut depth, mut k) = (0, i);
            while k < b.len() {
                if b[k] == '/' && at(k + 1) == Some('*') {
                    depth += 1;
                    k += 2;
                } else if b[k] == '*' && at(k + 1) == Some('/') {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        return k;
                    }
                } else {
                    k += 1;
                }
            }
            b.len()
        }
        ('r', Some('"' | '#')) if !after_ident || (b[i - 1] == 'b' && !(i > 1 && b[i - 2].is_alphanumeric())) => {
            let hashes = b[i + 1..].iter().take_while(|c| **c == '#').count();
            if at(i + 1 + hashes) != Some('"') {
                return i;
            }
            let mut k = i + 2 + hashes;
            while k < b.len() {
                if b[k] == '"' && b[k + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes {
                    return k + 1 + hashes;
                }
                k += 1;
            }
            b.len()
        }
        ('"', _) => {
            let mut k = i + 1;
            while k < b.len() && b[k] != '"' {
                k += if b[k] == '\\' { 2 } else { 1 };
            }
            k + 1
        }
        // A char literal ('x', '\n', '\'', '\u{..}'); a lifetime ('a) is left alone.
        ('\'', Some('\\')) => (i + 3..b.len()).find(|k| b[*k] == '\'').map_or(b.len(), |k| k + 1),
        ('\'', Some(_)) if at(i + 2) == Some('\'') => i + 3,
        _ => i,
    }
}

/// `(name, first line, lines)` of every function with a body.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut search = 0;
    while let Some(found) = code[search..].find("fn ") {
        let at = search + found;
        search = at + 3;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body starts at the first `{` outside parentheses and brackets, unless a `;`
        // comes first (a declaration has no body).
        let Some(open) = body_start(code, at) else { continue };
        let close = matching_brace(code, open);
        let first = code[..at].matches('\n').count() + 1;
        let last = code[..close.min(code.len())].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
    }
    out
}

fn body_start(code: &str, from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, b) in code.bytes().enumerate().skip(from) {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'{' if depth == 0 => return Some(k),
            b';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// Every cycle of the graph, one per strongly connected component of more than one file.
fn find_cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Tarjan's algorithm, iterative enough for a source tree (recursion depth = files).
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.reverse();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}
