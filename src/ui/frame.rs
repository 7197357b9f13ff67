//! A view's frame in each format: text (header lines cut to the terminal,
//! then the tables), CSV (the rows, the header line once per stream) and
//! JSON (one object a line).

use super::table;
use crate::text::{json as json_line, terminal_safe, truncate};
use crate::views::{Format, Frame};

/// A header line cut to `width` before the first word that does not fit,
/// with ` …` to mark the cut: header lines are values beside labels, and a
/// value cut in the middle (`29.` of `29.7M`) reads as another value.
/// A line whose first word alone is too wide is cut like a cell.
pub fn fit_header(line: &str, width: usize) -> String {
    let safe = terminal_safe(line);
    let chars: Vec<char> = safe.chars().collect();
    if chars.len() <= width {
        return safe.into_owned();
    }
    // The last word end that leaves room for " …".
    let end = (1..chars.len())
        .rev()
        .filter(|&i| i + 2 <= width)
        .find(|&i| chars[i] == ' ' && chars[i - 1] != ' ');
    match end {
        Some(i) => {
            let mut out: String = chars[..i].iter().collect();
            out.push_str(" …");
            out
        }
        None => truncate(line, width),
    }
}

/// The frame as text for a terminal `width` columns wide, at most
/// `max_rows` rows per table.
pub fn text(f: &Frame, width: usize, max_rows: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !f.header.is_empty() {
        parts.push(
            f.header
                .iter()
                .map(|l| fit_header(l, width))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_cut_between_words_never_in_a_value() {
        let line = "Load:  cpu       100%    Memory:  total       29.7M    binary    802K";
        assert_eq!(fit_header(line, 200), line);
        assert_eq!(fit_header(line, line.chars().count()), line);
        for width in 12..line.len() {
            let cut = fit_header(line, width);
            assert!(cut.chars().count() <= width, "{width}: {cut:?}");
            let kept = cut
                .strip_suffix(" …")
                .unwrap_or_else(|| panic!("{width}: {cut:?}"));
            // Every word kept is whole.
            for w in kept.split_whitespace() {
                assert!(line.split_whitespace().any(|x| x == w), "{width}: {cut:?}");
            }
        }
        assert_eq!(
            fit_header(line, 53),
            "Load:  cpu       100%    Memory:  total       29.7M …"
        );
        assert_eq!(
            fit_header(line, 52),
            "Load:  cpu       100%    Memory:  total …"
        );
        // One word wider than the terminal: cut like a cell.
        assert_eq!(fit_header("abcdefghij", 5), "abcd…");
        // Escaped before it is measured.
        assert_eq!(fit_header("a\x1b[2J b", 100), "a\\e[2J b");
    }
}
