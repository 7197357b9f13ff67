//! Tables for people and for scripts: a grid fitted to the terminal (tabled:
//! the columns that may give up width are cut with `…`, the others keep
//! theirs), and the same grid as CSV rows (the csv crate).

use crate::text::{terminal_safe, width};
use crate::views::column::{Align, Grid};
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Modify, Padding, Style, Width};

/// Spaces between columns.
pub const GAP: usize = 2;
/// The narrowest a column that gives up width is cut to.
const MIN_FLEX: usize = 4;

/// The grid as text for a terminal `term_width` columns wide, at most
/// `max_rows` rows, with its titles. Every cell is made terminal-safe.
pub fn text(grid: &Grid, term_width: usize, max_rows: usize) -> String {
    let shown: Vec<usize> = (0..grid.columns.len())
        .filter(|&i| grid.columns[i].show.text)
        .filter(|&i| {
            !grid.columns[i].show.only_when_set
                || grid.rows.iter().any(|r| !r[i].to_csv().is_empty())
        })
        .collect();
    let mut b = Builder::new();
    b.push_record(shown.iter().map(|&i| grid.columns[i].title.to_string()));
    for row in grid.rows.iter().take(max_rows) {
        b.push_record(
            shown
                .iter()
                .map(|&i| terminal_safe(&row[i].to_text()).into_owned()),
        );
    }
    let natural: Vec<usize> = shown
        .iter()
        .map(|&i| {
            grid.rows
                .iter()
                .take(max_rows)
                .map(|r| width(&terminal_safe(&r[i].to_text())))
                .chain(std::iter::once(width(&grid.columns[i].title)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let flex: Vec<bool> = shown.iter().map(|&i| grid.columns[i].flex).collect();
    let widths = fit(&natural, &flex, term_width);
    let mut t = b.build();
    t.with(Style::empty()).with(Padding::new(0, GAP, 0, 0));
    for (col, &i) in shown.iter().enumerate() {
        if grid.columns[i].align == Align::Right {
            t.modify(Columns::one(col), Alignment::right());
        }
        if widths[col] < natural[col] {
            t.with(Modify::new(Columns::one(col)).with(Width::truncate(widths[col]).suffix("…")));
        }
    }
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Widths that fit `term_width`: columns that keep their width keep it; the
/// others share what is left, each cut only as far as needed, the widest
/// first, never below a few characters.
pub fn fit(natural: &[usize], flex: &[bool], term_width: usize) -> Vec<usize> {
    let mut w = natural.to_vec();
    let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * w.len().saturating_sub(1);
    while total(&w) > term_width {
        // The widest column that may still give up width gives up one.
        let Some(i) = (0..w.len())
            .filter(|&i| flex[i] && w[i] > MIN_FLEX)
            .max_by_key(|&i| (w[i], std::cmp::Reverse(i)))
        else {
            break;
        };
        w[i] -= 1;
    }
    w
}

/// The grid's CSV columns as CSV: `prefix` fields (time, node) first, the
/// header line when `header` is set. Fields are made terminal-safe; the csv
/// crate quotes what needs quoting.
pub fn csv(grid: &Grid, prefix: &[(&str, String)], header: bool) -> String {
    let shown: Vec<usize> = (0..grid.columns.len())
        .filter(|&i| grid.columns[i].show.csv)
        .collect();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if header {
        let names = prefix
            .iter()
            .map(|(k, _)| *k)
            .chain(shown.iter().map(|&i| grid.columns[i].key.as_ref()));
        // Writing to a Vec cannot fail.
        let _ = w.write_record(names);
    }
    for row in &grid.rows {
        let fields = prefix
            .iter()
            .map(|(_, v)| terminal_safe(v).into_owned())
            .chain(
                shown
                    .iter()
                    .map(|&i| terminal_safe(&row[i].to_csv()).into_owned()),
            );
        let _ = w.write_record(fields);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::column::{Cell, Column, Show};

    struct P {
        pid: &'static str,
        name: &'static str,
        reds: Option<u64>,
        cur: &'static str,
    }

    const COLS: [Column<P>; 5] = [
        Column::text("Pid", "pid", |p| Cell::text(p.pid)),
        Column::flex("Name", "name", |p| Cell::text(p.name)),
        Column::num("Reds", "reds", |p| Cell::Count(p.reds)),
        Column::flex("Current Function", "current_function", |p| {
            Cell::text(p.cur)
        }),
        Column::text("Secret", "only_data", |_| Cell::text("x")).only(Show::DATA),
    ];

    fn rows() -> Vec<P> {
        vec![
            P {
                pid: "<0.17045.30>",
                name: "lab_hoarder_with_a_really_long_registered_name",
                reds: Some(12345),
                cur: "gen_server:loop/7",
            },
            P {
                pid: "<0.1.0>",
                name: "erts_code_purger",
                reds: None,
                cur: "a_module_with_a_long_name:a_function_with_a_long_name/3",
            },
        ]
    }

    #[test]
    fn columns_never_touch_and_rows_fit_the_width() {
        let g = Grid::new(&COLS, &rows());
        for width in [50, 80, 120] {
            let t = text(&g, width, 100);
            for line in t.lines() {
                assert!(line.chars().count() <= width, "{width}: '{line}'");
            }
            for line in t.lines().skip(1) {
                // pid, then at least two spaces before the name
                let pid_end = line.find('>').unwrap() + 1;
                assert!(line[pid_end..].starts_with("  "), "'{line}'");
            }
        }
        assert!(text(&g, 60, 100).contains('…'));
        let wide = text(&g, 200, 100);
        assert!(wide.contains("lab_hoarder_with_a_really_long_registered_name"));
        assert!(!wide.contains('…'));
        assert!(
            !wide.contains("Secret"),
            "a data-only column stays off the terminal"
        );
    }

    #[test]
    fn unknown_values_show_a_dash_and_numbers_align_right() {
        let t = text(&Grid::new(&COLS, &rows()), 200, 100);
        let lines: Vec<&str> = t.lines().collect();
        let end = |l: &str, s: &str| l.find(s).map(|i| i + s.len()).unwrap();
        assert_eq!(
            end(lines[1], "12345"),
            end(lines[2], " -"),
            "right-aligned:\n{t}"
        );
    }

    #[test]
    fn the_widest_flexible_column_gives_up_width_first() {
        assert_eq!(
            fit(&[5, 30, 10], &[false, true, true], 200),
            vec![5, 30, 10]
        );
        // 5 + 2 + 30 + 2 + 10 = 49: 9 too many, all taken from the widest.
        assert_eq!(fit(&[5, 30, 10], &[false, true, true], 40), vec![5, 21, 10]);
        // Fixed columns never shrink; flexible ones stop at a minimum.
        assert_eq!(fit(&[5, 30, 10], &[false, true, true], 5), vec![5, 4, 4]);
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_keeps_data_columns() {
        let r = [P {
            pid: "<0.5.0>",
            name: "a,b",
            reds: Some(7),
            cur: "say \"hi\"",
        }];
        let out = csv(
            &Grid::new(&COLS, &r),
            &[("time", "2026-01-01 00:00:00".into())],
            true,
        );
        assert_eq!(
            out,
            "time,pid,name,reds,current_function,only_data\n\
             2026-01-01 00:00:00,<0.5.0>,\"a,b\",7,\"say \"\"hi\"\"\",x\n"
        );
    }
}
