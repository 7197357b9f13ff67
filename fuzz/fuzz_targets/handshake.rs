//! Everything a node could send during the handshake, read by etop's client
//! side. The first byte picks the cookie's length, so honest exchanges with
//! a short cookie are reachable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (cookie, rest) = match data.split_first() {
        Some((&n, rest)) => {
            let n = usize::from(n % 8).min(rest.len());
            (String::from_utf8_lossy(&rest[..n]).into_owned(), &rest[n..])
        }
        None => (String::new(), data),
    };
    let _ = etop::dist::handshake::handshake_against(rest, &cookie);
    let _ = etop::dist::handshake::parse_status(data);
    let _ = etop::dist::handshake::parse_challenge(data);
    let _ = etop::dist::handshake::parse_ack(data, &[0; 16]);
});
