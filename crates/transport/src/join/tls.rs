//! The member's verifier of joiners: one self-signed identity certificate (IDC), not revoked
//! in the group, and a TLS 1.3 handshake signed (Ed25519) by its key.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use peergroup_identity::{IdentityCertificate, Signature};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::{Refusal, RefusalKind};
use crate::tls::certificate_error;
use crate::trust::GroupTrust;

/// What the verifier of one join handshake concluded.
#[derive(Debug, Default)]
pub(crate) struct IdentityOutcome {
    /// The joiner's identity certificate, once it was accepted.
    pub(crate) idc: Option<IdentityCertificate>,
    /// Why the joiner was refused.
    pub(crate) refusal: Option<Refusal>,
}

/// Verifies a joiner's client certificate: exactly one certificate, a valid IDC
/// ([`IdentityCertificate::from_der`]: self-signed, its key owning its peer name), whose
/// peer is not revoked in the group; and the handshake signature by its key.
#[derive(Debug)]
pub(crate) struct IdentityVerifier {
    trust: GroupTrust,
    outcome: Mutex<IdentityOutcome>,
}

impl IdentityVerifier {
    pub(crate) fn new(trust: GroupTrust) -> Arc<Self> {
        Arc::new(IdentityVerifier {
            trust,
            outcome: Mutex::new(IdentityOutcome::default()),
        })
    }

    /// The conclusion so far.
    pub(crate) fn take_outcome(&self) -> IdentityOutcome {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, IdentityOutcome> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, refusal: Refusal) -> rustls::Error {
        let error = rustls::Error::InvalidCertificate(certificate_error(&refusal));
        self.lock().refusal = Some(refusal);
        error
    }

    fn check_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<IdentityCertificate, Refusal> {
        if !intermediates.is_empty() {
            return Err(Refusal::new(
                RefusalKind::BadIdentity,
                format!(
                    "a joiner presents its identity certificate alone, not {} certificates",
                    intermediates.len() + 1
                ),
            ));
        }
        let idc = IdentityCertificate::from_der(end_entity.as_ref()).map_err(|e| {
            Refusal::new(
                RefusalKind::BadIdentity,
                format!("not an identity certificate: {e}"),
            )
        })?;
        if let Some(at) = self.trust.revocations().peer_revoked_at(idc.peer_name()) {
            return Err(Refusal::new(
                RefusalKind::Revoked,
                format!("{} was revoked at {at}", idc.peer_name()),
            ));
        }
        Ok(idc)
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<(), Refusal> {
        let bad = |detail: String| Refusal::new(RefusalKind::BadSignature, detail);
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(bad(format!("signed with {:?}, not Ed25519", dss.scheme)));
        }
        let key = match &self.lock().idc {
            Some(idc) if idc.der() == cert.as_ref() => *idc.public_key(),
            Some(_) => return Err(bad("signed for another certificate".into())),
            None => return Err(bad("a signature before any accepted certificate".into())),
        };
        let signature = Signature::from_slice(dss.signature())
            .map_err(|_| bad("not an Ed25519 signature".into()))?;
        key.verify(message, &signature)
            .map_err(|_| bad("the handshake signature does not verify with the IDC key".into()))
    }
}

impl ClientCertVerifier for IdentityVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.check_certificate(end_entity, intermediates) {
            Ok(idc) => {
                self.lock().idc = Some(idc);
                Ok(ClientCertVerified::assertion())
            }
            Err(refusal) => Err(self.refuse(refusal)),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(self.refuse(Refusal::new(
            RefusalKind::Incompatible,
            "TLS 1.2 is not accepted",
        )))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|r| self.refuse(r))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
