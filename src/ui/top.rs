//! The interactive screen, like top and htop: the frame drawn with ratatui,
//! a selected row that follows its process across re-sorts, single keys
//! (sort, pause, interval, accumulate, filter, detail), a help overlay and
//! a filter prompt. What a key changes on the node side goes back to the
//! feed as a `Control`; the screen keeps the rest.

use super::table;
use super::term::Key;
use crate::text::terminal_safe;
use crate::views::column::{Align, Grid};
use crate::views::filter::{self, ProcFields};
use crate::views::{Control, Frame, Keys};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use std::collections::HashMap;
use std::io::{self, Stdout};
use std::time::Duration;

/// What a key asks of the session.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    Quit,
    /// Tell the feed (sort, filter, rows, detail, accumulate).
    Feed(Control),
    /// Sample every this long from now on.
    Interval(Duration),
    Pause(bool),
}

/// The intervals `+` and `-` step through.
const INTERVALS: [f64; 10] = [0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0];

/// Lines of the screen that are not table rows: a blank line and the
/// titles above the table, the status line and the keys line below.
const CHROME: usize = 4;
/// Warning lines shown under the table at most; more are counted.
const WARN_LINES: usize = 3;

/// The lines under the table a frame's warnings take (with the blank line
/// above them).
fn footer_lines(f: Option<&Frame>) -> usize {
    match f.map(|f| f.footer.len()).unwrap_or(0) {
        0 => 0,
        n => n.min(WARN_LINES) + 1,
    }
}

/// The warning lines as shown: the first few, then how many more.
fn footer_text(f: &Frame, width: usize) -> Vec<String> {
    let mut out: Vec<String> = f
        .footer
        .iter()
        .take(WARN_LINES)
        .map(|l| crate::text::truncate(l, width))
        .collect();
    if f.footer.len() > WARN_LINES {
        let more = f.footer.len() - WARN_LINES + 1;
        out.pop();
        out.push(format!(
            "! … and {more} more warnings (--format json lists them all)"
        ));
    }
    out
}

pub struct Top {
    term: Terminal<CrosstermBackend<Stdout>>,
    keys: Keys,
    frame: Option<Frame>,
    interval: Duration,
    paused: bool,
    help: bool,
    /// The filter being typed, and what is wrong with it.
    prompt: Option<(String, Option<String>)>,
    /// The filter in force, as typed.
    filter: Option<String>,
    /// The pid whose detail is shown.
    detail: Option<String>,
    /// The selected row: its id, and its place.
    selected: Option<String>,
    cursor: usize,
    offset: usize,
    /// The widest each column has been: widths may grow, never jump back.
    widths: HashMap<String, usize>,
    /// Rows the node was last asked for.
    rows_asked: usize,
    sort: usize,
    accumulate: bool,
    status: String,
}

impl Top {
    /// The screen (already in raw mode and on the alternate screen).
    pub fn new(keys: Keys, interval: Duration) -> io::Result<Top> {
        let term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        Ok(Top {
            term,
            sort: keys.sort,
            accumulate: keys.accumulate.unwrap_or(false),
            keys,
            frame: None,
            interval,
            paused: false,
            help: false,
            prompt: None,
            filter: None,
            detail: None,
            selected: None,
            cursor: 0,
            offset: 0,
            widths: HashMap::new(),
            rows_asked: 0,
            status: String::new(),
        })
    }

    /// How many table rows fit the screen under the frame's header.
    pub fn capacity(&self) -> usize {
        let height = self.term.size().map(|s| s.height as usize).unwrap_or(24);
        let header = self.frame.as_ref().map(|f| f.header.len()).unwrap_or(5);
        let footer = footer_lines(self.frame.as_ref());
        height.saturating_sub(header + CHROME + footer).max(1)
    }

    /// When the view takes as many rows as fit, what to ask the node for
    /// after the screen (or the header) changed size.
    pub fn rows_wanted(&mut self) -> Option<Act> {
        if !self.keys.fit_rows {
            return None;
        }
        // Warnings come and go; the rows asked of the node stay put.
        let want = self.capacity() + footer_lines(self.frame.as_ref());
        (want != self.rows_asked).then(|| {
            self.rows_asked = want;
            Act::Feed(Control::Rows(want))
        })
    }

    /// A new frame; while paused it is kept for later.
    pub fn show(&mut self, f: Frame) {
        if self.paused {
            return;
        }
        self.status.clear();
        let ids = ids(&f);
        // The selection follows its row, wherever the new order puts it.
        if let Some(i) = self
            .selected
            .as_ref()
            .and_then(|sel| ids.iter().position(|id| id == sel))
        {
            self.cursor = i;
        }
        self.cursor = self.cursor.min(ids.len().saturating_sub(1));
        self.selected = ids.get(self.cursor).cloned();
        self.frame = Some(f);
    }

    pub fn set_status(&mut self, s: String) {
        self.status = s;
    }

    pub fn has_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// Handles a key; what the session must do.
    pub fn on_key(&mut self, k: Key) -> Vec<Act> {
        if let Some((text, err)) = &mut self.prompt {
            match k {
                Key::Esc => self.prompt = None,
                Key::Backspace => {
                    text.pop();
                    *err = None;
                }
                Key::Char(c) => {
                    text.push(c);
                    *err = None;
                }
                Key::Enter => {
                    let typed = text.trim().to_string();
                    return match filter::parse(&typed, &ProcFields) {
                        Ok(expr) => {
                            self.prompt = None;
                            self.filter = expr.as_ref().map(|_| typed);
                            self.cursor = 0;
                            self.offset = 0;
                            self.selected = None;
                            vec![Act::Feed(Control::Filter(expr))]
                        }
                        Err(e) => {
                            *err = Some(e.to_string());
                            Vec::new()
                        }
                    };
                }
                _ => {}
            }
            return Vec::new();
        }
        if self.help {
            match k {
                Key::Char('q') => return vec![Act::Quit],
                _ => self.help = false,
            }
            return Vec::new();
        }
        match k {
            Key::Char('q') => vec![Act::Quit],
            Key::Char('?') | Key::Char('h') => {
                self.help = true;
                Vec::new()
            }
            Key::Esc => {
                if self.detail.take().is_some() {
                    vec![Act::Feed(Control::Detail(None))]
                } else if self.filter.take().is_some() {
                    vec![Act::Feed(Control::Filter(None))]
                } else {
                    Vec::new()
                }
            }
            Key::Char(' ') => {
                self.paused = !self.paused;
                vec![Act::Pause(self.paused)]
            }
            Key::Char('+') | Key::Char('-') => {
                let now = self.interval.as_secs_f64();
                let next = if k == Key::Char('+') {
                    INTERVALS.iter().copied().find(|&i| i > now + 1e-9)
                } else {
                    INTERVALS.iter().rev().copied().find(|&i| i < now - 1e-9)
                };
                match next {
                    Some(i) => {
                        self.interval = Duration::from_secs_f64(i);
                        vec![Act::Interval(self.interval)]
                    }
                    None => Vec::new(),
                }
            }
            _ if self.detail.is_some() => Vec::new(),
            Key::Char('a') if self.keys.accumulate.is_some() => {
                self.accumulate = !self.accumulate;
                vec![Act::Feed(Control::Accumulate(self.accumulate))]
            }
            Key::Char('/') if self.keys.filter => {
                self.prompt = Some((self.filter.clone().unwrap_or_default(), None));
                Vec::new()
            }
            Key::Enter if self.keys.detail => match self.selected.clone() {
                Some(pid) => {
                    self.detail = Some(pid.clone());
                    vec![Act::Feed(Control::Detail(Some(pid)))]
                }
                None => Vec::new(),
            },
            Key::Char('<') | Key::Char('>') if !self.keys.sorts.is_empty() => {
                let n = self.keys.sorts.len();
                self.sort = if k == Key::Char('>') {
                    (self.sort + 1) % n
                } else {
                    (self.sort + n - 1) % n
                };
                vec![Act::Feed(Control::Sort(self.keys.sorts[self.sort].key))]
            }
            Key::Char(c) => match self.keys.sorts.iter().position(|s| s.letter == Some(c)) {
                Some(i) => {
                    self.sort = i;
                    vec![Act::Feed(Control::Sort(self.keys.sorts[i].key))]
                }
                None => Vec::new(),
            },
            Key::Up | Key::Down | Key::PageUp | Key::PageDown | Key::Home | Key::End => {
                self.move_selection(k);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn move_selection(&mut self, k: Key) {
        let Some(f) = &self.frame else { return };
        let ids = ids(f);
        if ids.is_empty() {
            return;
        }
        let page = self.capacity().max(1);
        let last = ids.len() - 1;
        self.cursor = match k {
            Key::Up => self.cursor.saturating_sub(1),
            Key::Down => (self.cursor + 1).min(last),
            Key::PageUp => self.cursor.saturating_sub(page),
            Key::PageDown => (self.cursor + page).min(last),
            Key::Home => 0,
            Key::End => last,
            _ => self.cursor,
        };
        self.selected = ids.get(self.cursor).cloned();
    }

    /// Clears the screen before the next draw (after a resize).
    pub fn invalidate(&mut self) -> io::Result<()> {
        self.term.autoresize()?;
        self.term.clear()
    }

    /// Draws the screen.
    pub fn draw(&mut self) -> io::Result<()> {
        let view = View::of(self);
        let rows_fit = self.capacity();
        // The window of rows shown keeps the selection in view.
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + rows_fit {
            self.offset = self.cursor + 1 - rows_fit;
        }
        let offset = self.offset;
        let widths = &mut self.widths;
        self.term.draw(|f| view.draw(f, offset, rows_fit, widths))?;
        Ok(())
    }
}

/// The ids of a frame's rows, by its id column.
fn ids(f: &Frame) -> Vec<String> {
    let Some(key) = f.id_column else {
        return Vec::new();
    };
    let Some(g) = f.grids.first() else {
        return Vec::new();
    };
    let Some(col) = g.columns.iter().position(|c| c.key == key) else {
        return Vec::new();
    };
    g.rows.iter().map(|r| r[col].to_text()).collect()
}

/// What one draw needs, taken from the screen's state.
struct View {
    frame: Option<Frame>,
    detail: bool,
    cursor: usize,
    footer: String,
    keys_line: String,
    prompt: Option<(String, Option<String>)>,
    help: Option<Vec<String>>,
}

impl View {
    fn of(t: &Top) -> View {
        let mut footer = if t.status.is_empty() {
            t.frame.as_ref().map(|f| f.note.clone()).unwrap_or_default()
        } else {
            format!("!! {}", t.status)
        };
        if t.paused {
            footer = format!("PAUSED (space resumes) · {footer}");
        }
        if let Some(flt) = &t.filter {
            footer = format!("filter: {flt} (Esc clears) · {footer}");
        }
        let keys_line = if t.detail.is_some() {
            "Esc back · space pause · +/- interval · ? help · q quit".to_string()
        } else {
            let mut k = vec![format!("every {:.1} s", t.interval.as_secs_f64())];
            if !t.keys.sorts.is_empty() {
                let letters: Vec<String> = t
                    .keys
                    .sorts
                    .iter()
                    .filter_map(|s| s.letter.map(|l| format!("{l} {}", s.name)))
                    .collect();
                k.push(format!("{} · </> sort", letters.join(" ")));
            }
            if t.keys.filter {
                k.push("/ filter".into());
            }
            if t.keys.detail {
                k.push("Enter detail".into());
            }
            k.push("space pause · ? help · q quit".into());
            k.join(" · ")
        };
        View {
            frame: t.frame.clone(),
            detail: t.detail.is_some(),
            cursor: t.cursor,
            footer,
            keys_line,
            prompt: t.prompt.clone(),
            help: t.help.then(|| help_lines(&t.keys)),
        }
    }

    fn draw(
        &self,
        f: &mut ratatui::Frame<'_>,
        offset: usize,
        rows_fit: usize,
        widths: &mut HashMap<String, usize>,
    ) {
        let area = f.area();
        let Some(frame) = &self.frame else {
            f.render_widget(Paragraph::new("waiting for the first frame…"), area);
            return;
        };
        let [body, status, keys] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        if self.detail {
            // The detail page is text: its header lines and its sections.
            let text = super::frame::text(frame, area.width as usize, usize::MAX);
            let lines: Vec<Line<'_>> = text.lines().map(|l| Line::raw(l.to_string())).collect();
            f.render_widget(Paragraph::new(lines), body);
        } else {
            let header: Vec<Line<'_>> = frame
                .header
                .iter()
                .map(|l| Line::raw(crate::text::truncate(l, area.width as usize)))
                .collect();
            let warn = footer_lines(Some(frame));
            let [head, _, table_area, warn_area] = Layout::vertical([
                Constraint::Length(header.len() as u16),
                Constraint::Length(1),
                Constraint::Min(1),
                Constraint::Length(warn as u16),
            ])
            .areas(body);
            f.render_widget(Paragraph::new(header), head);
            if warn > 0 {
                let mut lines = vec![Line::raw("")];
                lines.extend(
                    footer_text(frame, area.width as usize)
                        .into_iter()
                        .map(Line::raw),
                );
                f.render_widget(Paragraph::new(lines), warn_area);
            }
            if let Some(g) = frame.grids.first() {
                self.draw_table(f, table_area, g, offset, rows_fit, widths);
            }
        }
        let status_line = match &self.prompt {
            Some((text, err)) => format!(
                "filter: {text}▏{}",
                err.as_ref().map(|e| format!("   {e}")).unwrap_or_default()
            ),
            None => self.footer.clone(),
        };
        f.render_widget(
            Paragraph::new(crate::text::truncate(&status_line, area.width as usize)),
            status,
        );
        f.render_widget(
            Paragraph::new(crate::text::truncate(&self.keys_line, area.width as usize))
                .style(Style::default().add_modifier(Modifier::DIM)),
            keys,
        );
        if let Some(help) = &self.help {
            let w = (help.iter().map(|l| l.chars().count()).max().unwrap_or(20) + 4)
                .min(area.width as usize) as u16;
            let h = (help.len() + 2).min(area.height as usize) as u16;
            let pop = Rect {
                x: area.width.saturating_sub(w) / 2,
                y: area.height.saturating_sub(h) / 2,
                width: w,
                height: h,
            };
            f.render_widget(Clear, pop);
            let lines: Vec<Line<'_>> = help.iter().map(|l| Line::raw(l.clone())).collect();
            f.render_widget(
                Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
                pop,
            );
        }
    }

    fn draw_table(
        &self,
        f: &mut ratatui::Frame<'_>,
        area: Rect,
        g: &Grid,
        offset: usize,
        rows_fit: usize,
        widths: &mut HashMap<String, usize>,
    ) {
        // A column that only some sorts fill comes and goes with the sort
        // (the operator asked for it); the mark column keeps its place, so
        // that a warning never shifts the table.
        let shown: Vec<usize> = (0..g.columns.len())
            .filter(|&i| g.columns[i].show.text)
            .filter(|&i| {
                let c = &g.columns[i];
                !(c.show.only_when_set && c.show.csv)
                    || g.rows
                        .iter()
                        .any(|r| !r[i].to_text().is_empty() && r[i].to_text() != "-")
            })
            .collect();
        let cells: Vec<Vec<String>> = g
            .rows
            .iter()
            .map(|r| {
                shown
                    .iter()
                    .map(|&i| terminal_safe(&r[i].to_text()).into_owned())
                    .collect()
            })
            .collect();
        // Natural widths, never narrower than any earlier frame's.
        let natural: Vec<usize> = shown
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let key = g.columns[i].key.to_string();
                let now = cells
                    .iter()
                    .map(|r| crate::text::width(&r[n]))
                    .chain(std::iter::once(crate::text::width(&g.columns[i].title)))
                    .max()
                    .unwrap_or(0);
                let w = widths.entry(key).or_insert(0);
                *w = (*w).max(now);
                *w
            })
            .collect();
        let flex: Vec<bool> = shown.iter().map(|&i| g.columns[i].flex).collect();
        let fitted = table::fit(&natural, &flex, area.width as usize);
        let align = |i: usize| g.columns[shown[i]].align;
        let cell = |i: usize, s: &str| {
            let s = crate::text::truncate(s, fitted[i]);
            let text = if align(i) == Align::Right {
                format!("{s:>w$}", w = fitted[i])
            } else {
                s
            };
            Cell::from(text)
        };
        let titles = Row::new(
            shown
                .iter()
                .enumerate()
                .map(|(n, &i)| cell(n, &g.columns[i].title)),
        )
        .style(Style::default().add_modifier(Modifier::BOLD));
        let rows: Vec<Row<'_>> = cells
            .iter()
            .enumerate()
            .skip(offset)
            .take(rows_fit)
            .map(|(r, row)| {
                let style = if r == self.cursor {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                Row::new(row.iter().enumerate().map(|(n, s)| cell(n, s))).style(style)
            })
            .collect();
        let constraints: Vec<Constraint> = fitted
            .iter()
            .map(|w| Constraint::Length(*w as u16))
            .collect();
        f.render_widget(
            Table::new(rows, constraints)
                .header(titles)
                .column_spacing(table::GAP as u16),
            area,
        );
    }
}

/// The help overlay: every key, what it does.
fn help_lines(keys: &Keys) -> Vec<String> {
    let mut l = Vec::new();
    for s in &keys.sorts {
        if let Some(c) = s.letter {
            l.push(format!("{c}          sort by {}", s.name));
        }
    }
    if !keys.sorts.is_empty() {
        l.push("< >        sort by the previous / next column".into());
    }
    l.push("space      pause or resume".into());
    l.push("+ -        longer or shorter interval".into());
    if keys.accumulate.is_some() {
        l.push("a          accumulate: total reductions on or off".into());
    }
    l.push("arrows     move the selection; PgUp PgDn Home End page".into());
    if keys.filter {
        l.push("/          filter: a name, or mq>100 mem>10M reds>1000".into());
    }
    if keys.detail {
        l.push("Enter      the selected process in detail".into());
    }
    l.push("Esc        close this, the detail, or clear the filter".into());
    l.push("?          this help".into());
    l.push("q, Ctrl-C  quit".into());
    l.push(String::new());
    l.push("any key closes this help".into());
    l
}

/// For tests and the help text: the keys a view with `keys` answers.
pub fn help_text(keys: &Keys) -> String {
    help_lines(keys).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            sorts: crate::views::procs::sorts(),
            sort: 0,
            accumulate: Some(false),
            filter: true,
            detail: true,
            fit_rows: true,
        }
    }

    #[test]
    fn the_help_names_pause_and_filter() {
        let h = help_text(&keys());
        assert!(h.contains("pause") && h.contains("filter"), "{h}");
        assert!(h.contains("M          sort by memory"), "{h}");
    }

    #[test]
    fn filter_syntax_shared_with_the_command_line() {
        assert!(filter::parse("mq>100 mem>10M reds>1000 worker", &ProcFields).is_ok());
        assert!(filter::parse("mq>>1", &ProcFields).is_err());
    }
}
