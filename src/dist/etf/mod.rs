//! The external term format as etop reads it from the wire: a decoder over a
//! byte slice that can be handed anything a peer likes and still returns in
//! bounded time, stack and memory.
//!
//! Three bounds, all checked before anything is allocated:
//! - nesting depth ([`MAX_DEPTH`]), so a list nested thousands deep is an
//!   error instead of a stack overflow (here, or later when the term is
//!   dropped, compared or printed, which all recurse too);
//! - every declared count or length against the bytes left, since every
//!   element takes at least one byte: a 10-byte message cannot claim four
//!   billion elements;
//! - a budget for the decoded size ([`DECODE_BUDGET_BYTES`]), because one byte
//!   on the wire (`[]`) becomes a whole `Term` in memory, and a map entry
//!   costs a hash table slot: a frame of the largest size we accept could
//!   otherwise expand a hundredfold.
//!
//! Encodings etop never negotiates (atom cache references, distribution
//! headers, compressed terms, OTP 26 local terms) are refused as errors.

use erl_dist::term::{
    Atom, BigInteger, Binary, BitBinary, ExternalFun, FixInteger, Float, ImproperList, InternalFun,
    List, Map, Pid, Port, Reference, Term, Tuple,
};
use std::collections::HashMap;

/// How deep terms may nest. The deepest term etop ever receives is the
/// agent's own source as `erl_parse` returns it: 31 levels, so this leaves
/// room for an agent eight times as convoluted. Dropping, comparing and
/// printing a term of this depth takes well under a megabyte of stack.
pub const MAX_DEPTH: usize = 256;

/// How much memory one message may take once decoded. A process frame of
/// 10,000 rows (the most `--lines` allows) decodes to about 10 MB; ports and
/// ETS rows are smaller.
pub const DECODE_BUDGET_BYTES: usize = 64 << 20;

/// Integers wider than this are refused: nothing etop reads is wider than 64
/// bits, and printing a huge integer takes time quadratic in its size.
pub const MAX_BIG_BYTES: usize = 1024;

/// Atoms hold at most 255 characters, of at most four bytes each.
const MAX_ATOM_BYTES: usize = 255 * 4;

/// References carry at most five words (OTP 24+ with `V4_NC`).
const MAX_REF_WORDS: usize = 5;

const TERM_BYTES: usize = std::mem::size_of::<Term>();
/// What one map entry may cost: a key and a value with the table's control
/// byte, in a table sized to a power of two at 7/8 load (up to 2.3 slots
/// per entry).
const MAP_ENTRY_BYTES: usize = 3 * (2 * TERM_BYTES + 1);

const VERSION: u8 = 131;

mod tag {
    pub const NEW_FLOAT: u8 = 70;
    pub const BIT_BINARY: u8 = 77;
    pub const NEW_PID: u8 = 88;
    pub const NEW_PORT: u8 = 89;
    pub const NEWER_REFERENCE: u8 = 90;
    pub const SMALL_INTEGER: u8 = 97;
    pub const INTEGER: u8 = 98;
    pub const FLOAT: u8 = 99;
    pub const ATOM: u8 = 100;
    pub const REFERENCE: u8 = 101;
    pub const PORT: u8 = 102;
    pub const PID: u8 = 103;
    pub const SMALL_TUPLE: u8 = 104;
    pub const LARGE_TUPLE: u8 = 105;
    pub const NIL: u8 = 106;
    pub const STRING: u8 = 107;
    pub const LIST: u8 = 108;
    pub const BINARY: u8 = 109;
    pub const SMALL_BIG: u8 = 110;
    pub const LARGE_BIG: u8 = 111;
    pub const NEW_FUN: u8 = 112;
    pub const EXPORT: u8 = 113;
    pub const NEW_REFERENCE: u8 = 114;
    pub const SMALL_ATOM: u8 = 115;
    pub const MAP: u8 = 116;
    pub const FUN: u8 = 117;
    pub const ATOM_UTF8: u8 = 118;
    pub const SMALL_ATOM_UTF8: u8 = 119;
    pub const V4_PORT: u8 = 120;
    // Known, and refused: etop never negotiates them.
    pub const DIST_HEADER: u8 = 68;
    pub const DIST_FRAG_HEADER: u8 = 69;
    pub const COMPRESSED: u8 = 80;
    pub const ATOM_CACHE_REF: u8 = 82;
    pub const LOCAL: u8 = 121;
}

/// Why a term could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtfError {
    #[error("it ends in the middle of a term")]
    Truncated,
    #[error("a term starts with byte {0}, not the format version 131")]
    Version(u8),
    #[error("its terms nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("it would take more than {} MB once decoded", DECODE_BUDGET_BYTES >> 20)]
    OverBudget,
    #[error("it declares {declared} {what} but only {left} bytes follow")]
    CountTooLarge {
        what: &'static str,
        declared: u64,
        left: usize,
    },
    #[error("it uses {0}, which etop never asks for")]
    Unsupported(&'static str),
    #[error("it has an unknown tag {0}")]
    UnknownTag(u8),
    #[error("it has {0}")]
    Invalid(&'static str),
    #[error("{0} bytes follow the last term")]
    Trailing(usize),
}

impl EtfError {
    /// True when the bytes may be well formed but exceed what etop accepts
    /// (too deep, too big); false when they are simply malformed.
    pub fn is_too_big(&self) -> bool {
        matches!(self, EtfError::TooDeep | EtfError::OverBudget)
    }
}

type Result<T> = std::result::Result<T, EtfError>;

/// Decodes one or more consecutive terms from a byte slice, sharing one
/// memory budget.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    budget_left: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder::with_budget(buf, DECODE_BUDGET_BYTES)
    }

    pub fn with_budget(buf: &'a [u8], budget_bytes: usize) -> Decoder<'a> {
        Decoder {
            buf,
            pos: 0,
            budget_left: budget_bytes,
        }
    }

    /// Bytes not decoded yet.
    pub fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// How much of the budget the terms decoded so far have used.
    pub fn budget_left(&self) -> usize {
        self.budget_left
    }

    /// One term with its version byte (131), as each term of a message is
    /// encoded.
    pub fn versioned_term(&mut self) -> Result<Term> {
        let v = self.u8()?;
        if v != VERSION {
            return Err(EtfError::Version(v));
        }
        self.charge(TERM_BYTES)?;
        self.term(0)
    }

    /// Fails unless every byte was decoded.
    pub fn finish(&self) -> Result<()> {
        match self.left() {
            0 => Ok(()),
            n => Err(EtfError::Trailing(n)),
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.budget_left = self
            .budget_left
            .checked_sub(bytes)
            .ok_or(EtfError::OverBudget)?;
        Ok(())
    }

    /// Charges `count` items of `each` bytes, after checking that the input
    /// has at least `min_bytes_each` bytes for every one of them.
    fn charge_items(
        &mut self,
        what: &'static str,
        count: u64,
        min_bytes_each: usize,
        each: usize,
    ) -> Result<usize> {
        let too_many = EtfError::CountTooLarge {
            what,
            declared: count,
            left: self.left(),
        };
        let n = usize::try_from(count).map_err(|_| too_many.clone())?;
        if n.checked_mul(min_bytes_each)
            .is_none_or(|b| b > self.left())
        {
            return Err(too_many);
        }
        self.charge(n.checked_mul(each).ok_or(EtfError::OverBudget)?)?;
        Ok(n)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(EtfError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Bytes that become a `Vec<u8>` or a `String` of the same length.
    fn owned_bytes(&mut self, what: &'static str, len: u64) -> Result<Vec<u8>> {
        let n = self.charge_items(what, len, 1, 1)?;
        Ok(self.take(n)?.to_vec())
    }

    /// One term. The work of each tag is in a function of its own, never
    /// inlined, so that the frame of this function, which recursion
    /// repeats at every level, stays small even in a debug build.
    fn term(&mut self, depth: usize) -> Result<Term> {
        if depth > MAX_DEPTH {
            return Err(EtfError::TooDeep);
        }
        let t = self.u8()?;
        match t {
            tag::SMALL_TUPLE | tag::LARGE_TUPLE => self.tuple(t, depth),
            tag::LIST => self.list(depth),
            tag::MAP => self.map(depth),
            tag::NEW_FUN | tag::FUN => self.fun(t, depth),
            _ => self.leaf(t),
        }
    }

    /// A term that holds no other terms.
    #[inline(never)]
    fn leaf(&mut self, t: u8) -> Result<Term> {
        Ok(match t {
            tag::SMALL_INTEGER => FixInteger::from(i32::from(self.u8()?)).into(),
            tag::INTEGER => FixInteger::from(self.i32()?).into(),
            tag::SMALL_BIG => {
                let n = u64::from(self.u8()?);
                self.big(n)?.into()
            }
            tag::LARGE_BIG => {
                let n = u64::from(self.u32()?);
                self.big(n)?.into()
            }
            tag::NEW_FLOAT => {
                let v = f64::from_bits(self.u64()?);
                Float::try_from(v)
                    .map_err(|_| EtfError::Invalid("a float that is not finite"))?
                    .into()
            }
            tag::FLOAT => self.old_float()?.into(),
            tag::ATOM | tag::SMALL_ATOM | tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8 => {
                self.atom_body(t)?.into()
            }
            tag::NIL => List::nil().into(),
            tag::STRING => {
                let n = u64::from(self.u16()?);
                eetf::ByteList::from(self.owned_bytes("string bytes", n)?).into()
            }
            tag::BINARY => {
                let n = u64::from(self.u32()?);
                Binary::from(self.owned_bytes("binary bytes", n)?).into()
            }
            tag::BIT_BINARY => self.bit_binary()?.into(),
            tag::PID | tag::NEW_PID => self.pid_body(t)?.into(),
            tag::PORT | tag::NEW_PORT | tag::V4_PORT => self.port_body(t)?.into(),
            tag::REFERENCE | tag::NEW_REFERENCE | tag::NEWER_REFERENCE => {
                self.charge(std::mem::size_of::<Reference>())?;
                self.reference_body(t)?.into()
            }
            tag::EXPORT => {
                self.charge(std::mem::size_of::<ExternalFun>())?;
                let module = self.atom()?;
                let function = self.atom()?;
                let arity = match self.small_int()? {
                    a @ 0..=255 => a as u8,
                    _ => return Err(EtfError::Invalid("an export with an arity over 255")),
                };
                ExternalFun {
                    module,
                    function,
                    arity,
                }
                .into()
            }
            tag::ATOM_CACHE_REF => return Err(EtfError::Unsupported("an atom cache reference")),
            tag::COMPRESSED => return Err(EtfError::Unsupported("a compressed term")),
            tag::DIST_HEADER | tag::DIST_FRAG_HEADER => {
                return Err(EtfError::Unsupported("a distribution header"));
            }
            tag::LOCAL => return Err(EtfError::Unsupported("a node-local term")),
            other => return Err(EtfError::UnknownTag(other)),
        })
    }

    #[inline(never)]
    fn tuple(&mut self, t: u8, depth: usize) -> Result<Term> {
        let n = match t {
            tag::SMALL_TUPLE => u64::from(self.u8()?),
            _ => u64::from(self.u32()?),
        };
        Ok(Tuple::from(self.elements("tuple elements", n, depth)?).into())
    }

    #[inline(never)]
    fn fun(&mut self, t: u8, depth: usize) -> Result<Term> {
        self.charge(std::mem::size_of::<InternalFun>())?;
        Ok(match t {
            tag::NEW_FUN => self.new_fun(depth)?,
            _ => self.old_fun(depth)?,
        }
        .into())
    }

    /// `count` terms one level down, into a vector whose size was charged
    /// before it was allocated.
    #[inline(never)]
    fn elements(&mut self, what: &'static str, count: u64, depth: usize) -> Result<Vec<Term>> {
        let n = self.charge_items(what, count, 1, TERM_BYTES)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.term(depth + 1)?);
        }
        Ok(v)
    }

    #[inline(never)]
    fn list(&mut self, depth: usize) -> Result<Term> {
        let n = u64::from(self.u32()?);
        // The tail takes a byte too.
        if self.left() == 0 {
            return Err(EtfError::Truncated);
        }
        let elements = self.elements("list elements", n, depth)?;
        self.charge(TERM_BYTES)?;
        let tail = self.term(depth + 1)?;
        match tail {
            Term::List(l) if l.is_nil() => Ok(List::from(elements).into()),
            last => Ok(ImproperList::from((elements, last)).into()),
        }
    }

    #[inline(never)]
    fn map(&mut self, depth: usize) -> Result<Term> {
        let n = u64::from(self.u32()?);
        let n = self.charge_items("map entries", n, 2, MAP_ENTRY_BYTES)?;
        let mut m = HashMap::with_capacity(n);
        for _ in 0..n {
            let k = self.term(depth + 1)?;
            let v = self.term(depth + 1)?;
            m.insert(k, v);
        }
        Ok(Map::from(m).into())
    }

    fn big(&mut self, n: u64) -> Result<BigInteger> {
        let sign = match self.u8()? {
            0 => num_bigint::Sign::Plus,
            1 => num_bigint::Sign::Minus,
            _ => {
                return Err(EtfError::Invalid(
                    "an integer with a sign byte other than 0 or 1",
                ));
            }
        };
        if n > MAX_BIG_BYTES as u64 {
            return Err(EtfError::Unsupported("an integer wider than 8192 bits"));
        }
        let n = self.charge_items("integer bytes", n, 1, 1)?;
        let digits = self.take(n)?;
        Ok(BigInteger {
            value: num_bigint::BigInt::from_bytes_le(sign, digits),
        })
    }

    fn old_float(&mut self) -> Result<Float> {
        let raw = self.take(31)?;
        let text = std::str::from_utf8(raw)
            .map_err(|_| EtfError::Invalid("a float in text that is not ASCII"))?;
        let v: f64 = text
            .trim_end_matches('\0')
            .trim()
            .parse()
            .map_err(|_| EtfError::Invalid("a float in text that does not parse"))?;
        Float::try_from(v).map_err(|_| EtfError::Invalid("a float that is not finite"))
    }

    fn bit_binary(&mut self) -> Result<BitBinary> {
        let n = u64::from(self.u32()?);
        let bits = self.u8()?;
        let mut bytes = self.owned_bytes("bitstring bytes", n)?;
        match (bytes.last_mut(), bits) {
            (None, 0) => {}
            // The last byte's used bits come first; keep them in the low
            // bits, as the rest of etop's term library expects.
            (Some(last), 1..=8) => *last >>= 8 - bits,
            _ => return Err(EtfError::Invalid("a bitstring with a bad bit count")),
        }
        Ok(BitBinary::from((bytes, bits)))
    }

    fn atom(&mut self) -> Result<Atom> {
        let t = self.u8()?;
        match t {
            tag::ATOM | tag::SMALL_ATOM | tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8 => {
                self.atom_body(t)
            }
            tag::ATOM_CACHE_REF => Err(EtfError::Unsupported("an atom cache reference")),
            _ => Err(EtfError::Invalid("a non-atom where an atom belongs")),
        }
    }

    fn atom_body(&mut self, t: u8) -> Result<Atom> {
        let len = match t {
            tag::SMALL_ATOM | tag::SMALL_ATOM_UTF8 => usize::from(self.u8()?),
            _ => usize::from(self.u16()?),
        };
        if len > MAX_ATOM_BYTES {
            return Err(EtfError::Invalid("an atom longer than 255 characters"));
        }
        // Latin-1 above 127 takes two bytes in UTF-8.
        self.charge(2 * len)?;
        let raw = self.take(len)?;
        let name = match t {
            tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8 => std::str::from_utf8(raw)
                .map_err(|_| EtfError::Invalid("an atom that is not UTF-8"))?
                .to_string(),
            // Latin-1: every byte is the code point of the same value.
            _ => raw.iter().map(|&b| char::from(b)).collect(),
        };
        if len > 255 && name.chars().count() > 255 {
            return Err(EtfError::Invalid("an atom longer than 255 characters"));
        }
        Ok(Atom { name })
    }

    fn small_int(&mut self) -> Result<i32> {
        match self.u8()? {
            tag::SMALL_INTEGER => Ok(i32::from(self.u8()?)),
            tag::INTEGER => self.i32(),
            _ => Err(EtfError::Invalid(
                "a non-integer where a small integer belongs",
            )),
        }
    }

    fn pid(&mut self) -> Result<Pid> {
        match self.u8()? {
            t @ (tag::PID | tag::NEW_PID) => self.pid_body(t),
            _ => Err(EtfError::Invalid("a non-pid where a pid belongs")),
        }
    }

    fn pid_body(&mut self, t: u8) -> Result<Pid> {
        let node = self.atom()?;
        let id = self.u32()?;
        let serial = self.u32()?;
        let creation = match t {
            tag::PID => u32::from(self.u8()?),
            _ => self.u32()?,
        };
        Ok(Pid {
            node,
            id,
            serial,
            creation,
        })
    }

    fn port_body(&mut self, t: u8) -> Result<Port> {
        let node = self.atom()?;
        let (id, creation) = match t {
            tag::PORT => (u64::from(self.u32()?), u32::from(self.u8()?)),
            tag::NEW_PORT => (u64::from(self.u32()?), self.u32()?),
            _ => (self.u64()?, self.u32()?),
        };
        Ok(Port { node, id, creation })
    }

    fn reference_body(&mut self, t: u8) -> Result<Reference> {
        if t == tag::REFERENCE {
            let node = self.atom()?;
            let id = vec![self.u32()?];
            let creation = u32::from(self.u8()?);
            return Ok(Reference { node, id, creation });
        }
        let words = usize::from(self.u16()?);
        if !(1..=MAX_REF_WORDS).contains(&words) {
            return Err(EtfError::Invalid("a reference of more than five words"));
        }
        let node = self.atom()?;
        let creation = match t {
            tag::NEW_REFERENCE => u32::from(self.u8()?),
            _ => self.u32()?,
        };
        let mut id = Vec::with_capacity(words);
        for _ in 0..words {
            id.push(self.u32()?);
        }
        Ok(Reference { node, id, creation })
    }

    fn new_fun(&mut self, depth: usize) -> Result<InternalFun> {
        let _size = self.u32()?;
        let arity = self.u8()?;
        let uniq = self.array::<16>()?;
        let index = self.u32()?;
        let num_free = u64::from(self.u32()?);
        let module = self.atom()?;
        let old_index = self.small_int()?;
        let old_uniq = self.small_int()?;
        let pid = self.pid()?;
        let free_vars = self.elements("free variables", num_free, depth)?;
        Ok(InternalFun::New {
            module,
            arity,
            pid,
            free_vars,
            index,
            uniq,
            old_index,
            old_uniq,
        })
    }

    fn old_fun(&mut self, depth: usize) -> Result<InternalFun> {
        let num_free = u64::from(self.u32()?);
        let pid = self.pid()?;
        let module = self.atom()?;
        let index = self.small_int()?;
        let uniq = self.small_int()?;
        let free_vars = self.elements("free variables", num_free, depth)?;
        Ok(InternalFun::Old {
            module,
            pid,
            free_vars,
            index,
            uniq,
        })
    }
}

/// Decodes exactly one versioned term that fills `bytes`.
pub fn decode_term(bytes: &[u8]) -> Result<Term> {
    let mut d = Decoder::new(bytes);
    let t = d.versioned_term()?;
    d.finish()?;
    Ok(t)
}

/// A term as text for an error line: at most `max_bytes` of it, printing
/// stopped there (a term of 64 MB would otherwise become a line as long),
/// and control characters escaped.
pub fn brief(t: &Term, max_bytes: usize) -> String {
    struct Capped {
        out: String,
        max: usize,
    }
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.out.len() >= self.max {
                    return Err(std::fmt::Error);
                }
                if c.is_control() {
                    self.out.extend(c.escape_default());
                } else {
                    self.out.push(c);
                }
            }
            Ok(())
        }
    }
    let mut w = Capped {
        out: String::new(),
        max: max_bytes,
    };
    if std::fmt::write(&mut w, format_args!("{t}")).is_err() {
        w.out.push_str("...");
    }
    w.out
}

#[cfg(test)]
mod tests;
