//! The gate for etop's wire parsers: thousands of mutated frames, handshakes
//! and EPMD replies, built from real encodings, go through the same code the
//! connection uses. None may panic, and none may allocate beyond a bound
//! (measured by a counting allocator for this test binary).
//!
//! Deterministic: a seeded generator of our own, so a failure names the
//! input that caused it and reproduces. The fuzz targets in fuzz/ explore
//! the same functions without a bound on time.

use etop::dist::etf::{self, DECODE_BUDGET_BYTES};
use etop::dist::frame::{self, FrameError};
use etop::dist::handshake;
use etop::dist::term::{Atom, Pid, Reference, Term, atom, int, list, tuple};
use etop::node::epmd;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Counts the heap bytes each thread holds, and their peak. Per thread: the
/// other tests of this binary allocate at the same time, and only what the
/// measured code allocates on its own thread counts.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grew(by: usize) {
    // `try_with`: no counting while a thread's locals are being torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + by as isize;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrank(by: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() - by as isize));
}

// SAFETY: every call is passed unchanged to the system allocator; the
// counters are only bookkeeping, in thread-locals that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) };
        shrank(l.size());
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            shrank(l.size());
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning whether it panicked and the most heap it held at
/// once beyond what was live before, on this thread.
fn measured<T>(f: impl FnOnce() -> T) -> (Option<T>, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = catch_unwind(AssertUnwindSafe(f)).ok();
    let peak = PEAK.with(Cell::get) - base;
    (r, peak.max(0) as usize)
}

/// xorshift64*: small, seeded, ours.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn pid(node: &str, id: u32) -> Pid {
    Pid::new(node, id, 0, 1_700_000_000)
}

fn reference(node: &str, n: u32) -> Term {
    Reference {
        node: Atom::from(node),
        id: vec![n, 7, 9],
        creation: 3,
    }
    .into()
}

fn map(pairs: Vec<(&str, Term)>) -> Term {
    etop::dist::term::Map::from(
        pairs
            .into_iter()
            .map(|(k, v)| (atom(k), v))
            .collect::<std::collections::HashMap<_, _>>(),
    )
    .into()
}

fn mfa(m: &str, f: &str, a: i64) -> Term {
    tuple(vec![atom(m), atom(f), int(a)])
}

/// Replies shaped like the agent's and rex's, and the signals a node sends.
fn seed_messages() -> Vec<erl_dist::message::Message> {
    use erl_dist::message::Message;
    let node = "etop_t_0123456789abcdef@host";
    let us = pid("etop_me@host", 1);
    let rows: Vec<Term> = (0..40)
        .map(|i| {
            tuple(vec![
                pid(node, 100 + i).into(),
                int(i as i64 * 1000),
                if i % 3 == 0 {
                    atom("metrics_worker")
                } else {
                    list(vec![])
                },
                mfa("Elixir.Demo.Metrics.Worker", "init", 1),
                mfa("gen_server", "loop", 7),
                int(2_000_000_000_000),
                int(-5),
                int(i as i64),
            ])
        })
        .collect();
    let sample = map(vec![
        ("node", atom(node)),
        (
            "time",
            tuple(vec![
                tuple(vec![int(2026), int(11), int(30)]),
                tuple(vec![int(4), int(52), int(37)]),
            ]),
        ),
        ("mono_us", int(-576_460_751_766_933_000)),
        ("procs", int(25046)),
        (
            "memory",
            list(vec![
                tuple(vec![atom("total"), int(141_000_000)]),
                tuple(vec![atom("processes"), int(128_000_000)]),
            ]),
        ),
        (
            "swt",
            list(
                (1..=4)
                    .map(|s| tuple(vec![int(s), int(9_876_543_210), int(12_345_678_901)]))
                    .collect(),
            ),
        ),
        ("elixir", atom("true")),
        ("rows", list(rows)),
    ]);
    let ports = list(
        (0..10)
            .map(|i| {
                tuple(vec![
                    tuple(vec![atom("socket"), reference(node, i)]),
                    int(i as i64),
                    tuple(vec![int(1), int(2), int(3), int(4)]),
                    tuple(vec![
                        erl_dist::term::Binary::from(b"udp_inet".to_vec()).into(),
                        pid(node, 7).into(),
                        atom("metrics_exporter"),
                        int(0),
                        int(0),
                        Term::from("127.0.0.1:4000".to_string()),
                        Term::from(String::new()),
                    ]),
                ])
            })
            .collect(),
    );
    let tokens = list(
        (0..60)
            .map(|i| match i % 3 {
                0 => tuple(vec![atom("atom"), int(i), atom("erlang")]),
                1 => tuple(vec![atom(":"), int(i)]),
                _ => tuple(vec![atom("var"), int(i), atom("Ps")]),
            })
            .collect(),
    );
    let ok = |t: Term| tuple(vec![atom("ok"), t]);
    vec![
        Message::send(
            us.clone(),
            tuple(vec![reference("etop_me@host", 1), ok(sample)]),
        ),
        Message::send(
            us.clone(),
            tuple(vec![reference("etop_me@host", 2), ok(ports)]),
        ),
        Message::send(
            us.clone(),
            tuple(vec![reference("etop_me@host", 3), ok(tokens)]),
        ),
        Message::exit(pid(node, 9), us.clone(), atom("killed")),
        Message::payload_exit(
            pid(node, 9),
            us.clone(),
            tuple(vec![atom("badarg"), list(vec![])]),
        ),
        Message::link(pid(node, 9), us.clone()),
        Message::reg_send(pid(node, 9), Atom::from("rex"), int(1)),
        Message::send_sender(pid(node, 9), us, Term::from("hello".to_string())),
    ]
}

fn frame_of(msg: erl_dist::message::Message) -> Vec<u8> {
    let mut body = vec![112];
    msg.write_into(&mut body).expect("encode a seed");
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend(body);
    f
}

/// Tags whose next bytes are a count or length.
const COUNTED: &[u8] = &[104, 105, 107, 108, 109, 110, 111, 116, 77, 90, 114];

/// Tags to insert: the refused ones, and the bytes around them.
const ODD_TAGS: &[u8] = &[82, 80, 68, 69, 121, 77, 131, 0, 255, 112, 113, 117];

/// One mutation of a frame's body (everything after the length).
fn mutate_body(rng: &mut Rng, body: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    if body.is_empty() {
        body.push(rng.byte());
        return;
    }
    match rng.below(9) {
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(body.len());
                body[i] = rng.byte();
            }
        }
        1 => {
            // A huge or off-by-a-little count after a counted tag.
            let spots: Vec<usize> = (0..body.len())
                .filter(|&i| COUNTED.contains(&body[i]))
                .collect();
            if let Some(&i) = (!spots.is_empty()).then(|| rng.pick(&spots)) {
                let v: u32 = match rng.below(4) {
                    0 => u32::MAX,
                    1 => 0x7FFF_FFFF,
                    2 => rng.next() as u32,
                    _ => (rng.below(300)) as u32,
                };
                for (k, b) in v.to_be_bytes().iter().enumerate() {
                    if let Some(x) = body.get_mut(i + 1 + k) {
                        *x = *b;
                    }
                }
            }
        }
        2 => body.truncate(rng.below(body.len())),
        3 => {
            let other = rng.pick(seeds);
            let from = rng.below(other.len());
            let to = (from + rng.below(64)).min(other.len());
            let at = rng.below(body.len());
            body.splice(at..at, other[from..to].iter().copied());
        }
        4 => {
            let at = rng.below(body.len());
            body.insert(at, *rng.pick(ODD_TAGS));
        }
        5 => {
            // Deep nesting at a random spot.
            let depth = *rng.pick(&[10, 255, 256, 257, 300, 2000, 20_000]);
            let unit: &[u8] = match rng.below(3) {
                0 => &[104, 1],
                1 => &[108, 0, 0, 0, 1],
                _ => &[116, 0, 0, 0, 1, 106],
            };
            let at = rng.below(body.len());
            let nest: Vec<u8> = unit
                .iter()
                .copied()
                .cycle()
                .take(unit.len() * depth)
                .collect();
            body.splice(at..at, nest);
        }
        6 => {
            // Repeat a region.
            let from = rng.below(body.len());
            let to = (from + 1 + rng.below(32)).min(body.len());
            let chunk = body[from..to].to_vec();
            for _ in 0..rng.below(50) {
                body.splice(to..to, chunk.iter().copied());
            }
        }
        7 => {
            let at = rng.below(body.len());
            body.remove(at);
        }
        _ => {
            // Random bytes after the pass-through byte.
            let n = rng.below(64);
            body.truncate(1 + rng.below(body.len()));
            body.extend((0..n).map(|_| rng.byte()));
        }
    }
}

/// What one frame may allocate while being decoded: by construction no more
/// than the budget, and no more than a fixed multiple of its size (a map
/// entry is the costliest: two bytes become a hash table slot).
fn frame_alloc_bound(len: usize) -> usize {
    (200 * len + (64 << 10)).min(DECODE_BUDGET_BYTES + (1 << 20))
}

const FRAMES: usize = 12_000;

#[test]
fn mutated_frames_never_panic_and_stay_bounded() {
    let seeds: Vec<Vec<u8>> = seed_messages().into_iter().map(frame_of).collect();
    let bodies: Vec<Vec<u8>> = seeds.iter().map(|f| f[4..].to_vec()).collect();
    // The seeds themselves decode, as the real connection needs.
    for s in &seeds {
        let (msgs, _) = frame::decode_stream(s);
        assert!(msgs.iter().all(Result::is_ok), "{msgs:?}");
    }
    let mut rng = Rng(0x5EED_E70B_0000_0001);
    let (mut ok, mut malformed, mut too_big, mut fatal, mut broken) = (0, 0, 0, 0, 0);
    let mut panics = Vec::new();
    for i in 0..FRAMES {
        let mut body = rng.pick(&bodies).clone();
        for _ in 0..=rng.below(3) {
            mutate_body(&mut rng, &mut body, &bodies);
        }
        let mut input = (body.len() as u32).to_be_bytes().to_vec();
        if rng.below(10) == 0 {
            // A length that lies.
            let lie: u32 = *rng.pick(&[u32::MAX, 16 << 20, (16 << 20) + 1, 0, 1]);
            input = lie.to_be_bytes().to_vec();
        }
        input.extend(&body);
        if rng.below(4) == 0 {
            // Another frame after it, or a tick.
            input.extend(rng.pick(&seeds));
            input.extend([0, 0, 0, 0]);
        }
        let (r, peak) = measured(|| frame::decode_stream(&input));
        let Some((msgs, end)) = r else {
            panics.push(format!("#{i}: {input:?}"));
            continue;
        };
        assert!(
            peak <= frame_alloc_bound(input.len()),
            "#{i}: decoding {} bytes allocated {peak} bytes",
            input.len()
        );
        for m in &msgs {
            match m {
                Ok(_) => ok += 1,
                Err(e) if e.is_fatal() => fatal += 1,
                Err(FrameError::TooBig(_)) => too_big += 1,
                Err(_) => malformed += 1,
            }
        }
        if matches!(end, frame::FramingError::TooLong { .. }) {
            broken += 1;
        }
    }
    eprintln!(
        "{FRAMES} mutated frames: {ok} decoded, {malformed} malformed, {too_big} too big, \
         {fatal} fatal headers, {broken} impossible lengths, {} panics",
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    // The mutations reach every outcome, or this test proves little.
    for (what, n) in [
        ("decoded", ok),
        ("malformed", malformed),
        ("too big", too_big),
        ("fatal", fatal),
        ("impossible lengths", broken),
    ] {
        assert!(n > 0, "no mutated frame was {what}");
    }
}

#[test]
fn the_decode_budget_bounds_memory_for_a_frame_under_the_maximum() {
    // 4,000 tuples of 1,000 empty lists: 4 MB on the wire, 230 MB if
    // decoded. Each tuple passes the count check; the budget must stop the
    // whole.
    let mut body = vec![112, 131, 104, 3, 97, 2, 106, 106, 131, 108];
    body.extend(4000u32.to_be_bytes());
    for _ in 0..4000 {
        body.push(105);
        body.extend(1000u32.to_be_bytes());
        body.extend(std::iter::repeat_n(106u8, 1000));
    }
    body.push(106);
    let (r, peak) = measured(|| frame::decode_frame(&body));
    let r = r.expect("no panic");
    assert!(
        matches!(r, Err(FrameError::TooBig(etf::EtfError::OverBudget))),
        "{r:?}"
    );
    assert!(
        peak <= DECODE_BUDGET_BYTES + (1 << 20),
        "decoding allocated {peak} bytes, over the {DECODE_BUDGET_BYTES}-byte budget"
    );
    assert!(
        peak > DECODE_BUDGET_BYTES / 2,
        "the budget was not approached: {peak}"
    );
}

const HANDSHAKES: usize = 3_000;

#[test]
fn malformed_handshakes_never_panic() {
    let cookie = "COOKIE";
    let honest = handshake::honest_node_bytes(cookie, 0xDEAD_BEEF);
    assert!(matches!(
        handshake::handshake_against(&honest, cookie),
        Ok(handshake::Outcome::Connected(_))
    ));
    let mut seeds = vec![honest.clone()];
    for status in [
        "sok_simultaneous",
        "snok",
        "salive",
        "snot_allowed",
        "snamed:",
    ] {
        let mut s = (status.len() as u16).to_be_bytes().to_vec();
        s.extend(status.as_bytes());
        s.extend(&honest[5..]);
        seeds.push(s);
    }
    let mut rng = Rng(0x5EED_0000_0000_00A5);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut panics = Vec::new();
    for i in 0..HANDSHAKES {
        let mut input = rng.pick(&seeds).clone();
        match i % 4 {
            // Every cut of an honest exchange.
            0 => input.truncate(i / 4 % (honest.len() + 1)),
            1 => input = (0..rng.below(200)).map(|_| rng.byte()).collect(),
            _ => {
                for _ in 0..=rng.below(3) {
                    mutate_body(&mut rng, &mut input, &seeds);
                }
            }
        }
        let (r, peak) = measured(|| handshake::handshake_against(&input, cookie));
        let Some(r) = r else {
            panics.push(format!("#{i}: {input:?}"));
            continue;
        };
        // Three messages of at most 64 KB each, and our own.
        assert!(
            peak <= input.len() + 4 * 65_536,
            "#{i}: the handshake allocated {peak} bytes"
        );
        let kind = match r {
            Ok(o) => format!("{o:?}").split('(').next().unwrap_or("").to_string(),
            Err(e) => format!("{e:?}").split('(').next().unwrap_or("").to_string(),
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    eprintln!(
        "{HANDSHAKES} malformed handshakes: {outcomes:?}, {} panics",
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    for kind in [
        "Connected",
        "NameTaken",
        "NotAllowed",
        "ClosedBeforeStatus",
        "ClosedAfterStatus",
        "ClosedAfterReply",
        "BadAck",
        "Protocol",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "no handshake ended in {kind}: {outcomes:?}"
        );
    }
}

const EPMD_REPLIES: usize = 3_000;

#[test]
fn malformed_epmd_replies_never_panic_and_stay_bounded() {
    let mut names = vec![0, 0, 0x11, 0x11];
    for (n, p) in [
        ("demo", 4370),
        ("rabbit", 25672),
        ("etop_t_0123456789abcdef", 40001),
    ] {
        names.extend(format!("name {n} at port {p}\n").as_bytes());
    }
    let port2 = vec![
        119, 0, 0x1F, 0x90, 77, 0, 6, 0, 6, 0, 4, b'd', b'e', b'm', b'o', 0, 0,
    ];
    let seeds = vec![names, port2, vec![119, 1]];
    let mut rng = Rng(0x5EED_0000_0000_E9D0);
    let (mut ok, mut err) = (0usize, 0usize);
    let mut panics = Vec::new();
    for i in 0..EPMD_REPLIES {
        let mut input = rng.pick(&seeds).clone();
        match i % 5 {
            0 => input.truncate(rng.below(input.len() + 1)),
            1 => {
                // Streams on: the same line again and again.
                let line = b"name x at port 1\n";
                let n = rng.below(2 * epmd::MAX_NAMES_BYTES / line.len());
                for _ in 0..n {
                    input.extend(line);
                }
            }
            _ => {
                for _ in 0..=rng.below(3) {
                    mutate_body(&mut rng, &mut input, &seeds);
                }
            }
        }
        let (r, peak) = measured(|| {
            let a = epmd::parse_names_reply(&input).is_ok();
            let b = epmd::parse_port2_resp(&input).is_ok();
            let mut s = handshake::Scripted::new(input.clone());
            let c = smol::block_on(epmd::query_names(&mut s)).is_ok();
            let mut s = handshake::Scripted::new(input.clone());
            let d = smol::block_on(epmd::query_port(&mut s, "demo")).is_ok();
            [a, b, c, d]
        });
        let Some(r) = r else {
            panics.push(format!("#{i}: {} bytes", input.len()));
            continue;
        };
        // Two copies of the input and what the reply is read into, plus the
        // names: bounded by the cap, whatever the input.
        let bound = 3 * input.len().min(epmd::MAX_NAMES_BYTES + 5)
            + 2 * input.len()
            + epmd::MAX_NAMES * 64
            + (64 << 10);
        assert!(
            peak <= bound,
            "#{i}: {} bytes allocated {peak}",
            input.len()
        );
        for x in r {
            if x { ok += 1 } else { err += 1 }
        }
    }
    eprintln!(
        "{EPMD_REPLIES} malformed EPMD replies through 4 parsers: {ok} accepted, {err} refused, {} panics",
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    assert!(ok > 0 && err > 0);
}
