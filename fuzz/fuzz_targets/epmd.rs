//! EPMD replies: PORT2_RESP and NAMES, parsed and read from a stream.
#![no_main]

use etop::dist::epmd;
use etop::dist::handshake::Scripted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = epmd::parse_port2_resp(data);
    let _ = epmd::parse_names_reply(data);
    let mut s = Scripted::new(data.to_vec());
    let _ = smol::block_on(epmd::port_please(&mut s, "demo"));
    let mut s = Scripted::new(data.to_vec());
    let _ = smol::block_on(epmd::names(&mut s));
});
