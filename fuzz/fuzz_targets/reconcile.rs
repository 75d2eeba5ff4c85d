#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peergroup_record_db::fuzz_targets::reconcile_messages(data));
