//! Text for people: units (`human_bytes`), cutting to a width (`truncate`),
//! one line on stderr (`say`), and text from a node or from /proc made safe
//! to show: names are chosen by
//! whoever runs the node (any atom can hold any character), so a control
//! character or an escape sequence in them is shown escaped, never sent to
//! the terminal as a command; JSON keeps every value exact.
//!
//! The convention, C's escapes as `ls --quoting-style=escape` writes them,
//! with Rust's spelling for the rest:
//!
//! - `\a \b \t \n \v \f \r` and `\e` (ESC) for those C0 controls;
//! - `\xNN` (two lowercase hex digits) for the other C0 controls and DEL;
//! - `\u{XXXX}` (lowercase hex) for the C1 controls U+0080–U+009F (U+009B is
//!   a one-character CSI on some terminals), for the Unicode bidirectional
//!   controls U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069 (they
//!   reorder the rest of a terminal line: a name could make a pid or a number
//!   read backwards), and for the line and paragraph separators U+2028, U+2029.
//!
//! A backslash is shown as it is. So escaping is idempotent: text escaped
//! once comes out of a second pass unchanged, and every renderer can apply it
//! at its own boundary (a cell, a header line, the final write) without
//! doubling backslashes. The price is that a name holding a real backslash
//! followed by `e` looks like one holding ESC; the JSON output tells them
//! apart.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that are never written to a terminal as they are.
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        '\0'..='\x1f' | '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with every character [`is_unsafe`] flags written as its escape;
/// borrowed, at no cost, when there is none (the usual case).
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(is_unsafe) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`terminal_safe`] for text made of lines: the newlines that separate them
/// are kept, anything else unsafe is escaped. For whole frames, just before
/// they are written.
pub fn terminal_safe_lines(s: &str) -> Cow<'_, str> {
    if !s.contains(|c: char| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let lines: Vec<Cow<'_, str>> = s.split('\n').map(terminal_safe).collect();
    Cow::Owned(lines.join("\n"))
}

/// serde_json's formatter, plus `\uXXXX` escapes for the characters it
/// leaves raw that a terminal may act on (DEL, C1, bidi controls,
/// separators). The value read back is the same string, so JSON stays exact
/// and `etop --format json` is safe on a terminal too.
struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(is_unsafe) {
            writer.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().unwrap_or(' ');
            // Every unsafe character is in the Basic Multilingual Plane: one
            // `\uXXXX` escape each.
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// `value` as one line of JSON, every string exact and terminal-safe.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, SafeJson);
    match value.serialize(&mut ser) {
        // serde_json writes UTF-8 only.
        Ok(()) => String::from_utf8(buf).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
    }
}

/// One line on stderr, `etop: ` first, made safe (an error line may quote a
/// name a node or EPMD sent).
pub fn say(msg: impl std::fmt::Display) {
    eprintln!("etop: {}", terminal_safe(&msg.to_string()));
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

/// Width in terminal columns, counted in characters.
pub fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` made terminal-safe, then cut to `width` characters, marking the cut
/// with `…`.
pub fn truncate(s: &str, width: usize) -> String {
    let s = terminal_safe(s);
    if self::width(&s) <= width {
        return s.into_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_clean_text_is_borrowed() {
        let title = "\x1b]0;pwned\x07";
        assert_eq!(terminal_safe(title), "\\e]0;pwned\\a");
        assert_eq!(terminal_safe("\x1b[2J"), "\\e[2J");
        assert_eq!(terminal_safe("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(terminal_safe("\0\x01\x7f"), "\\x00\\x01\\x7f");
        assert_eq!(terminal_safe("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(terminal_safe("\u{85}"), "\\u{85}");
        assert_eq!(terminal_safe("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(terminal_safe("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
        assert_eq!(terminal_safe("\u{2028}\u{200f}"), "\\u{2028}\\u{200f}");
        for clean in [
            "gen_server:loop/7",
            "Elixir.Demo.Worker",
            "café_ñ",
            "节点",
            "",
        ] {
            assert!(matches!(terminal_safe(clean), Cow::Borrowed(_)), "{clean}");
        }
        // Printable neighbours of the unsafe ranges stay as they are.
        assert_eq!(
            terminal_safe(" ~\u{a0}\u{2027}\u{202f}"),
            " ~\u{a0}\u{2027}\u{202f}"
        );
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let all: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        let once = terminal_safe(&all).into_owned();
        assert!(!once.contains(is_unsafe));
        assert_eq!(terminal_safe(&once), once);
        assert_eq!(terminal_safe("a\\eb"), "a\\eb");
    }

    #[test]
    fn lines_keep_their_newlines_only() {
        assert_eq!(terminal_safe_lines("a\nb\x1b[2J\n"), "a\nb\\e[2J\n");
        assert!(matches!(terminal_safe_lines("a\nb\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_is_exact_and_holds_no_raw_control() {
        let nasty: String = "\x1b]0;pwned\x07 \x7f \u{9b} \u{202e} \n \"q\" \\ ok é"
            .chars()
            .collect();
        let line = json(&serde_json::json!({ "name": nasty }));
        assert!(!line.contains(is_unsafe), "{line:?}");
        assert!(
            line.contains("\\u009b") && line.contains("\\u202e"),
            "{line}"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["name"], nasty.as_str());
    }
}
