//! The server side of one QUIC handshake's TLS: the group is chosen by the ClientHello's SNI
//! (after its ALPN is checked), and the client is verified against that group's trust with
//! the TCP transport's verifier. quinn hands rustls one configuration per connection, so a
//! [`Route`] lives for one handshake and remembers why it refused.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use peergroup_credential_roles::ValidatedChain;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::ALPN;
use crate::error::{Refusal, RefusalKind};
use crate::handshake::ServedGroup;
use crate::tls::{self, MemberVerifier, certificate_error};

/// Finds the group served under a server name.
pub(crate) type Lookup = dyn Fn(&str) -> Option<Arc<ServedGroup>> + Send + Sync;

/// What one handshake's route concluded.
#[derive(Default)]
pub(crate) struct RouteOutcome {
    /// The group the client asked for, when it is served here.
    pub(crate) served: Option<Arc<ServedGroup>>,
    /// The client's validated chain.
    pub(crate) chain: Option<ValidatedChain>,
    /// Why the client was refused.
    pub(crate) refusal: Option<Refusal>,
}

#[derive(Default)]
struct State {
    served: Option<Arc<ServedGroup>>,
    verifier: Option<Arc<MemberVerifier>>,
    refusal: Option<Refusal>,
}

/// One incoming handshake's certificate choice and client verification.
pub(crate) struct Route {
    lookup: Arc<Lookup>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").finish_non_exhaustive()
    }
}

impl Route {
    pub(crate) fn new(lookup: Arc<Lookup>) -> Arc<Self> {
        Arc::new(Route {
            lookup,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// quinn's server configuration for this handshake.
    pub(crate) fn server_config(
        self: &Arc<Self>,
        transport: Arc<quinn::TransportConfig>,
    ) -> Result<quinn::ServerConfig, String> {
        let tls = tls::server_config_resolved(self.clone(), self.clone(), ALPN)
            .map_err(|e| e.to_string())?;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls))
            .map_err(|e| e.to_string())?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport);
        Ok(config)
    }

    /// What the handshake came to (the group, the chain, or why it was refused).
    pub(crate) fn take_outcome(&self) -> RouteOutcome {
        let mut state = self.state();
        let member = state
            .verifier
            .take()
            .map(|v| v.take_outcome())
            .unwrap_or_default();
        RouteOutcome {
            served: state.served.take(),
            chain: member.chain,
            refusal: state.refusal.take().or(member.refusal),
        }
    }

    fn refuse(&self, kind: RefusalKind, detail: String) {
        self.state()
            .refusal
            .get_or_insert(Refusal::new(kind, detail));
    }

    fn verifier(&self) -> Result<Arc<MemberVerifier>, rustls::Error> {
        if let Some(v) = &self.state().verifier {
            return Ok(v.clone());
        }
        let refusal = Refusal::new(
            RefusalKind::UnknownGroup,
            "a certificate before any group was chosen",
        );
        let error = rustls::Error::InvalidCertificate(certificate_error(&refusal));
        self.state().refusal.get_or_insert(refusal);
        Err(error)
    }
}

impl ResolvesServerCert for Route {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered: Vec<Vec<u8>> = hello
            .alpn()
            .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        if !offered.iter().any(|p| p == ALPN) {
            // rustls refuses it next, with the `no_application_protocol` alert; we say why.
            let offered: Vec<String> = offered
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            self.refuse(
                RefusalKind::BadAlpn,
                format!("the client offered {offered:?}, not [\"peergroup/1\"]"),
            );
        }
        let Some(sni) = hello.server_name() else {
            self.refuse(
                RefusalKind::UnknownGroup,
                "the client named no group (no SNI)".into(),
            );
            return None;
        };
        // Unknown: rustls sends `access_denied` before it has seen any certificate of the
        // client's (the client tells that from a refusal of its chain, which comes after).
        let Some(served) = (self.lookup)(sni) else {
            self.refuse(
                RefusalKind::UnknownGroup,
                format!("no group here for server name {sni:?}"),
            );
            return None;
        };
        let certified = served.certified.clone();
        let mut state = self.state();
        state.verifier = Some(MemberVerifier::new(served.trust.clone()));
        state.served = Some(served);
        Some(certified)
    }
}

impl ClientCertVerifier for Route {
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
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls12_signature(&*self.verifier()?, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls13_signature(&*self.verifier()?, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
