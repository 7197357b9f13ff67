//! One versioned term, decoded within etop's depth and size limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = etop::dist::etf::decode_term(data) {
        // What etop does with a decoded term must be safe too: print it,
        // compare it, drop it.
        let _ = t.to_string();
        assert!(t == t.clone());
    }
});
