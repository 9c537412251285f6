//! The dependency order of `src/`, as written in `lib.rs`: a module may use the modules of
//! lower layers, never one of its own layer or above. Read from the source, so an import that
//! runs up the order fails here, naming the file and line.

use std::path::Path;

/// Lowest first; modules on one line are peers and may not use each other.
const LAYERS: &[&[&str]] = &[
    &["system", "config"],
    &["error"],
    &["store"],
    &["secrets"],
    &["mail", "net"],
    &["accounts", "license"],
    &["auth"],
    &["services"],
    &["cron"],
    &["doctor"],
    &["report"],
    &["web"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `crate::NAME` in `text`, with its line number.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String =
                code[i + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            found.push((n + 1, name));
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_one_above_it_or_beside_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = top.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let own = layer(module).unwrap_or_else(|| panic!("src/{top} is in no layer: add it to LAYERS and lib.rs"));
        for (line, used) in uses(&std::fs::read_to_string(file).unwrap()) {
            let Some(theirs) = layer(&used) else { continue };
            if used != module && theirs >= own {
                wrong.push(format!("src/{}:{line}: {module} uses {used}", relative.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that run up the dependency order:\n{}", wrong.join("\n"));
}

#[test]
fn lib_rs_states_the_same_order() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let order: Vec<String> = LAYERS.iter().map(|l| l.join(", ")).collect();
    let stated = order.join(" → ");
    assert!(lib.contains(&stated), "lib.rs's crate doc states the layers as:\n{stated}");
}
