#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peergroup_mesh::fuzz_targets::mesh_signed(data));
