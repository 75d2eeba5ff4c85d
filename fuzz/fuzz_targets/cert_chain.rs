#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peergroup_credential_roles::fuzz_targets::cert_chain(data));
