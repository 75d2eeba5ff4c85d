//! Bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` call these), also run over the seed
//! files in `fuzz/seeds/<name>/` by `tests/fuzz_seeds.rs`.
//!
//! Each decodes the bytes (UTF-8, or UTF-16 with a byte order mark; anything else is
//! refused and the body returns), parses them, and when that succeeds writes the value back,
//! parses the output again and asserts that both values and both outputs are equal. Panics
//! are findings.

use crate::{GroupConfig, IdentityExport, IdentityInfo, Invitation};

/// PEERIDENTITYINFO.
pub fn identity_info(data: &[u8]) {
    if let Ok(value) = IdentityInfo::parse_bytes(data) {
        round_trip(&value, IdentityInfo::to_xml, IdentityInfo::parse);
    }
}

/// PEERINVITATION (both kinds), and the info derived from it.
pub fn invitation(data: &[u8]) {
    if let Ok(value) = Invitation::parse_bytes(data) {
        let info = value.info();
        assert_eq!(info.group_peer_name, *value.group());
        round_trip(&value, Invitation::to_xml, Invitation::parse);
    }
}

/// PEERIDENTITYEXPORT.
pub fn identity_export(data: &[u8]) {
    if let Ok(value) = IdentityExport::parse_bytes(data) {
        round_trip(&value, IdentityExport::to_xml, IdentityExport::parse);
    }
}

/// PEERGROUPCONFIG.
pub fn group_config(data: &[u8]) {
    if let Ok(value) = GroupConfig::parse_bytes(data) {
        round_trip(&value, GroupConfig::to_xml, GroupConfig::parse);
    }
}

#[allow(clippy::panic, reason = "a fuzz body reports a finding by panicking")]
fn round_trip<T, E>(value: &T, write: fn(&T) -> String, parse: fn(&str) -> Result<T, E>)
where
    T: PartialEq + std::fmt::Debug,
    E: std::fmt::Display,
{
    let xml = write(value);
    // A value that parsed must write something that parses to the same value.
    let again =
        parse(&xml).unwrap_or_else(|e| panic!("re-parsing our own output failed: {e}\n{xml}"));
    assert_eq!(&again, value, "value changed in a round trip through {xml}");
    assert_eq!(write(&again), xml, "output changed in a second round trip");
}
