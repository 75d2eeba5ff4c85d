//! The names a group goes by on the network, none of which is the group peer name itself.
//!
//! Both the TLS server name (SNI, sent in clear in the ClientHello) and the mDNS TXT record
//! carry the *group tag*: the first 16 bytes of SHA-256 of the group peer name's text form,
//! as 32 lowercase hex digits. Someone watching the network learns that two peers talk about
//! the same group, not which group (its peer name holds 160 bits of key hash, so it cannot be
//! guessed from the tag).

use peergroup_identity::{PeerName, sha256};

/// The DNS suffix of server names: `.invalid` (RFC 6761) never resolves, so the name can
/// never be mistaken for, or leak to, a real host.
pub const SNI_SUFFIX: &str = "pg.invalid";

/// The DNS-SD service type peers advertise on the local network.
pub const SERVICE_TYPE: &str = "_peergroup._tcp.local.";

/// The TXT key holding the group tag in mDNS advertisements.
pub const TXT_GROUP: &str = "g";

/// The TXT key holding the advertiser's node id.
pub const TXT_NODE: &str = "n";

/// The TXT key holding the protocol (ALPN) the advertiser speaks.
pub const TXT_PROTOCOL: &str = "p";

/// The first 16 bytes of SHA-256 of the group peer name (its text form, UTF-8).
pub fn group_hash(group: &PeerName) -> [u8; 16] {
    let digest = sha256(group.to_string().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// [`group_hash`] as 32 lowercase hex digits: what SNI and mDNS carry.
pub fn group_tag(group: &PeerName) -> String {
    hex::encode(group_hash(group))
}

/// The TLS server name a client asks for to reach `group`: `<group tag>.pg.invalid`.
pub fn sni_name(group: &PeerName) -> String {
    format!("{}.{SNI_SUFFIX}", group_tag(group))
}

/// Whether `text` is a well-formed group tag (32 lowercase hex digits).
pub fn is_group_tag(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn group(seed: u64, classifier: &str) -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(seed).public(),
            Classifier::new(classifier).unwrap(),
        )
    }

    #[test]
    fn tag_is_sha256_prefix_of_the_name_text() {
        let g = group(100, "friends");
        let digest = sha256(g.to_string().as_bytes());
        assert_eq!(group_hash(&g), digest[..16]);
        assert_eq!(group_tag(&g), hex::encode(&digest[..16]));
        assert!(is_group_tag(&group_tag(&g)));
    }

    #[test]
    fn sni_is_dns_safe_and_hides_the_name() {
        let g = group(100, "friends");
        let sni = sni_name(&g);
        assert!(sni.ends_with(".pg.invalid"));
        assert_eq!(sni.len(), 32 + 1 + SNI_SUFFIX.len());
        assert!(
            sni.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
        );
        assert!(
            sni.split('.')
                .all(|label| !label.is_empty() && label.len() <= 63)
        );
        assert!(!sni.contains("friends"));
        assert!(!sni.contains(&g.authority().to_string()));
        assert!(rustls::pki_types::ServerName::try_from(sni).is_ok());
    }

    #[test]
    fn different_groups_have_different_tags() {
        let a = group(100, "friends");
        let b = group(100, "family");
        let c = group(101, "friends");
        assert_ne!(group_tag(&a), group_tag(&b));
        assert_ne!(group_tag(&a), group_tag(&c));
        assert_eq!(group_tag(&a), group_tag(&a.to_string().parse().unwrap()));
    }

    #[test]
    fn tag_syntax() {
        assert!(is_group_tag(&"0".repeat(32)));
        assert!(!is_group_tag(&"0".repeat(31)));
        assert!(!is_group_tag(&"A".repeat(32)));
        assert!(!is_group_tag(""));
    }
}
