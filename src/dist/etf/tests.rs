//! The decoder against every encoding etop reads, and the bounds.
use super::*;
use crate::dist::term::{atom, int, list, tuple};

fn encode(t: &Term) -> Vec<u8> {
    let mut v = Vec::new();
    t.encode(&mut v).unwrap();
    v
}

fn sample_terms() -> Vec<Term> {
    let pid = Pid::new("demo@host", 123, 0, 7);
    let mut m = HashMap::new();
    m.insert(
        atom("rows"),
        list(vec![tuple(vec![pid.clone().into(), int(5)])]),
    );
    m.insert(atom("big"), int(12_345_678_901_234));
    m.insert(atom("neg"), int(-12_345_678_901_234));
    vec![
        atom("ok"),
        atom("émoji_ß"),
        int(0),
        int(255),
        int(-1),
        int(i32::MAX as i64),
        int(i64::MIN),
        Float::try_from(1.5).unwrap().into(),
        pid.into(),
        Port {
            node: Atom::from("demo@host"),
            id: 1 << 40,
            creation: 3,
        }
        .into(),
        Reference {
            node: Atom::from("demo@host"),
            id: vec![1, 2, 3],
            creation: 9,
        }
        .into(),
        Binary::from(vec![0u8, 1, 2, 255]).into(),
        BitBinary::from((vec![0xAB, 0x05], 3)).into(),
        eetf::ByteList::from(b"hello".to_vec()).into(),
        list(vec![]),
        list(vec![int(1), atom("a"), tuple(vec![])]),
        ImproperList::from((vec![int(1)], atom("tail"))).into(),
        Map::from(m).into(),
        ExternalFun {
            module: Atom::from("lists"),
            function: Atom::from("sort"),
            arity: 1,
        }
        .into(),
        tuple((0..300).map(int).collect()),
    ]
}

#[test]
fn decodes_what_eetf_encodes() {
    for t in sample_terms() {
        let bytes = encode(&t);
        assert_eq!(decode_term(&bytes).unwrap(), t, "{t}");
        // And eetf agrees with itself, so the two decoders match.
        assert_eq!(Term::decode(&bytes[..]).unwrap(), t);
    }
}

#[test]
fn a_huge_declared_count_is_refused_before_allocating() {
    // [131, LIST_EXT, 0xFFFFFFFF elements, ...]: ten bytes.
    let bytes = [131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1, 106, 0];
    let e = decode_term(&bytes).unwrap_err();
    assert!(matches!(e, EtfError::CountTooLarge { .. }), "{e}");
    for (t, n) in [(105u8, 4usize), (116, 4), (109, 4)] {
        let mut b = vec![131, t];
        b.extend(std::iter::repeat_n(0xFF, n));
        b.push(106);
        let e = decode_term(&b).unwrap_err();
        assert!(matches!(e, EtfError::CountTooLarge { .. }), "tag {t}: {e}");
    }
}

#[test]
fn nesting_is_limited() {
    let mut ok = vec![131];
    for _ in 0..MAX_DEPTH {
        ok.extend([108, 0, 0, 0, 1]);
    }
    ok.push(106);
    ok.extend(std::iter::repeat_n(106, MAX_DEPTH));
    // Decoding the deepest legal term fits in a quarter of the reader
    // thread's stack, even in a debug build (a stack overflow aborts
    // the test binary: this fails loudly).
    let t = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || decode_term(&ok).unwrap())
        .unwrap()
        .join()
        .unwrap();
    // It can be printed, compared and dropped on a thread with the
    // default stack.
    std::thread::spawn(move || {
        let s = t.to_string();
        assert!(t == t.clone());
        s.len()
    })
    .join()
    .unwrap();

    let mut deep = vec![131];
    for _ in 0..2000 {
        deep.extend([104, 1]);
    }
    deep.push(106);
    assert_eq!(decode_term(&deep).unwrap_err(), EtfError::TooDeep);
}

#[test]
fn the_budget_bounds_expansion() {
    // 100,000 empty lists in a list: 100 KB on the wire, 5+ MB decoded.
    let n: u32 = 100_000;
    let mut b = vec![131, 108];
    b.extend(n.to_be_bytes());
    b.extend(std::iter::repeat_n(106u8, n as usize + 1));
    assert!(decode_term(&b).is_ok());
    let mut d = Decoder::with_budget(&b, 1 << 20);
    assert_eq!(d.versioned_term().unwrap_err(), EtfError::OverBudget);
    // Maps cost more per byte than anything else.
    let mut m = vec![131, 116];
    m.extend(n.to_be_bytes());
    m.extend(std::iter::repeat_n(106u8, 2 * n as usize));
    let mut d = Decoder::with_budget(&m, (n as usize) * MAP_ENTRY_BYTES);
    assert_eq!(d.versioned_term().unwrap_err(), EtfError::OverBudget);
}

#[test]
fn unsupported_and_malformed_encodings_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (&[131, 82, 0], "atom cache"),
        (&[131, 80, 0, 0, 0, 1, 120, 156], "compressed"),
        (&[131, 68, 0], "distribution header"),
        (&[131, 121, 0], "node-local"),
        (&[131, 77, 0, 0, 0, 1, 0, 255], "bit count"),
        (&[131, 77, 0, 0, 0, 1, 9, 255], "bit count"),
        (&[131, 118, 0, 2, 0xC3, 0x28], "UTF-8"),
        (&[131, 110, 1, 2, 5], "sign byte"),
        (&[131, 70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0], "not finite"),
        (&[131, 88, 97, 1], "non-atom"),
        (&[131, 90, 0, 9, 119, 1, 97, 0, 0, 0, 0], "five words"),
        (&[131, 113, 119, 1, 97, 119, 1, 98, 98, 0, 0, 1, 0], "arity"),
        (&[131, 97], "ends in the middle"),
        (&[130, 97, 1], "version"),
        (&[131, 97, 1, 0], "follow the last term"),
        (&[131, 250], "unknown tag"),
    ];
    for (bytes, want) in cases {
        let e = decode_term(bytes).unwrap_err();
        assert!(e.to_string().contains(want), "{bytes:?}: {e}");
    }
}

#[test]
fn latin1_atoms_are_decoded_as_latin1() {
    let t = decode_term(&[131, 115, 2, b'a', 0xE9]).unwrap();
    assert_eq!(t, atom("aé"));
}

#[test]
fn brief_cuts_and_escapes() {
    let t = tuple(vec![atom("badrpc"), list((0..100_000).map(int).collect())]);
    let b = brief(&t, 40);
    assert!(b.len() <= 43 && b.ends_with("..."), "{b}");
    assert_eq!(brief(&atom("a\u{1b}[2Jb"), 100), "'a\\u{1b}[2Jb'");
}

#[test]
fn wide_integers_are_refused() {
    let mut b = vec![131, 111];
    b.extend(2000u32.to_be_bytes());
    b.push(0);
    b.extend(std::iter::repeat_n(1u8, 2000));
    assert!(matches!(
        decode_term(&b).unwrap_err(),
        EtfError::Unsupported(_)
    ));
}
