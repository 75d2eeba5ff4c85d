//! The node's identities (PeerIdentityCreate, PeerIdentityGetXML, PeerIdentityExport…), with
//! the facade's error type and async style.

use std::path::Path;

use peergroup_identity::{Identity, IdentityStore, IdentitySummary, PeerName};

use crate::error::{Error, Result};

/// The identities kept in the data directory: create, list, find, rename, export, import and
/// delete them. Reached through [`Infrastructure::identities`](crate::Infrastructure::identities).
///
/// Every method reads or writes the disk (and export and import stretch a password), so each
/// is `async` and runs off the async threads; each returns the facade's [`Error`].
#[derive(Clone, Debug)]
pub struct Identities {
    store: IdentityStore,
}

impl Identities {
    pub(crate) fn new(store: IdentityStore) -> Self {
        Identities { store }
    }

    /// Where the identities are kept.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Creates and stores a new identity (PeerIdentityCreate). The first identity becomes the
    /// default.
    pub async fn create(&self, friendly_name: &str, classifier: Option<&str>) -> Result<Identity> {
        let name = friendly_name.to_owned();
        let classifier = classifier.map(str::to_owned);
        self.blocking(move |s| s.create(&name, classifier.as_deref()))
            .await
    }

    /// Loads one identity by peer name.
    pub async fn get(&self, peer: &PeerName) -> Result<Identity> {
        let peer = peer.clone();
        self.blocking(move |s| s.get(&peer)).await
    }

    /// Every stored identity, sorted by friendly name then peer name (PeerIdentityEnum).
    pub async fn list(&self) -> Result<Vec<IdentitySummary>> {
        self.blocking(|s| s.list()).await
    }

    /// Finds an identity by its peer name, or by a friendly-name prefix matching exactly one.
    pub async fn find(&self, query: &str) -> Result<Identity> {
        let query = query.to_owned();
        self.blocking(move |s| s.find(&query)).await
    }

    /// The default identity's peer name, if one is set and still present.
    pub async fn default_peer_name(&self) -> Result<Option<PeerName>> {
        self.blocking(|s| s.default_peer_name()).await
    }

    /// The default identity (the explicitly chosen one, else the only one)
    /// (PeerIdentityGetDefault).
    pub async fn default_identity(&self) -> Result<Identity> {
        self.blocking(|s| s.default_identity()).await
    }

    /// Makes `peer` the default identity.
    pub async fn set_default(&self, peer: &PeerName) -> Result<()> {
        let peer = peer.clone();
        self.blocking(move |s| s.set_default(&peer)).await
    }

    /// The friendly name of `peer` (PeerIdentityGetFriendlyName).
    pub async fn friendly_name(&self, peer: &PeerName) -> Result<String> {
        let peer = peer.clone();
        self.blocking(move |s| s.friendly_name(&peer)).await
    }

    /// Renames `peer`: its certificate is issued anew; the key and peer name stay
    /// (PeerIdentitySetFriendlyName).
    pub async fn set_friendly_name(&self, peer: &PeerName, name: &str) -> Result<Identity> {
        let peer = peer.clone();
        let name = name.to_owned();
        self.blocking(move |s| s.set_friendly_name(&peer, &name))
            .await
    }

    /// Deletes `peer` (PeerIdentityDelete). Refused while it still holds groups.
    pub async fn delete(&self, peer: &PeerName) -> Result<()> {
        let peer = peer.clone();
        self.blocking(move |s| s.delete(&peer)).await
    }

    /// Seals `peer` (secret key and certificate) under `password` for a PEERIDENTITYEXPORT
    /// (PeerIdentityExport).
    pub async fn export(&self, peer: &PeerName, password: &[u8]) -> Result<Vec<u8>> {
        let peer = peer.clone();
        let password = zeroize::Zeroizing::new(password.to_vec());
        self.blocking(move |s| s.export(&peer, &password)).await
    }

    /// Opens an exported identity and stores it (PeerIdentityImport). Refuses one that is
    /// already here, and one whose sealed certificate does not match `claimed` (the export's
    /// PEERNAME).
    pub async fn import(
        &self,
        claimed: Option<&PeerName>,
        sealed: &[u8],
        password: &[u8],
    ) -> Result<Identity> {
        let claimed = claimed.cloned();
        let sealed = sealed.to_vec();
        let password = zeroize::Zeroizing::new(password.to_vec());
        self.blocking(move |s| s.import(claimed.as_ref(), &sealed, &password))
            .await
    }

    /// Runs `f` on the store off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&IdentityStore) -> Result<T, peergroup_identity::Error> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        crate::blocking::run(move || f(&store).map_err(Error::from)).await
    }
}
