//! A byte stream read as the connection reads it: 4-byte lengths, ticks,
//! the pass-through byte, control messages and payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = etop::dist::frame::decode_stream(data);
    // Also as one frame body, so every input reaches the term decoder
    // without having to guess a consistent length first.
    let _ = etop::dist::frame::decode_frame(data);
});
