//! Pure rendering: a `Model` becomes text (a header and a table that fits the
//! terminal), CSV rows, or one JSON object per frame.
//!
//! Every text cell, header line and CSV field passes through
//! [`terminal_safe`] here, before widths are measured; JSON goes through
//! [`escape::json`]. The views build their cells from raw values and leave
//! the escaping to these helpers.

use crate::escape::{self, terminal_safe};
use crate::model::{Header, Model, Row};
use crate::remote::SortKey;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Padding, Style};

/// Output formats, `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Csv,
    Json,
}

const COLUMNS: [&str; 6] = [
    "Pid",
    "Name or Initial Func",
    "Reds",
    "Memory",
    "MsgQ",
    "Current Function",
];
/// Spaces between columns.
const GAP: usize = 2;

/// The status line's word on what a frame cost the node: time, and the
/// frame worker's heap against its ceiling.
pub fn cost_note(cost_ms: f64, heap_bytes: u64, limit_bytes: u64) -> String {
    let mut note = format!("this sample cost the node {cost_ms:.1} ms");
    if heap_bytes > 0 {
        note.push_str(&format!(", {} of heap", human_bytes(heap_bytes)));
        if limit_bytes > 0 {
            note.push_str(&format!(" (ceiling {})", human_bytes(limit_bytes)));
        }
    }
    note
}

/// Bytes in binary units, short enough for a column: `512`, `1.5K`, `44.6M`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if b < 1024 {
        return b.to_string();
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v >= 100.0 {
        format!("{v:.0}{}", UNITS[unit])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `s` made terminal-safe, then cut to `width` characters, marking the cut
/// with `…`.
pub fn truncate(s: &str, width: usize) -> String {
    let s = terminal_safe(s);
    if char_len(&s) <= width {
        return s.into_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

fn sort_word(k: SortKey) -> &'static str {
    match k {
        SortKey::Reductions => "reductions",
        SortKey::Memory => "memory",
        SortKey::Msgq => "message queue",
    }
}

/// The header's first line says what the numbers mean: which window the
/// reductions cover, or that they are totals.
fn window_text(h: &Header) -> String {
    let reds = match (h.accumulate, h.window_secs) {
        (true, _) => "reductions: totals".to_string(),
        (false, Some(w)) => format!("reductions over {w:.1} s"),
        (false, None) if h.sort == SortKey::Reductions => {
            "reductions: totals (first frame)".to_string()
        }
        (false, None) => "reductions: from the next frame".to_string(),
    };
    format!("sorted by {}, {}", sort_word(h.sort), reds)
}

fn header_lines(h: &Header) -> Vec<String> {
    let cpu = h.cpu_pct.map(|c| format!("{c:.0}%")).unwrap_or_default();
    let m = &h.memory;
    let mut lines = vec![
        format!(
            "{}  {}  {}",
            h.node,
            h.clock.as_deref().unwrap_or(""),
            window_text(h)
        ),
        format!(
            "Load:  cpu   {:>8}    Memory:  total     {:>7}    binary {:>7}",
            cpu,
            human_bytes(m.total),
            human_bytes(m.binary)
        ),
        format!(
            "       procs {:>8}             processes {:>7}    code   {:>7}",
            h.procs,
            human_bytes(m.processes),
            human_bytes(m.code)
        ),
        format!(
            "       runq  {:>8}             atom      {:>7}    ets    {:>7}",
            h.runq,
            human_bytes(m.atom),
            human_bytes(m.ets)
        ),
    ];
    if h.show_schedulers {
        lines.push(scheduler_line(h));
    }
    if let Some(os) = &h.os {
        // RSS next to the VM's own total: the gap is allocator and OS overhead.
        let host = os
            .host_cpu_pct
            .map(|c| format!("{c:.0}%"))
            .unwrap_or_else(|| "-".into());
        lines.push(format!(
            "OS:    rss   {:>8} (VM total {}, overhead {})  threads {}  host cpu {} of {}  load {:.2} {:.2} {:.2}",
            human_bytes(os.rss_bytes),
            human_bytes(m.total),
            human_bytes(os.rss_bytes.saturating_sub(m.total)),
            os.os_threads,
            host,
            os.cpus,
            os.load_avg[0],
            os.load_avg[1],
            os.load_avg[2]
        ));
    }
    lines
}

/// `Schedulers: 1 98%  2 97%  | dirty cpu: 3 0%  4 0%`, blank on a first frame.
fn scheduler_line(h: &Header) -> String {
    let part = |kind: &str| {
        h.schedulers
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| {
                format!(
                    "{} {}",
                    s.id,
                    s.pct.map(|p| format!("{p:.0}%")).unwrap_or("-".into())
                )
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let dirty = part("dirty_cpu");
    let mut line = format!("Sched: {}", part("normal"));
    if !dirty.is_empty() {
        line.push_str(&format!("  | dirty cpu: {dirty}"));
    }
    line
}

fn cells(r: &Row) -> [String; 6] {
    [
        terminal_safe(&r.pid).into_owned(),
        terminal_safe(&r.name).into_owned(),
        r.reds.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        human_bytes(r.memory_bytes),
        r.msgq.to_string(),
        terminal_safe(&r.current_function).into_owned(),
    ]
}

/// Widths of the two text columns so that a row fits `width`: fixed columns
/// keep their natural width; the name and current function share the rest.
pub fn flex_widths(natural: [usize; 6], width: usize) -> (usize, usize) {
    let fixed: usize = natural[0] + natural[2] + natural[3] + natural[4];
    let avail = width.saturating_sub(fixed + GAP * 5);
    let (name, cur) = (natural[1], natural[5]);
    if name + cur <= avail {
        return (name, cur);
    }
    // The name gets up to 45% (at least 12 columns when there is room),
    // the function the rest; whichever needs less gives the surplus back.
    let name_w = name.min((avail * 45 / 100).max(12.min(avail / 2)));
    let cur_w = cur.min(avail.saturating_sub(name_w));
    let name_w = name.min(avail.saturating_sub(cur_w));
    (name_w.max(4), cur_w.max(4))
}

/// The frame as text for a terminal `width` columns wide, at most
/// `max_rows` table rows.
pub fn text(model: &Model, width: usize, max_rows: usize) -> String {
    let mut out = header_lines(&model.header)
        .into_iter()
        .map(|l| truncate(&l, width))
        .collect::<Vec<_>>()
        .join("\n");
    out.push_str("\n\n");
    out.push_str(&table(&model.rows[..model.rows.len().min(max_rows)], width));
    out
}

/// The process table alone.
pub fn table(rows: &[Row], width: usize) -> String {
    let all: Vec<[String; 6]> = rows.iter().map(cells).collect();
    let mut natural = COLUMNS.map(char_len);
    for r in &all {
        for (i, c) in r.iter().enumerate() {
            natural[i] = natural[i].max(char_len(c));
        }
    }
    let (name_w, cur_w) = flex_widths(natural, width);
    let mut b = Builder::new();
    let mut titles = COLUMNS.map(String::from);
    titles[1] = truncate(&titles[1], name_w);
    titles[5] = truncate(&titles[5], cur_w);
    b.push_record(titles);
    for r in all {
        let mut r = r;
        r[1] = truncate(&r[1], name_w);
        r[5] = truncate(&r[5], cur_w);
        b.push_record(r);
    }
    let mut t = b.build();
    t.with(Style::empty())
        .with(Padding::new(0, GAP, 0, 0))
        .modify(Columns::new(2..5), Alignment::right());
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn csv_field(s: &str) -> String {
    let s = terminal_safe(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV line, quoted where needed, with its newline.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// A plain table: titles, rows, the given columns right-aligned, two spaces
/// between columns, no trailing blanks. Cells are made terminal-safe.
pub fn simple_table(titles: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut b = Builder::new();
    b.push_record(titles.iter().map(|t| terminal_safe(t).into_owned()));
    for r in rows {
        b.push_record(r.iter().map(|c| terminal_safe(c).into_owned()));
    }
    let mut t = b.build();
    t.with(Style::empty()).with(Padding::new(0, GAP, 0, 0));
    for &c in right {
        t.modify(Columns::one(c), Alignment::right());
    }
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

pub const CSV_HEADER: &str =
    "time,node,pid,name,registered_name,initial_call,reds,memory_bytes,msgq,current_function";

/// One CSV line per row; the header line is printed once per stream.
pub fn csv(model: &Model) -> String {
    let h = &model.header;
    let mut out = String::new();
    for r in &model.rows {
        let fields = [
            h.clock.clone().unwrap_or_default(),
            h.node.clone(),
            r.pid.clone(),
            r.name.clone(),
            r.registered_name.clone().unwrap_or_default(),
            r.initial_call.clone().unwrap_or_default(),
            r.reds.map(|v| v.to_string()).unwrap_or_default(),
            r.memory_bytes.to_string(),
            r.msgq.to_string(),
            r.current_function.clone(),
        ];
        out.push_str(&csv_line(&fields));
    }
    out
}

/// One JSON object, one line.
pub fn json(model: &Model) -> String {
    escape::json(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemoryView;

    fn row(pid: &str, name: &str, cur: &str) -> Row {
        Row {
            pid: pid.into(),
            name: name.into(),
            registered_name: None,
            initial_call: None,
            reds: Some(12345),
            memory_bytes: 2_000_000,
            msgq: 7,
            current_function: cur.into(),
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(44 * 1024 * 1024 + 600 * 1024), "44.6M");
        assert_eq!(human_bytes(300 * 1024), "300K");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn columns_never_touch_and_rows_fit_the_width() {
        let rows = vec![
            row(
                "<0.17045.30>",
                "lab_hoarder_with_a_really_long_registered_name",
                "gen_server:loop/7",
            ),
            row(
                "<0.1.0>",
                "erts_code_purger",
                "a_module_with_a_long_name:a_function_with_a_long_name/3",
            ),
        ];
        for width in [60, 80, 120] {
            let t = table(&rows, width);
            for line in t.lines().skip(1) {
                assert!(line.chars().count() <= width, "{width}: '{line}'");
                // pid, then at least two spaces before the name
                let pid_end = line.find('>').unwrap() + 1;
                assert!(line[pid_end..].starts_with("  "), "'{line}'");
            }
        }
        let narrow = table(&rows, 60);
        assert!(narrow.contains('…'));
        let wide = table(&rows, 200);
        assert!(wide.contains("lab_hoarder_with_a_really_long_registered_name"));
        assert!(!wide.contains('…'));
    }

    #[test]
    fn unknown_reds_show_a_dash_and_numbers_align_right() {
        let mut r = row("<0.5.0>", "x", "y");
        r.reds = None;
        let t = table(&[r, row("<0.6.0>", "x", "y")], 100);
        let lines: Vec<&str> = t.lines().collect();
        let dash = lines[1].find(" - ").map(|i| i + 1).unwrap();
        assert_eq!(lines[2].chars().nth(dash), Some('5'), "right-aligned:\n{t}");
    }

    /// A control character other than the newlines between lines.
    fn raw_control(c: char) -> bool {
        c != '\n' && crate::escape::is_unsafe(c)
    }

    fn header() -> Header {
        Header {
            node: "n@h".into(),
            clock: Some("2026-01-01 00:00:00".into()),
            cpu_pct: None,
            procs: 1,
            runq: 0,
            memory: MemoryView::default(),
            sort: SortKey::Msgq,
            accumulate: false,
            window_secs: None,
            cost_ms: 1.0,
            agent_heap_bytes: 0,
            agent_heap_limit_bytes: 0,
            os: None,
            schedulers: vec![],
            show_schedulers: false,
        }
    }

    #[test]
    fn names_from_the_node_are_escaped_in_text_and_csv_and_exact_in_json() {
        let title = "\x1b]0;pwned\x07";
        let mut h = header();
        h.node = "evil\x1b[2J@h".into();
        let m = Model {
            header: h,
            rows: vec![
                row("<0.5.0>", title, "m:f/0"),
                row("<0.6.0>", "a\nb", "\u{9b}x:\u{202e}y/1"),
            ],
        };
        let text = text(&m, 100, 10);
        assert!(!text.contains(raw_control), "{text:?}");
        assert!(text.contains("\\e]0;pwned\\a"), "{text}");
        assert!(text.starts_with("evil\\e[2J@h"), "{text}");
        assert!(text.contains("\\u{9b}x:\\u{202e}y/1"), "{text}");
        // One line per row: the newline in a name does not split it.
        let rows: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("Pid")).collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(rows[2].contains("a\\nb"), "{text}");
        // The escaped width counts: columns still line up.
        let col = |l: &str| l.find("12345").unwrap();
        assert_eq!(col(rows[1]), col(rows[2]), "{text}");

        let csv = csv(&m);
        assert_eq!(csv.lines().count(), 2, "{csv:?}");
        assert!(!csv.contains(raw_control), "{csv:?}");
        assert_eq!(
            csv.lines().next(),
            Some("2026-01-01 00:00:00,evil\\e[2J@h,<0.5.0>,\\e]0;pwned\\a,,,12345,2000000,7,m:f/0")
        );

        let j: serde_json::Value = serde_json::from_str(&json(&m)).unwrap();
        assert_eq!(j["rows"][0]["name"], title);
        assert_eq!(j["rows"][1]["name"], "a\nb");
        assert_eq!(j["header"]["node"], "evil\x1b[2J@h");
    }

    #[test]
    fn simple_tables_escape_every_cell() {
        let t = simple_table(
            &["Name", "N"],
            &[vec!["x\x1b[2Jy".into(), "1".into()]],
            &[1],
        );
        assert!(t.contains("x\\e[2Jy"), "{t}");
        assert!(!t.contains('\x1b'), "{t:?}");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let m = Model {
            header: Header {
                node: "n@h".into(),
                clock: Some("2026-01-01 00:00:00".into()),
                cpu_pct: None,
                procs: 1,
                runq: 0,
                memory: MemoryView::default(),
                sort: SortKey::Msgq,
                accumulate: false,
                window_secs: None,
                cost_ms: 1.0,
                agent_heap_bytes: 0,
                agent_heap_limit_bytes: 0,
                os: None,
                schedulers: vec![],
                show_schedulers: false,
            },
            rows: vec![row("<0.5.0>", "a,b", "say \"hi\"")],
        };
        let line = csv(&m);
        assert_eq!(
            line.trim_end(),
            "2026-01-01 00:00:00,n@h,<0.5.0>,\"a,b\",,,12345,2000000,7,\"say \"\"hi\"\"\""
        );
        assert_eq!(
            CSV_HEADER.split(',').count(),
            line.trim_end().split(',').count() - 1
        );
        let j: serde_json::Value = serde_json::from_str(&json(&m)).unwrap();
        assert_eq!(j["rows"][0]["msgq"], 7);
        assert_eq!(j["header"]["sort"], "msgq");
    }
}
