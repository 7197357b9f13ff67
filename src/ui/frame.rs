//! A view's frame in each format: text (header lines cut to the terminal,
//! then the tables), CSV (the rows, the header line once per stream) and
//! JSON (one object a line).

use super::table;
use crate::text::{json as json_line, truncate};
use crate::views::{Format, Frame};

/// The frame as text for a terminal `width` columns wide, at most
/// `max_rows` rows per table.
pub fn text(f: &Frame, width: usize, max_rows: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !f.header.is_empty() {
        parts.push(
            f.header
                .iter()
                .map(|l| truncate(l, width))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    parts.extend(
        f.grids
            .iter()
            .filter(|g| g.columns.iter().any(|c| c.show.text))
            .map(|g| match &g.caption {
                // An empty section says so in its caption (`Links (0)`):
                // column titles over nothing would only add noise.
                Some(c) if g.rows.is_empty() => truncate(c, width),
                Some(c) => format!(
                    "{}\n{}",
                    truncate(c, width),
                    table::text(g, width, max_rows)
                ),
                None => table::text(g, width, max_rows),
            }),
    );
    if !f.footer.is_empty() {
        parts.push(
            f.footer
                .iter()
                .map(|l| truncate(l, width))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    parts.join("\n\n")
}

/// The frame's CSV rows; the header line first when `header`.
pub fn csv(f: &Frame, header: bool) -> String {
    f.grids
        .iter()
        .filter(|g| g.has_csv())
        .map(|g| table::csv(g, &f.csv_prefix, header))
        .collect()
}

/// The frame as JSON Lines: its object on one line; a frame whose JSON is a
/// list (`etop nodes`) gives one line per element.
pub fn json(f: &Frame) -> String {
    match &f.json {
        serde_json::Value::Array(items) => items.iter().map(|v| json_line(v) + "\n").collect(),
        v => json_line(v) + "\n",
    }
}

/// A one-shot frame (`etop nodes`) in `format`.
pub fn once(f: &Frame, format: Format) -> String {
    match format {
        Format::Text => {
            let width = std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(1000);
            text(f, width, usize::MAX) + "\n"
        }
        Format::Csv => csv(f, true),
        Format::Json => json(f),
    }
}
