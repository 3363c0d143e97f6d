//! The crate's layering, checked from its sources: every `crate::` path in `src/` (outside
//! `#[cfg(test)]` code) must go to a module of a lower layer than its own (`rxd::LAYERS`), must
//! be one the module's header names on its "May call:" line, and the modules must form no
//! cycle. Nothing in the HTTP server may reach the store or the container driver.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read src").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's text without `#[cfg(test)]` items and without comments.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut skipping: Option<i64> = None;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(depth) = skipping.as_mut() {
            *depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if *depth <= 0 {
                skipping = None;
            }
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test {
            pending_cfg_test = false;
            let depth = line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if depth > 0 {
                skipping = Some(depth);
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find("// ") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level modules a text refers to through `crate::`.
fn references(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        // `crate::{a, b}` groups are not used in this crate; a name is always there.
        if !name.is_empty() {
            out.insert(name);
        }
        rest = after;
    }
    out
}

/// The modules a root file's header says it may call.
fn may_call(text: &str) -> Option<BTreeSet<String>> {
    let mut header = String::new();
    let mut seen = false;
    for line in text.lines().take_while(|l| l.starts_with("//!")) {
        let l = line.trim_start_matches("//!").trim();
        if let Some(rest) = l.strip_prefix("May call:") {
            seen = true;
            header.push_str(rest);
        } else if seen && !l.is_empty() {
            header.push(' ');
            header.push_str(l);
        } else if seen {
            break;
        }
    }
    if !seen {
        return None;
    }
    let list = header.split('.').next().unwrap_or("").to_string();
    if list.trim().starts_with("nothing else") {
        return Some(BTreeSet::new());
    }
    Some(list.split(',').map(|m| m.split_whitespace().next().unwrap_or("").to_string()).filter(|m| !m.is_empty()).collect())
}

#[test]
fn modules_only_call_down_the_layers_and_say_what_they_call() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank: BTreeMap<&str, usize> =
        rxd::LAYERS.iter().enumerate().flat_map(|(i, layer)| layer.iter().map(move |m| (*m, i))).collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("").trim_end_matches(".rs").to_string();
        // The binary's front-ends and its entry point sit above every layer of the library.
        if top == "applets" || top == "main" || top == "lib" {
            continue;
        }
        if !rank.contains_key(top.as_str()) {
            problems.push(format!("{}: module `{top}` is in no layer of rxd::LAYERS", rel.display()));
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        for r in references(&production_code(&text)) {
            if r == top {
                continue;
            }
            let Some(&their) = rank.get(r.as_str()) else {
                problems.push(format!("{}: `crate::{r}` is in no layer", rel.display()));
                continue;
            };
            if their <= rank[top.as_str()] {
                problems.push(format!("{}: `{top}` uses `crate::{r}`, which is not below it", rel.display()));
            }
            graph.entry(top.clone()).or_default().insert(r);
        }
    }
    // Each module's header says what it may call, and says it truly.
    for (m, r) in &rank {
        let root = [src.join(m).join("mod.rs"), src.join(format!("{m}.rs"))].into_iter().find(|p| p.exists());
        let Some(root) = root else {
            problems.push(format!("module `{m}` of rxd::LAYERS has no source"));
            continue;
        };
        let text = std::fs::read_to_string(&root).expect("read module root");
        let Some(allowed) = may_call(&text) else {
            problems.push(format!("{}: the header has no \"May call:\" line", root.display()));
            continue;
        };
        for a in &allowed {
            match rank.get(a.as_str()) {
                Some(their) if their > r => {}
                Some(_) => problems.push(format!("{}: \"May call\" names `{a}`, which is not below `{m}`", root.display())),
                None => problems.push(format!("{}: \"May call\" names `{a}`, which is no module", root.display())),
            }
        }
        for used in graph.get(*m).into_iter().flatten() {
            if !allowed.contains(used) {
                problems.push(format!("`{m}` uses `{used}`, which its header's \"May call\" line does not name"));
            }
        }
    }
    for forbidden in ["store", "instance", "image", "storage", "raft"] {
        if graph.get("server").is_some_and(|g| g.contains(forbidden)) {
            problems.push(format!("the HTTP server uses `{forbidden}` directly"));
        }
    }
    // No cycle (implied by the ranks, checked on its own so a wrong table cannot hide one).
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(i) = path.iter().position(|p| p == n) {
            return Some(format!("{} -> {n}", path[i..].join(" -> ")));
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut Vec::new(), &mut done) {
            problems.push(format!("import cycle: {cycle}"));
            break;
        }
    }
    assert!(problems.is_empty(), "layering violations:\n  {}", problems.join("\n  "));
}

#[test]
fn the_checker_sees_what_it_should() {
    let code = production_code(
        "use crate::store::Batch;\n// crate::cluster in a comment\nfn f() { crate::util::time::now(); }\n#[cfg(test)]\nmod tests {\n    use crate::server;\n}\n",
    );
    assert_eq!(references(&code), ["store".to_string(), "util".to_string()].into_iter().collect());
    let header = "//! Something.\n//!\n//! May call: store, util (time),\n//! tls.\n\nuse x;";
    assert_eq!(may_call(header), Some(["store", "util", "tls"].iter().map(|s| s.to_string()).collect()));
    assert_eq!(may_call("//! May call: nothing else in rxd.\n"), Some(BTreeSet::new()));
}
