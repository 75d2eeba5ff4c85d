#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peergroup_transport::fuzz_targets::password_join(data));
