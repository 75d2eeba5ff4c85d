//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a unit test.

use peergroup_identity::Timestamp;

use crate::{CertChain, GroupCertificate, RevocationSet};

/// Certificate-chain parsing: PKCS#7 chains and single certificates from arbitrary bytes.
/// Whatever parses is validated (which must not panic either) and re-encoded identically.
pub fn cert_chain(data: &[u8]) {
    if let Ok(chain) = CertChain::from_pkcs7(data) {
        let again = CertChain::from_pkcs7(&chain.to_pkcs7());
        assert_eq!(
            again.ok().as_ref(),
            Some(&chain),
            "PKCS#7 re-encoding changed the chain"
        );
        let group = chain.group().clone();
        for now in [
            Timestamp::UNIX_EPOCH,
            Timestamp::from_secs(1_800_000_000),
            Timestamp::MAX_X509,
        ] {
            let _ = chain.validate(&group, now, &RevocationSet::new(), None);
        }
    }
    if let Ok(cert) = GroupCertificate::parse(data) {
        assert_eq!(cert.der(), data);
    }
}
