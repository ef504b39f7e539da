//! docs/conformance.md and the catalogue agree, and every check names a real section of
//! docs/protocol.md.
//!
//! The tables of docs/conformance.md §4 are generated from the catalogue
//! (`outpost-conformance list --markdown`, [`outpost_conformance::markdown_table`]): this
//! test fails when they differ, and `UPDATE_EXPECT=1 cargo test -p outpost-conformance
//! docs` writes the generated tables into the page.

use std::collections::BTreeSet;

use crate::support::workspace_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The page with each family's table (the first table under `### family`) replaced by
/// the generated one.
fn with_generated_tables(doc: &str) -> String {
    let mut out = String::new();
    let mut lines = doc.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(family) = line.strip_prefix("### ") else {
            continue;
        };
        if !outpost_conformance::FAMILIES.contains(&family.trim()) {
            continue;
        }
        // Copy the prose up to the table, then swap the table.
        while let Some(next) = lines.peek() {
            if next.starts_with('|') {
                break;
            }
            assert!(
                !next.starts_with('#'),
                "docs/conformance.md: the section of family `{family}` has no table"
            );
            out.push_str(next);
            out.push('\n');
            lines.next();
        }
        while lines.peek().is_some_and(|next| next.starts_with('|')) {
            lines.next();
        }
        out.push_str(&outpost_conformance::markdown_table(family.trim()));
    }
    out
}

/// The tables are exactly what the catalogue generates.
#[test]
fn the_docs_tables_are_generated_from_the_catalogue() {
    let path = workspace_root().join("docs/conformance.md");
    let doc = read("docs/conformance.md");
    let generated = with_generated_tables(&doc);
    if generated == doc {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, generated).expect("docs/conformance.md is writable");
        return;
    }
    let changed: Vec<String> = doc
        .lines()
        .zip(generated.lines())
        .filter(|(a, b)| a != b)
        .take(5)
        .map(|(a, b)| format!("  page:      {a}\n  catalogue: {b}"))
        .collect();
    panic!(
        "docs/conformance.md §4 is out of date; run `UPDATE_EXPECT=1 cargo test -p outpost-conformance docs`:\n{}",
        changed.join("\n")
    );
}

/// The docs have one table row per check, `| `id` | LEVEL | §x | ... |`, and no row for
/// an id the suite does not have.
#[test]
fn the_docs_list_every_check_with_its_level_and_section() {
    let doc = read("docs/conformance.md");
    let rows: BTreeSet<(String, String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let level = *cells.get(2)?;
            let section = *cells.get(3)?;
            (id.contains('.') && section.starts_with('§'))
                .then(|| (id.to_owned(), level.to_owned(), section.to_owned()))
        })
        .collect();
    let catalogue: BTreeSet<(String, String, String)> = outpost_conformance::CHECKS
        .iter()
        .map(|c| (c.id.to_owned(), c.level.to_string(), c.section.to_owned()))
        .collect();
    let missing: Vec<_> = catalogue.difference(&rows).collect();
    let extra: Vec<_> = rows.difference(&catalogue).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/conformance.md is out of date: missing rows {missing:?}, rows the suite does not have {extra:?}"
    );
}

#[test]
fn every_check_names_a_section_of_the_spec() {
    let spec = read("docs/protocol.md");
    let sections: BTreeSet<String> = spec
        .lines()
        .filter_map(|line| {
            let heading = line.trim_start_matches('#');
            if heading.len() == line.len() {
                return None;
            }
            let number = heading.split_whitespace().next()?.trim_end_matches('.');
            number
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                .then(|| format!("§{number}"))
        })
        .collect();
    for check in outpost_conformance::CHECKS {
        assert!(
            sections.contains(check.section),
            "{} cites {}, which is not a heading of docs/protocol.md",
            check.id,
            check.section
        );
    }
}
