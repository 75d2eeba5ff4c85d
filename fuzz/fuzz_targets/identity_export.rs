#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peergroup_invitation_xml::fuzz_targets::identity_export(data));
