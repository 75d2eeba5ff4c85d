#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peergroup_direct_conn::fuzz_targets::direct_handshake(data));
