//! The identity certificate (IDC): a self-signed X.509 v3 certificate made by rcgen.
//!
//! It names the identity (friendly name as `CN`, secure peer name as `UID`) and carries its
//! public key. It is what an invitee sends to an inviter (inside PEERIDENTITYINFO); the inviter
//! issues a group member certificate for the key it holds.

use crate::error::Error;
use crate::key::{KeyPair, PublicKey};
use crate::peer_name::{PeerName, truncate_for_message};
use crate::time::Timestamp;
use crate::x509::Certificate;

/// Longest friendly name, in characters (as Windows).
pub const MAX_FRIENDLY_NAME: usize = 255;

/// Checks a friendly name: 1–255 characters, no control characters.
pub fn check_friendly_name(name: &str) -> Result<(), Error> {
    let len = name.chars().count();
    if len == 0 || len > MAX_FRIENDLY_NAME || name.chars().any(char::is_control) {
        return Err(Error::InvalidFriendlyName(truncate_for_message(name)));
    }
    Ok(())
}

/// A parsed, self-consistent identity certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityCertificate {
    cert: Certificate,
    peer_name: PeerName,
}

impl IdentityCertificate {
    /// Makes and self-signs a certificate for `key` (valid from `now` for 100 years).
    pub fn create(
        key: &KeyPair,
        peer_name: &PeerName,
        friendly_name: &str,
        now: Timestamp,
    ) -> Result<Self, Error> {
        check_friendly_name(friendly_name)?;
        if !peer_name.is_owned_by(&key.public()) {
            return Err(Error::PeerNameMismatch);
        }
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, friendly_name);
        dn.push(
            rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            rcgen::DnValue::Utf8String(peer_name.to_string()),
        );
        params.distinguished_name = dn;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(
            &crate::x509::Template::random_serial()?,
        ));
        let start = now.truncate_to_secs();
        let end = start.saturating_add(std::time::Duration::from_secs(100 * 365 * 86_400));
        params.not_before = to_offset(start)?;
        params.not_after = to_offset(end.min(Timestamp::MAX_X509))?;
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .self_signed(key)
            .map_err(|e| Error::Certificate(e.to_string()))?;
        Self::from_der(cert.der())
    }

    /// Parses and checks a certificate received from someone: self-signed, names a secure
    /// peer name owned by its key, not a CA.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let cert = Certificate::parse(der)?;
        cert.verify_signed_by(cert.public_key()).map_err(|_| {
            Error::MalformedCertificate("identity certificate is not self-signed".into())
        })?;
        if cert.is_ca() {
            return Err(Error::MalformedCertificate(
                "identity certificate claims to be a CA".into(),
            ));
        }
        if cert.issuer() != cert.subject() {
            return Err(Error::MalformedCertificate(
                "issuer and subject differ".into(),
            ));
        }
        check_friendly_name(&cert.subject().common_name)?;
        let peer_name: PeerName = cert
            .subject()
            .peer_name
            .as_deref()
            .ok_or_else(|| Error::MalformedCertificate("no peer name".into()))?
            .parse()?;
        if !peer_name.is_owned_by(cert.public_key()) {
            return Err(Error::PeerNameMismatch);
        }
        if !cert.public_key().is_strong() {
            return Err(Error::UnsupportedKey);
        }
        Ok(IdentityCertificate { cert, peer_name })
    }

    /// The secure peer name.
    pub fn peer_name(&self) -> &PeerName {
        &self.peer_name
    }

    /// The friendly name.
    pub fn friendly_name(&self) -> &str {
        &self.cert.subject().common_name
    }

    /// The identity's public key.
    pub fn public_key(&self) -> &PublicKey {
        self.cert.public_key()
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        self.cert.der()
    }

    /// The parsed certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
}

fn to_offset(t: Timestamp) -> Result<time::OffsetDateTime, Error> {
    let secs =
        i64::try_from(t.as_secs()).map_err(|_| Error::Certificate("time out of range".into()))?;
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| Error::Certificate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_name::Classifier;

    #[test]
    fn create_and_parse() {
        let kp = KeyPair::from_test_seed(3);
        let name = PeerName::new(&kp.public(), Classifier::new("alice").unwrap());
        let idc =
            IdentityCertificate::create(&kp, &name, "Alice Ünïcode", Timestamp::now()).unwrap();
        let again = IdentityCertificate::from_der(idc.der()).unwrap();
        assert_eq!(again.peer_name(), &name);
        assert_eq!(again.friendly_name(), "Alice Ünïcode");
        assert_eq!(again.public_key(), &kp.public());
    }

    #[test]
    fn refuses_someone_elses_name() {
        let kp = KeyPair::from_test_seed(3);
        let other = KeyPair::from_test_seed(4);
        let name = PeerName::new(&other.public(), Classifier::new("alice").unwrap());
        assert!(matches!(
            IdentityCertificate::create(&kp, &name, "x", Timestamp::now()),
            Err(Error::PeerNameMismatch)
        ));
    }

    #[test]
    fn refuses_bad_friendly_names() {
        for bad in ["", "a\nb", &"x".repeat(256)] {
            assert!(check_friendly_name(bad).is_err());
        }
        check_friendly_name(&"é".repeat(255)).unwrap();
    }
}
