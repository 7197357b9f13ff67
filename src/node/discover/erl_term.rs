//! A reader for the Erlang terms a node keeps in text files (its
//! `-ssl_dist_optfile`): one term ended by a dot, with comments. Enough of
//! the language for option lists: atoms, strings, numbers, characters,
//! lists, tuples, maps, binaries and `fun M:F/A` references. Anything else
//! is an error with its line number, never a guess.
//!
//! The file belongs to another user and may be anything: its size is checked
//! by the caller and nesting is bounded here, so reading it cannot exhaust
//! the stack.

use std::fmt;

/// How deep lists, tuples and maps may nest: option files use three or four
/// levels.
const MAX_DEPTH: usize = 64;

/// A term as read from text.
#[derive(Debug, Clone, PartialEq)]
pub enum ETerm {
    Atom(String),
    /// A string literal (adjacent literals joined, as the compiler does).
    Str(String),
    Int(i128),
    Float(f64),
    List(Vec<ETerm>),
    Tuple(Vec<ETerm>),
    Map(Vec<(ETerm, ETerm)>),
    Binary(Vec<u8>),
    /// A `fun M:F/A` reference: kept as its text, never called.
    Fun(String),
}

impl ETerm {
    /// The text of a string, a binary or a list of character codes: the ways
    /// a file name can be written.
    pub fn as_text(&self) -> Option<String> {
        match self {
            ETerm::Str(s) => Some(s.clone()),
            ETerm::Binary(b) => String::from_utf8(b.clone()).ok(),
            ETerm::List(l) => l
                .iter()
                .map(|c| match c {
                    ETerm::Int(i) => u32::try_from(*i).ok().and_then(char::from_u32),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    pub fn is_atom(&self, name: &str) -> bool {
        matches!(self, ETerm::Atom(a) if a == name)
    }

    /// `{Key, Value}` pairs of a proplist, first occurrence first.
    pub fn pairs(&self) -> Vec<(&str, &ETerm)> {
        let ETerm::List(items) = self else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|i| match i {
                ETerm::Tuple(t) => match t.as_slice() {
                    [ETerm::Atom(k), v] => Some((k.as_str(), v)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }
}

/// Why a file is not one term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(String),
    Var(String),
    Str(String),
    Int(i128),
    Float(f64),
    /// Punctuation and operators: `[ ] { } ( ) , | . : / => << >> #{ #`.
    P(&'static str),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

fn err<T>(line: usize, what: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        what: what.into(),
    })
}

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    fn skip_blank(&mut self) {
        while let Some(&c) = self.chars.peek() {
            if c == '%' {
                while self.chars.peek().is_some_and(|c| *c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// One escape sequence after a backslash, as in Erlang strings.
    fn escape(&mut self) -> Result<char, ParseError> {
        let line = self.line;
        let Some(c) = self.bump() else {
            return err(line, "the file ends inside an escape");
        };
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'e' => '\u{1b}',
            's' => ' ',
            'd' => '\u{7f}',
            '0'..='7' => {
                let mut v = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.bump();
                        }
                        None => break,
                    }
                }
                char::from_u32(v).unwrap_or('\u{fffd}')
            }
            'x' => {
                let mut digits = String::new();
                if self.chars.peek() == Some(&'{') {
                    self.bump();
                    while let Some(c) = self.bump() {
                        if c == '}' {
                            break;
                        }
                        digits.push(c);
                        if digits.len() > 8 {
                            return err(line, "a \\x{...} escape that does not end");
                        }
                    }
                } else {
                    for _ in 0..2 {
                        if let Some(c) = self.chars.peek().copied().filter(char::is_ascii_hexdigit)
                        {
                            digits.push(c);
                            self.bump();
                        }
                    }
                }
                u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or_else(|| err(line, "a bad \\x escape"), Ok)?
            }
            '^' => match self.bump() {
                Some(c) => char::from_u32(u32::from(c) & 0x1f).unwrap_or('\u{fffd}'),
                None => return err(line, "the file ends inside an escape"),
            },
            other => other,
        })
    }

    fn quoted(&mut self, close: char) -> Result<String, ParseError> {
        let line = self.line;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return err(
                        line,
                        format!("a {close}quoted text{close} that does not end"),
                    );
                }
                Some(c) if c == close => return Ok(s),
                Some('\\') => s.push(self.escape()?),
                Some(c) => s.push(c),
            }
        }
    }

    fn number(&mut self, first: char) -> Result<Tok, ParseError> {
        let line = self.line;
        let mut text = String::from(first);
        let mut float = false;
        let digits = |lx: &mut Self, text: &mut String| {
            while let Some(&c) = lx.chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    text.push(c);
                    lx.bump();
                } else {
                    break;
                }
            }
        };
        digits(self, &mut text);
        if let Some((base, rest)) = self.based(&text) {
            return Ok(Tok::Int(
                i128::from_str_radix(&rest, base)
                    .or(err(line, format!("'{text}' is not a number")))?,
            ));
        }
        // A dot followed by a digit continues a float; any other dot ends
        // the term.
        let mut ahead = self.chars.clone();
        if ahead.next() == Some('.') && ahead.next().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            text.push('.');
            self.bump();
            digits(self, &mut text);
            if text.ends_with(['e', 'E'])
                && self.chars.peek().is_some_and(|c| *c == '-' || *c == '+')
            {
                text.push(self.bump().unwrap_or('+'));
                digits(self, &mut text);
            }
        }
        let clean: String = text.chars().filter(|c| *c != '_').collect();
        if float {
            clean
                .parse()
                .map(Tok::Float)
                .or(err(line, format!("'{text}' is not a number")))
        } else {
            clean
                .parse()
                .map(Tok::Int)
                .or(err(line, format!("'{text}' is not a number")))
        }
    }

    /// `16#ff`: the base and the digits.
    fn based(&mut self, base: &str) -> Option<(u32, String)> {
        if self.chars.peek() != Some(&'#') {
            return None;
        }
        let base: u32 = base.parse().ok().filter(|b| (2..=36).contains(b))?;
        self.bump();
        let mut rest = String::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                if c != '_' {
                    rest.push(c);
                }
                self.bump();
            } else {
                break;
            }
        }
        Some((base, rest))
    }

    fn next(&mut self) -> Result<Option<(Tok, usize)>, ParseError> {
        self.skip_blank();
        let line = self.line;
        let Some(c) = self.bump() else {
            return Ok(None);
        };
        let word = |lx: &mut Self, first: char| {
            let mut w = String::from(first);
            while let Some(&c) = lx.chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '@' {
                    w.push(c);
                    lx.bump();
                } else {
                    break;
                }
            }
            w
        };
        let tok = match c {
            'a'..='z' => Tok::Atom(word(self, c)),
            'A'..='Z' | '_' => Tok::Var(word(self, c)),
            c if c.is_alphabetic() && c.is_lowercase() => Tok::Atom(word(self, c)),
            c if c.is_alphabetic() => Tok::Var(word(self, c)),
            '\'' => Tok::Atom(self.quoted('\'')?),
            '"' => Tok::Str(self.quoted('"')?),
            '0'..='9' => self.number(c)?,
            '$' => match self.bump() {
                Some('\\') => Tok::Int(i128::from(u32::from(self.escape()?))),
                Some(c) => Tok::Int(i128::from(u32::from(c))),
                None => return err(line, "the file ends after '$'"),
            },
            '[' => Tok::P("["),
            ']' => Tok::P("]"),
            '{' => Tok::P("{"),
            '}' => Tok::P("}"),
            '(' => Tok::P("("),
            ')' => Tok::P(")"),
            ',' => Tok::P(","),
            '|' => Tok::P("|"),
            '.' => Tok::P("."),
            ':' => Tok::P(":"),
            '/' => Tok::P("/"),
            '-' => Tok::P("-"),
            '=' if self.chars.peek() == Some(&'>') => {
                self.bump();
                Tok::P("=>")
            }
            '<' if self.chars.peek() == Some(&'<') => {
                self.bump();
                Tok::P("<<")
            }
            '>' if self.chars.peek() == Some(&'>') => {
                self.bump();
                Tok::P(">>")
            }
            '#' if self.chars.peek() == Some(&'{') => {
                self.bump();
                Tok::P("#{")
            }
            other => {
                return err(
                    line,
                    format!("'{}' is not part of a term", other.escape_default()),
                );
            }
        };
        Ok(Some((tok, line)))
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Tok, usize)>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<Option<&Tok>, ParseError> {
        if self.peeked.is_none() {
            self.peeked = self.lexer.next()?;
        }
        Ok(self.peeked.as_ref().map(|(t, _)| t))
    }

    fn take(&mut self) -> Result<(Tok, usize), ParseError> {
        self.peek()?;
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => err(self.lexer.line, "the file ends inside a term"),
        }
    }

    fn expect(&mut self, p: &'static str) -> Result<(), ParseError> {
        match self.take()? {
            (Tok::P(q), _) if q == p => Ok(()),
            (t, line) => err(line, format!("expected '{p}', found {}", shown(&t))),
        }
    }

    fn accept(&mut self, p: &'static str) -> Result<bool, ParseError> {
        if self.peek()? == Some(&Tok::P(p)) {
            self.peeked = None;
            return Ok(true);
        }
        Ok(false)
    }

    /// Terms separated by commas up to `close`.
    fn seq(&mut self, close: &'static str, depth: usize) -> Result<Vec<ETerm>, ParseError> {
        let mut items = Vec::new();
        if self.accept(close)? {
            return Ok(items);
        }
        loop {
            items.push(self.term(depth)?);
            if !self.accept(",")? {
                self.expect(close)?;
                return Ok(items);
            }
        }
    }

    fn term(&mut self, depth: usize) -> Result<ETerm, ParseError> {
        let (tok, line) = self.take()?;
        if depth > MAX_DEPTH {
            return err(line, format!("terms nested deeper than {MAX_DEPTH}"));
        }
        Ok(match tok {
            Tok::Atom(a) if a == "fun" => self.fun_ref(line)?,
            Tok::Atom(a) => ETerm::Atom(a),
            Tok::Str(mut s) => {
                while let Some(Tok::Str(_)) = self.peek()? {
                    if let (Tok::Str(more), _) = self.take()? {
                        s.push_str(&more);
                    }
                }
                ETerm::Str(s)
            }
            Tok::Int(i) => ETerm::Int(i),
            Tok::Float(f) => ETerm::Float(f),
            Tok::P("-") => match self.take()? {
                (Tok::Int(i), _) => ETerm::Int(-i),
                (Tok::Float(f), _) => ETerm::Float(-f),
                (t, line) => return err(line, format!("'-' before {}", shown(&t))),
            },
            Tok::P("[") => {
                let mut items = Vec::new();
                if !self.accept("]")? {
                    loop {
                        items.push(self.term(depth + 1)?);
                        if self.accept("|")? {
                            match self.term(depth + 1)? {
                                ETerm::List(tail) => items.extend(tail),
                                ETerm::Str(s) => items.extend(
                                    s.chars().map(|c| ETerm::Int(i128::from(u32::from(c)))),
                                ),
                                _ => return err(line, "an improper list"),
                            }
                            self.expect("]")?;
                            break;
                        }
                        if !self.accept(",")? {
                            self.expect("]")?;
                            break;
                        }
                    }
                }
                ETerm::List(items)
            }
            Tok::P("{") => ETerm::Tuple(self.seq("}", depth + 1)?),
            Tok::P("#{") => {
                let mut pairs = Vec::new();
                if !self.accept("}")? {
                    loop {
                        let k = self.term(depth + 1)?;
                        self.expect("=>")?;
                        let v = self.term(depth + 1)?;
                        pairs.push((k, v));
                        if !self.accept(",")? {
                            self.expect("}")?;
                            break;
                        }
                    }
                }
                ETerm::Map(pairs)
            }
            Tok::P("<<") => self.binary(line)?,
            Tok::Var(v) => {
                return err(line, format!("a variable ('{v}') where a value belongs"));
            }
            t => return err(line, format!("{} where a value belongs", shown(&t))),
        })
    }

    /// `<<"text">>`, `<<1,2,3>>`, `<<"text"/utf8>>`: bytes of strings and
    /// integers, each integer one byte.
    fn binary(&mut self, line: usize) -> Result<ETerm, ParseError> {
        let mut bytes = Vec::new();
        if self.accept(">>")? {
            return Ok(ETerm::Binary(bytes));
        }
        loop {
            match self.take()? {
                (Tok::Str(s), _) => bytes.extend(s.bytes()),
                (Tok::Int(i), l) => {
                    bytes.push(u8::try_from(i).or(err(l, "a binary element outside 0..255"))?)
                }
                (t, l) => return err(l, format!("{} inside a binary", shown(&t))),
            }
            // A type such as /utf8 or /binary: accepted and ignored.
            if self.accept("/")? {
                match self.take()? {
                    (Tok::Atom(_), _) => {}
                    (t, l) => return err(l, format!("{} as a binary type", shown(&t))),
                }
            }
            if !self.accept(",")? {
                self.expect(">>")?;
                return Ok(ETerm::Binary(bytes));
            }
            if bytes.len() > 1 << 20 {
                return err(line, "a binary too large for an option");
            }
        }
    }

    /// `fun m:f/1` or `fun f/1`.
    fn fun_ref(&mut self, line: usize) -> Result<ETerm, ParseError> {
        let mut text = String::from("fun ");
        let first = match self.take()? {
            (Tok::Atom(a), _) => a,
            (t, l) => return err(l, format!("{} after 'fun'", shown(&t))),
        };
        text.push_str(&first);
        if self.accept(":")? {
            match self.take()? {
                (Tok::Atom(f), _) => {
                    text.push(':');
                    text.push_str(&f);
                }
                (t, l) => return err(l, format!("{} in a fun reference", shown(&t))),
            }
        }
        self.expect("/")?;
        match self.take()? {
            (Tok::Int(a), _) => text.push_str(&format!("/{a}")),
            _ => return err(line, "a fun reference without its arity"),
        }
        Ok(ETerm::Fun(text))
    }
}

fn shown(t: &Tok) -> String {
    match t {
        Tok::Atom(a) => format!("the atom '{}'", a.escape_default()),
        Tok::Var(v) => format!("'{}'", v.escape_default()),
        Tok::Str(_) => "a string".into(),
        Tok::Int(i) => format!("the number {i}"),
        Tok::Float(f) => format!("the number {f}"),
        Tok::P(p) => format!("'{p}'"),
    }
}

/// Reads `text` as one term ended by a dot, as the node reads its option
/// file.
pub fn parse(text: &str) -> Result<ETerm, ParseError> {
    let mut p = Parser {
        lexer: Lexer {
            chars: text.chars().peekable(),
            line: 1,
        },
        peeked: None,
    };
    let t = p.term(0)?;
    p.expect(".")?;
    match p.peek()? {
        None => Ok(t),
        Some(t) => {
            let t = shown(t);
            err(p.lexer.line, format!("{t} after the term's final dot"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> ETerm {
        ETerm::Str(x.into())
    }
    fn a(x: &str) -> ETerm {
        ETerm::Atom(x.into())
    }

    #[test]
    fn reads_an_option_file() {
        let text = r#"
            %% TLS for distribution
            [{server, [{certfile, "/etc/ssl/node.pem"}, % the node's own
                       {keyfile, <<"/etc/ssl/node.key">>},
                       {verify, verify_peer}, {fail_if_no_peer_cert, true},
                       {depth, 2}, {versions, ['tlsv1.2', 'tlsv1.3']},
                       {verify_fun, {fun inet_tls_dist:verify_client/3, []}}]},
             {client, [{certfile, "/etc/ssl/" "client.pem"},
                       {cacertfile, [47, 99, 97]},
                       {customize_hostname_check, [{match_fun, fun m:f/2}]},
                       {certs_keys, [#{certfile => "c", keyfile => "k"}]},
                       {server_name_indication, disable}, {hibernate_after, 16#ff},
                       {x, $a}, {y, -1.5e3}, {z, [1 | [2]]}]}].
        "#;
        let t = parse(text).unwrap();
        let top = t.pairs();
        assert_eq!(top.len(), 2);
        let client = top[1].1.pairs();
        assert_eq!(client[0], ("certfile", &s("/etc/ssl/client.pem")));
        assert_eq!(client[1].1.as_text().as_deref(), Some("/ca"));
        assert!(client[4].1.is_atom("disable"));
        assert_eq!(client[5].1, &ETerm::Int(255));
        assert_eq!(client[6].1, &ETerm::Int(97));
        assert_eq!(client[7].1, &ETerm::Float(-1500.0));
        assert_eq!(
            client[8].1,
            &ETerm::List(vec![ETerm::Int(1), ETerm::Int(2)])
        );
        let server = top[0].1.pairs();
        assert_eq!(server[1].1.as_text().as_deref(), Some("/etc/ssl/node.key"));
        assert_eq!(
            server[6].1,
            &ETerm::Tuple(vec![
                ETerm::Fun("fun inet_tls_dist:verify_client/3".into()),
                ETerm::List(vec![])
            ])
        );
        assert_eq!(
            client[3].1,
            &ETerm::List(vec![ETerm::Map(vec![
                (a("certfile"), s("c")),
                (a("keyfile"), s("k"))
            ])])
        );
    }

    #[test]
    fn escapes_and_quoted_atoms() {
        assert!(parse("{'it''s'}.").is_err(), "two atoms side by side");
        let t = parse(r#"{"a\tb\x41\x{263A}\101\^a\"", 'Q r'}."#).unwrap();
        assert_eq!(t, ETerm::Tuple(vec![s("a\tbA\u{263a}A\u{1}\""), a("Q r")]));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, says) in [
            ("[{client, [{certfile, File}]}].", 1, "a variable ('File')"),
            ("[\n{client,\n [}].", 3, "'}' where a value belongs"),
            ("[{client, []}]", 1, "the file ends inside a term"),
            ("[a]. [b].", 1, "after the term's final dot"),
            ("\"open", 1, "does not end"),
            ("[a ! b].", 1, "'!' is not part of a term"),
            ("<<300>>.", 1, "outside 0..255"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}.", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.what.contains("nested deeper"), "{e}");
    }
}
