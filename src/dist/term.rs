//! Building and reading Erlang terms without ceremony: the few shapes etop
//! sends and the few it reads back.

pub use erl_dist::term::{Atom, List, Map, Pid, Reference, Term, Tuple};

pub fn atom(s: &str) -> Term {
    Atom::from(s).into()
}

pub fn tuple(elements: Vec<Term>) -> Term {
    Tuple::from(elements).into()
}

pub fn list(elements: Vec<Term>) -> Term {
    List::from(elements).into()
}

pub fn int(v: i64) -> Term {
    match i32::try_from(v) {
        Ok(small) => erl_dist::term::FixInteger::from(small).into(),
        Err(_) => erl_dist::term::BigInteger::from(v).into(),
    }
}

/// An Erlang string (a list of character codes), as `erl_scan:string/1` wants.
pub fn charlist(s: &str) -> Term {
    if s.is_ascii() && s.len() < 65_535 {
        Term::from(s.to_string())
    } else {
        list(s.chars().map(|c| int(c as i64)).collect())
    }
}

/// An integer of any size that fits i64.
pub fn as_i64(t: &Term) -> Option<i64> {
    match t {
        Term::FixInteger(i) => Some(i.value as i64),
        Term::BigInteger(b) => b.value.to_string().parse().ok(),
        _ => None,
    }
}

pub fn as_atom(t: &Term) -> Option<&str> {
    match t {
        Term::Atom(a) => Some(a.name.as_str()),
        _ => None,
    }
}

pub fn is_atom(t: &Term, name: &str) -> bool {
    as_atom(t) == Some(name)
}

pub fn as_tuple(t: &Term) -> Option<&[Term]> {
    match t {
        Term::Tuple(tp) => Some(&tp.elements),
        _ => None,
    }
}

/// The elements of a proper list; `[]` and strings sent as bytes included.
pub fn as_list(t: &Term) -> Option<Vec<Term>> {
    match t {
        Term::List(l) => Some(l.elements.clone()),
        Term::ByteList(b) => Some(b.bytes.iter().map(|&c| int(c as i64)).collect()),
        _ => None,
    }
}

/// A borrowed view of a proper list, without copying where possible.
pub fn list_elems(t: &Term) -> Option<&[Term]> {
    match t {
        Term::List(l) => Some(&l.elements),
        _ => None,
    }
}

/// Text from a charlist, a binary or an atom; `None` for anything else.
pub fn as_text(t: &Term) -> Option<String> {
    match t {
        Term::ByteList(b) => Some(String::from_utf8_lossy(&b.bytes).into_owned()),
        Term::Binary(b) => Some(String::from_utf8_lossy(&b.bytes).into_owned()),
        Term::Atom(a) => Some(a.name.clone()),
        Term::List(l) => l
            .elements
            .iter()
            .map(|c| as_i64(c).and_then(|c| char::from_u32(c as u32)))
            .collect(),
        _ => None,
    }
}

/// A port, socket or table id as the node's shell prints it.
pub fn id_text(t: &Term) -> String {
    match t {
        Term::Port(p) => format!("#Port<0.{}>", p.id),
        Term::Reference(r) => format!(
            "#Ref<0.{}>",
            r.id.iter()
                .rev()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(".")
        ),
        Term::Tuple(tp) if tp.elements.len() == 2 && is_atom(&tp.elements[0], "$socket") => {
            match &tp.elements[1] {
                Term::Reference(r) => format!("#Socket<{}>", r.id.first().copied().unwrap_or(0)),
                other => format!("#Socket<{other}>"),
            }
        }
        Term::Atom(a) => a.name.clone(),
        other => other.to_string(),
    }
}

/// Looks up an atom key in a map term.
pub fn map_get<'a>(m: &'a Term, key: &str) -> Option<&'a Term> {
    match m {
        Term::Map(map) => map.map.get(&atom(key)),
        _ => None,
    }
}

/// `[{Key, Value}]` property lists, as `erlang:memory/0` returns.
pub fn proplist_i64(t: &Term) -> Vec<(String, i64)> {
    list_elems(t)
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| {
            let kv = as_tuple(e)?;
            Some((as_atom(kv.first()?)?.to_string(), as_i64(kv.get(1)?)?))
        })
        .collect()
}

/// An `{M, F, A}` tuple as `M:F/A`.
pub fn mfa(t: &Term) -> Option<(String, String, i64)> {
    let e = as_tuple(t)?;
    match e {
        [m, f, a] => Some((as_atom(m)?.to_string(), as_atom(f)?.to_string(), as_i64(a)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_through_both_encodings() {
        assert_eq!(as_i64(&int(5)), Some(5));
        assert_eq!(as_i64(&int(-7)), Some(-7));
        let big = 12_345_678_901_i64;
        assert!(matches!(int(big), Term::BigInteger(_)));
        assert_eq!(as_i64(&int(big)), Some(big));
    }

    #[test]
    fn reads_mfa_and_proplists() {
        let t = tuple(vec![atom("gen_server"), atom("loop"), int(7)]);
        assert_eq!(mfa(&t), Some(("gen_server".into(), "loop".into(), 7)));
        let p = list(vec![
            tuple(vec![atom("total"), int(10)]),
            tuple(vec![atom("ets"), int(3)]),
        ]);
        assert_eq!(
            proplist_i64(&p),
            vec![("total".into(), 10), ("ets".into(), 3)]
        );
    }
}
