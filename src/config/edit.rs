//! Sets one setting of a YAML configuration file in place, keeping everything else — comments,
//! order, spacing — as the operator wrote it: what `doctor --fix` uses for configuration fixes.
//!
//! It understands the block style that `gatehouse init` writes (`section:` on its own line, one
//! `key: value` per line); a section written in flow style (`sessions: { gc: false }`) is not
//! rewritten but refused, so that a fix never guesses. The caller parses the result before
//! writing it.

/// `text` with `key` (a path such as `["sessions", "gc"]`) set to `value`, a YAML literal
/// (`true`, `"CF-Connecting-IP"`, `["10.0.0.1/32"]`). A missing key or section is added at
/// the end of its parent.
pub fn set(text: &str, key: &[&str], value: &str) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (mut start, mut end, mut indent) = (0, lines.len(), 0usize);
    for (depth, name) in key.iter().enumerate() {
        let last = depth + 1 == key.len();
        let Some(at) = find_key(&lines[start..end], indent, name).map(|i| start + i) else {
            let child_indent = if depth == 0 { 0 } else { child_indent(&lines[start..end]).unwrap_or(indent) };
            let insert_at = last_content_line(&lines[..end], start).map_or(end, |i| i + 1);
            let mut added = Vec::new();
            for (d, n) in key[depth..].iter().enumerate() {
                let pad = " ".repeat(child_indent + 2 * d);
                if depth + d + 1 == key.len() {
                    added.push(format!("{pad}{n}: {value}"));
                } else {
                    added.push(format!("{pad}{n}:"));
                }
            }
            lines.splice(insert_at..insert_at, added);
            return Ok(joined(text, &lines));
        };
        let line = lines[at].clone();
        let after_colon = &line[indent + name.len() + 1..];
        let rest = after_colon.trim_start();
        let block_end =
            (at + 1..end).find(|&i| is_content(&lines[i]) && indentation(&lines[i]) <= indent).unwrap_or(end);
        if last {
            // A block list under the key goes: the new value is written on the key's line.
            let children: Vec<&String> = lines[at + 1..block_end].iter().filter(|l| is_content(l)).collect();
            if children.iter().any(|l| !l.trim_start().starts_with('-')) {
                return Err(format!("`{}` is a section, not a value", key.join(".")));
            }
            let comment = trailing_comment(rest);
            let spacing = &after_colon[..after_colon.len() - rest.len()];
            let spacing = if spacing.is_empty() { " " } else { spacing };
            let list_lines = trailing_block(&lines[at + 1..block_end]);
            lines[at] = format!("{}{name}:{spacing}{value}{comment}", &line[..indent]);
            lines.drain(at + 1..at + 1 + list_lines);
            return Ok(joined(text, &lines));
        }
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err(format!(
                "`{}` is written in flow style (`{}`); set `{}` there by hand",
                key[..=depth].join("."),
                rest,
                key.join(".")
            ));
        }
        start = at + 1;
        end = block_end;
        indent = child_indent(&lines[start..end]).unwrap_or(indent + 2);
    }
    unreachable!("the last key returns")
}

/// The lines of a block list under a key, blank and comment lines between them included.
fn trailing_block(lines: &[String]) -> usize {
    lines.iter().rposition(|l| is_content(l)).map_or(0, |i| i + 1)
}

fn find_key(lines: &[String], indent: usize, name: &str) -> Option<usize> {
    lines.iter().position(|l| {
        is_content(l) && indentation(l) == indent && {
            let rest = &l[indent..];
            rest.strip_prefix(name)
                .is_some_and(|r| r.starts_with(':') && (r.len() == 1 || r[1..].starts_with([' ', '\t'])))
        }
    })
}

fn child_indent(lines: &[String]) -> Option<usize> {
    lines.iter().find(|l| is_content(l)).map(|l| indentation(l))
}

fn last_content_line(lines: &[String], from: usize) -> Option<usize> {
    (from..lines.len()).rev().find(|&i| is_content(&lines[i]))
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The comment after a value (`  # why`), kept when the value is replaced.
fn trailing_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    let mut quote = None;
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'[' | b'{') => depth += 1,
            (None, b']' | b'}') => depth -= 1,
            (None, b'#') if depth <= 0 && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                let start = value[..i].trim_end().len();
                return &value[start..];
            }
            _ => {}
        }
    }
    ""
}

fn joined(original: &str, lines: &[String]) -> String {
    let mut out = lines.join("\n");
    if original.ends_with('\n') || original.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::set;

    const INIT: &str = "system_url: \"http://x/\"   # the address users open\nsessions:\n  store: database\n  gc: false                    # collect expired sessions in cron\n\ntrusted_proxies:\n  header: \"X-Forwarded-For\"    # which header\n  ranges: []\n  cloudflare: false\n";

    #[test]
    fn a_value_is_replaced_on_its_line_and_its_comment_kept() {
        let out = set(INIT, &["sessions", "gc"], "true").unwrap();
        assert!(out.contains("  gc: true                    # collect expired sessions in cron\n"), "{out}");
        assert_eq!(out.lines().count(), INIT.lines().count());
        let out = set(INIT, &["trusted_proxies", "header"], "\"CF-Connecting-IP\"").unwrap();
        assert!(out.contains("  header: \"CF-Connecting-IP\"    # which header\n"), "{out}");
        let out = set(INIT, &["system_url"], "\"http://x/portal/\"").unwrap();
        assert!(out.starts_with("system_url: \"http://x/portal/\"   # the address users open\n"), "{out}");
    }

    #[test]
    fn a_block_list_is_replaced_whole() {
        let text = "trusted_proxies:\n  ranges:\n    - 10.0.0.1/32\n    # the old one\n    - 10.0.0.2/32\n  cloudflare: false\n";
        let out = set(text, &["trusted_proxies", "ranges"], "[\"10.0.0.0/24\"]").unwrap();
        assert_eq!(out, "trusted_proxies:\n  ranges: [\"10.0.0.0/24\"]\n  cloudflare: false\n");
    }

    #[test]
    fn missing_keys_and_sections_are_added_where_they_belong() {
        let out = set(INIT, &["sessions", "idle_timeout"], "\"1h\"").unwrap();
        assert!(out.contains("  gc: false                    # collect expired sessions in cron\n  idle_timeout: \"1h\"\n\ntrusted_proxies:"), "{out}");
        let out = set("listen: \"127.0.0.1:8080\"\n", &["sessions", "gc"], "true").unwrap();
        assert_eq!(out, "listen: \"127.0.0.1:8080\"\nsessions:\n  gc: true\n");
        let out = set("", &["sessions", "gc"], "true").unwrap();
        assert_eq!(out, "sessions:\n  gc: true\n");
    }

    #[test]
    fn flow_style_and_sections_are_refused_not_guessed() {
        let err = set("sessions: { gc: false }\n", &["sessions", "gc"], "true").unwrap_err();
        assert!(err.contains("flow style"), "{err}");
        let err = set(INIT, &["sessions"], "true").unwrap_err();
        assert!(err.contains("is a section"), "{err}");
        // A key that only starts like another is not it.
        let out = set("sessions:\n  gcx: 1\n", &["sessions", "gc"], "true").unwrap();
        assert_eq!(out, "sessions:\n  gcx: 1\n  gc: true\n");
    }
}
