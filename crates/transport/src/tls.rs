//! rustls configuration: TLS 1.3 only, Ed25519 only, our own certificate verifiers (group
//! chains, not web PKI) and our own signer (the secret stays in the zeroizing dalek key).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use peergroup_credential_roles::{CertChain, MAX_CHAIN_LEN, ValidatedChain};
use peergroup_identity::x509::Certificate;
use peergroup_identity::{KeyPair, Signature};
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureAlgorithm, SignatureScheme,
};

use crate::config::ALPN;
use crate::error::{Refusal, RefusalKind};
use crate::trust::{GroupCredentials, GroupTrust};

/// The only protocol version we speak.
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// ring's provider restricted to TLS 1.3 cipher suites (built once).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut p = rustls::crypto::ring::default_provider();
            p.cipher_suites
                .retain(|s| s.version() == &rustls::version::TLS13);
            Arc::new(p)
        })
        .clone()
}

/// Our certificate list (leaf first) and a signer over our key.
pub(crate) fn certified_key(creds: &GroupCredentials) -> Arc<CertifiedKey> {
    let ders: Vec<Vec<u8>> = creds
        .chain
        .certificates()
        .iter()
        .rev()
        .map(|c| c.der().to_vec())
        .collect();
    certified_key_from(&ders, creds.key.clone())
}

/// A certificate list (leaf first, DER) and a signer over `key`.
pub(crate) fn certified_key_from(ders: &[Vec<u8>], key: Arc<KeyPair>) -> Arc<CertifiedKey> {
    let certs = ders
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    Arc::new(CertifiedKey::new(certs, Arc::new(Ed25519Key(key))))
}

/// The server side of one handshake: our certificate for the group the client asked for,
/// client authentication mandatory, no resumption (every connection shows its chain).
pub(crate) fn server_config(
    certified: Arc<CertifiedKey>,
    verifier: Arc<MemberVerifier>,
) -> Result<ServerConfig, rustls::Error> {
    server_config_for(certified, verifier, ALPN)
}

/// [`server_config`] with another client verifier and ALPN protocol (password joins).
pub(crate) fn server_config_for(
    certified: Arc<CertifiedKey>,
    verifier: Arc<dyn ClientCertVerifier>,
    alpn: &[u8],
) -> Result<ServerConfig, rustls::Error> {
    server_config_resolved(Arc::new(SingleCertAndKey::from(certified)), verifier, alpn)
}

/// [`server_config_for`] with the certificate chosen per ClientHello (QUIC routes by SNI
/// inside the handshake).
pub(crate) fn server_config_resolved(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    verifier: Arc<dyn ClientCertVerifier>,
    alpn: &[u8],
) -> Result<ServerConfig, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13_ONLY)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    cfg.max_early_data_size = 0;
    Ok(cfg)
}

/// The client side of one handshake. `certified` is `None` only in tests of the refusal of
/// certificate-less clients.
pub(crate) fn client_config(
    certified: Option<Arc<CertifiedKey>>,
    verifier: Arc<MemberVerifier>,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13_ONLY)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match certified {
        Some(c) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(c))),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn;
    cfg.resumption = Resumption::disabled();
    cfg.enable_early_data = false;
    Ok(cfg)
}

/// Signs TLS handshakes with our [`KeyPair`]; rustls never sees the secret.
#[derive(Debug)]
struct Ed25519Key(Arc<KeyPair>);

impl SigningKey for Ed25519Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(Ed25519Signer(self.0.clone())) as Box<dyn Signer>)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.0.public().spki_der()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

#[derive(Debug)]
struct Ed25519Signer(Arc<KeyPair>);

impl Signer for Ed25519Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(self.0.sign(message).as_bytes().to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// What the verifier of one handshake concluded.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The peer's chain, once it validated.
    pub(crate) chain: Option<ValidatedChain>,
    /// Why the peer was refused.
    pub(crate) refusal: Option<Refusal>,
}

/// Verifies the peer of one handshake (either side): its certificate list, rebuilt root
/// first, must validate for the trusted group now against the current revocations, and the
/// handshake must be signed by the leaf key with Ed25519. Records its conclusion so the
/// caller learns the exact reason of a refusal (rustls only carries an alert).
#[derive(Debug)]
pub(crate) struct MemberVerifier {
    trust: GroupTrust,
    outcome: Mutex<Outcome>,
}

impl MemberVerifier {
    pub(crate) fn new(trust: GroupTrust) -> Arc<Self> {
        Arc::new(MemberVerifier {
            trust,
            outcome: Mutex::new(Outcome::default()),
        })
    }

    /// The conclusion so far.
    pub(crate) fn take_outcome(&self) -> Outcome {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, refusal: Refusal) -> rustls::Error {
        let error = rustls::Error::InvalidCertificate(certificate_error(&refusal));
        self.lock().refusal = Some(refusal);
        error
    }

    fn check_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<ValidatedChain, Refusal> {
        if intermediates.len() >= MAX_CHAIN_LEN {
            return Err(Refusal::new(
                RefusalKind::NotMember,
                format!(
                    "{} certificates is too long a chain",
                    intermediates.len() + 1
                ),
            ));
        }
        let ders: Vec<&[u8]> = intermediates
            .iter()
            .rev()
            .map(|c| c.as_ref())
            .chain(std::iter::once(end_entity.as_ref()))
            .collect();
        let chain = CertChain::from_ders(&ders).map_err(|e| {
            Refusal::new(
                RefusalKind::NotMember,
                format!("not a group certificate chain: {e}"),
            )
        })?;
        let leaf_key = *chain.leaf().public_key();
        let valid = self
            .trust
            .validate(&chain, &leaf_key)
            .map_err(|e| Refusal::from_chain(&e))?;
        if valid.is_group_root() {
            return Err(Refusal::new(
                RefusalKind::NotMember,
                "the group root certificate alone is not a member certificate",
            ));
        }
        Ok(valid)
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        match self.check_chain(end_entity, intermediates) {
            Ok(valid) => {
                self.lock().chain = Some(valid);
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal)),
        }
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
        let parsed = Certificate::parse(cert.as_ref())
            .map_err(|e| Refusal::new(RefusalKind::NotMember, format!("leaf certificate: {e}")))?;
        let key = *parsed.public_key();
        match &self.lock().chain {
            Some(chain) if chain.key() == &key => {}
            Some(_) => return Err(bad("signed for another certificate than the chain's".into())),
            None => return Err(bad("a signature before any validated certificate".into())),
        }
        let signature = Signature::from_slice(dss.signature()).map_err(|_| {
            bad(format!(
                "{} bytes is no Ed25519 signature",
                dss.signature().len()
            ))
        })?;
        key.verify(message, &signature)
            .map_err(|_| bad("the handshake signature does not verify with the leaf key".into()))
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|r| self.refuse(r))
    }

    fn refuse_tls12(&self) -> rustls::Error {
        self.refuse(Refusal::new(
            RefusalKind::Incompatible,
            "TLS 1.2 is not accepted",
        ))
    }
}

/// The certificate error whose alert tells the peer why, as closely as TLS can:
/// `unknown_ca` for non-members, `access_denied` for members of another group,
/// `certificate_expired`, `certificate_revoked`, `decrypt_error` for bad signatures,
/// `bad_certificate` for a joiner's unusable identity certificate.
pub(crate) fn certificate_error(refusal: &Refusal) -> CertificateError {
    match refusal.kind {
        RefusalKind::NotMember => CertificateError::UnknownIssuer,
        RefusalKind::WrongGroup => CertificateError::ApplicationVerificationFailure,
        RefusalKind::Expired => CertificateError::Expired,
        RefusalKind::Revoked => CertificateError::Revoked,
        RefusalKind::BadSignature => CertificateError::BadSignature,
        RefusalKind::BadIdentity => CertificateError::BadEncoding,
        _ => CertificateError::Other(OtherError(Arc::new(refusal.clone()))),
    }
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The server name only routed us to the group; trust comes from the chain alone,
        // validated on the trust's clock (not rustls's) so tests and peer time can move it.
        self.verify_chain(end_entity, intermediates)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(self.refuse_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for MemberVerifier {
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
        self.verify_chain(end_entity, intermediates)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(self.refuse_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
