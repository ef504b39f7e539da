//! docs/conformance.md and the catalogue agree, and every check names a real section of
//! docs/protocol.md.

use std::collections::BTreeSet;

use crate::support::workspace_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
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
