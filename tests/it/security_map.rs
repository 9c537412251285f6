//! `docs/security.md` maps OWASP ASVS 5.0 (V6, V7, V8, V16) to the tests that prove each
//! requirement. A map is only worth something while its proofs exist: every `tested` row names
//! at least one test, and every test it names is a function in the file it names.

use std::path::Path;

#[test]
fn every_proof_in_the_security_map_names_an_existing_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let proof = regex::Regex::new(r"`((?:tests/it|src)/[A-Za-z0-9_/]+\.rs)::([A-Za-z0-9_]+)`").unwrap();
    let (mut rows, mut proofs, mut problems) = (0, 0, Vec::new());
    let mut chapters = std::collections::BTreeSet::new();
    for line in map.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Req") && !l.starts_with("|---")) {
        let cells: Vec<&str> = line.split(" | ").map(|c| c.trim_matches(|ch| ch == '|' || ch == ' ')).collect();
        let [req, _level, _requirement, status, evidence] = cells[..] else {
            problems.push(format!("not five columns: {line}"));
            continue;
        };
        rows += 1;
        chapters.insert(req.split('.').next().unwrap_or_default().to_string());
        let named: Vec<_> = proof.captures_iter(evidence).collect();
        match status {
            "tested" if named.is_empty() => problems.push(format!("{req} is `tested` but names no test")),
            "tested" => {}
            "n/a" | "deviation" | "gap" if evidence.trim().is_empty() => problems.push(format!("{req}: no reason")),
            "n/a" | "deviation" | "gap" => {}
            other => problems.push(format!("{req}: unknown status `{other}`")),
        }
        for found in named {
            proofs += 1;
            let (file, function) = (&found[1], &found[2]);
            match std::fs::read_to_string(root.join(file)) {
                Ok(source) if source.contains(&format!("fn {function}(")) => {}
                Ok(_) => problems.push(format!("{req}: {file} has no fn {function}")),
                Err(_) => problems.push(format!("{req}: no file {file}")),
            }
        }
    }
    assert!(problems.is_empty(), "docs/security.md:\n  {}", problems.join("\n  "));
    assert_eq!(chapters.into_iter().collect::<Vec<_>>(), ["16", "6", "7", "8"], "the four chapters");
    assert!(rows >= 76 && proofs >= rows / 2, "{rows} rows, {proofs} proofs");
}
