//! The identity store: identities on disk under one directory.
//!
//! ```text
//! <root>/
//!   default                    the default identity's peer name
//!   <peer name>/identity.json  friendly name, certificate, secret seed (mode 0600)
//!   <peer name>/groups/        group data of this identity (written by the layers above)
//! ```
//!
//! Every file is replaced atomically ([`crate::fs::write_atomic`]); a damaged file is
//! reported as [`Error::CorruptFile`] and nothing else in the store is touched.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::idc::IdentityCertificate;
use crate::key::{KeyPair, SecretKey};
use crate::peer_name::{Classifier, PeerName};
use crate::seal::{self, KdfParams};
use crate::time::Timestamp;

const IDENTITY_FILE: &str = "identity.json";
const DEFAULT_FILE: &str = "default";
const GROUPS_DIR: &str = "groups";
/// The classifier used when none is given.
pub const DEFAULT_CLASSIFIER: &str = "identity";

/// An identity: its key pair and its certificate.
#[derive(Debug)]
pub struct Identity {
    key: KeyPair,
    idc: IdentityCertificate,
}

impl Identity {
    /// Makes a new identity in memory (not stored). Use [`IdentityStore::create`] to keep it.
    pub fn generate(
        friendly_name: &str,
        classifier: Classifier,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let key = KeyPair::generate()?;
        let name = PeerName::new(&key.public(), classifier);
        let idc = IdentityCertificate::create(&key, &name, friendly_name, now)?;
        Ok(Identity { key, idc })
    }

    /// Pairs a key with its certificate, checking that they belong together.
    pub fn from_parts(key: KeyPair, idc: IdentityCertificate) -> Result<Self, Error> {
        if idc.public_key() != &key.public() {
            return Err(Error::PeerNameMismatch);
        }
        Ok(Identity { key, idc })
    }

    /// The secure peer name.
    pub fn peer_name(&self) -> &PeerName {
        self.idc.peer_name()
    }

    /// The friendly name.
    pub fn friendly_name(&self) -> &str {
        self.idc.friendly_name()
    }

    /// The key pair.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The identity certificate.
    pub fn certificate(&self) -> &IdentityCertificate {
        &self.idc
    }
}

/// A line of [`IdentityStore::list`]: what PEER_NAME_PAIR held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdentitySummary {
    /// The secure peer name.
    pub peer_name: PeerName,
    /// The friendly name.
    pub friendly_name: String,
    /// Whether it is the default identity.
    pub is_default: bool,
}

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    version: u32,
    certificate: String,
    secret_key: String,
}

/// Identities kept in a directory.
#[derive(Clone, Debug)]
pub struct IdentityStore {
    root: PathBuf,
    kdf: KdfParams,
}

impl IdentityStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        crate::fs::create_private_dir(&root)?;
        Ok(IdentityStore {
            root,
            kdf: KdfParams::DEFAULT,
        })
    }

    /// Uses other Argon2id costs for exports (tests use cheap ones).
    pub fn with_kdf_params(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, peer: &PeerName) -> PathBuf {
        self.root.join(peer.to_string())
    }

    /// The directory where the layers above keep this identity's groups.
    pub fn groups_dir(&self, peer: &PeerName) -> PathBuf {
        self.dir_of(peer).join(GROUPS_DIR)
    }

    /// Creates and stores a new identity. The first identity becomes the default.
    pub fn create(&self, friendly_name: &str, classifier: Option<&str>) -> Result<Identity, Error> {
        let classifier = Classifier::new(classifier.unwrap_or(DEFAULT_CLASSIFIER))?;
        let identity = Identity::generate(friendly_name, classifier, Timestamp::now())?;
        self.save(&identity, false)?;
        Ok(identity)
    }

    fn save(&self, identity: &Identity, replace: bool) -> Result<(), Error> {
        let dir = self.dir_of(identity.peer_name());
        let path = dir.join(IDENTITY_FILE);
        if !replace && path.exists() {
            return Err(Error::AlreadyExists(identity.peer_name().to_string()));
        }
        crate::fs::create_private_dir(&dir)?;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let secret = identity.key.secret();
        let file = IdentityFile {
            version: 1,
            certificate: b64.encode(identity.idc.der()),
            secret_key: b64.encode(secret.seed()),
        };
        let text = Zeroizing::new(
            serde_json::to_vec_pretty(&file).map_err(|e| Error::Certificate(e.to_string()))?,
        );
        // Zero the base64 copy of the seed too.
        drop(Zeroizing::new(file.secret_key));
        crate::fs::write_atomic(&path, &text)?;
        if self.default_peer_name()?.is_none() {
            self.set_default(identity.peer_name())?;
        }
        Ok(())
    }

    /// Loads one identity by peer name.
    pub fn get(&self, peer: &PeerName) -> Result<Identity, Error> {
        let path = self.dir_of(peer).join(IDENTITY_FILE);
        let text = Zeroizing::new(match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::IdentityNotFound(peer.to_string()));
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        });
        let corrupt = |reason: String| Error::CorruptFile {
            path: path.clone(),
            reason,
        };
        let file: IdentityFile = serde_json::from_slice(&text)
            .map_err(|e| corrupt(format!("not an identity file: {e}")))?;
        if file.version != 1 {
            return Err(corrupt(format!("unsupported version {}", file.version)));
        }
        let b64 = &base64::engine::general_purpose::STANDARD;
        let der = b64
            .decode(&file.certificate)
            .map_err(|e| corrupt(format!("certificate: {e}")))?;
        let seed = Zeroizing::new(
            b64.decode(file.secret_key.as_bytes())
                .map_err(|e| corrupt(format!("secret key: {e}")))?,
        );
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("secret key is not 32 bytes".into()))?;
        let key = KeyPair::from_secret(&SecretKey::from_seed(seed));
        let idc = IdentityCertificate::from_der(&der)
            .map_err(|e| corrupt(format!("certificate: {e}")))?;
        if idc.peer_name() != peer {
            return Err(corrupt("certificate names another identity".into()));
        }
        Identity::from_parts(key, idc)
            .map_err(|_| corrupt("secret key does not match the certificate".into()))
    }

    /// Every stored identity, sorted by friendly name then peer name. Unreadable entries are
    /// skipped here (use [`IdentityStore::get`] to see why one fails).
    pub fn list(&self) -> Result<Vec<IdentitySummary>, Error> {
        let default = self.default_peer_name()?;
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| Error::io("list", &self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.root, e))?;
            let Some(peer) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<PeerName>().ok())
            else {
                continue;
            };
            if let Ok(identity) = self.get(&peer) {
                out.push(IdentitySummary {
                    is_default: default.as_ref() == Some(&peer),
                    friendly_name: identity.friendly_name().to_owned(),
                    peer_name: peer,
                });
            }
        }
        out.sort_by(|a, b| (&a.friendly_name, &a.peer_name).cmp(&(&b.friendly_name, &b.peer_name)));
        Ok(out)
    }

    /// Finds an identity by its peer name, or by a friendly-name prefix matching exactly one.
    pub fn find(&self, query: &str) -> Result<Identity, Error> {
        if let Ok(peer) = query.parse::<PeerName>() {
            return self.get(&peer);
        }
        let all = self.list()?;
        if let Some(exact) = all.iter().find(|s| s.friendly_name == query)
            && all.iter().filter(|s| s.friendly_name == query).count() == 1
        {
            return self.get(&exact.peer_name);
        }
        let matches: Vec<&IdentitySummary> = all
            .iter()
            .filter(|s| s.friendly_name.starts_with(query))
            .collect();
        match matches.as_slice() {
            [] => Err(Error::IdentityNotFound(query.to_owned())),
            [one] => self.get(&one.peer_name),
            many => Err(Error::AmbiguousIdentity {
                query: query.to_owned(),
                candidates: many
                    .iter()
                    .map(|s| s.peer_name.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The default identity's peer name, if one is set and still present.
    pub fn default_peer_name(&self) -> Result<Option<PeerName>, Error> {
        let path = self.root.join(DEFAULT_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let peer: PeerName = text.trim().parse().map_err(|_| Error::CorruptFile {
                    path: path.clone(),
                    reason: "not a peer name".into(),
                })?;
                Ok(self
                    .dir_of(&peer)
                    .join(IDENTITY_FILE)
                    .exists()
                    .then_some(peer))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// The default identity (the explicitly chosen one, else the only one).
    pub fn default_identity(&self) -> Result<Identity, Error> {
        if let Some(peer) = self.default_peer_name()? {
            return self.get(&peer);
        }
        match self.list()?.as_slice() {
            [only] => self.get(&only.peer_name),
            [] => Err(Error::IdentityNotFound("no identities yet".into())),
            _ => Err(Error::IdentityNotFound("no default identity is set".into())),
        }
    }

    /// Makes `peer` the default identity.
    pub fn set_default(&self, peer: &PeerName) -> Result<(), Error> {
        if !self.dir_of(peer).join(IDENTITY_FILE).exists() {
            return Err(Error::IdentityNotFound(peer.to_string()));
        }
        crate::fs::write_atomic(
            &self.root.join(DEFAULT_FILE),
            format!("{peer}\n").as_bytes(),
        )
    }

    /// The friendly name of `peer`.
    pub fn friendly_name(&self, peer: &PeerName) -> Result<String, Error> {
        Ok(self.get(peer)?.friendly_name().to_owned())
    }

    /// Renames `peer` (its certificate is issued anew; the key and peer name stay).
    pub fn set_friendly_name(&self, peer: &PeerName, name: &str) -> Result<Identity, Error> {
        let old = self.get(peer)?;
        let idc = IdentityCertificate::create(&old.key, peer, name, Timestamp::now())?;
        let identity = Identity { key: old.key, idc };
        self.save(&identity, true)?;
        Ok(identity)
    }

    /// Deletes `peer`. Refused while it still holds groups.
    pub fn delete(&self, peer: &PeerName) -> Result<(), Error> {
        let dir = self.dir_of(peer);
        if !dir.join(IDENTITY_FILE).exists() {
            return Err(Error::IdentityNotFound(peer.to_string()));
        }
        let groups = self.groups_dir(peer);
        if let Ok(mut entries) = fs::read_dir(&groups)
            && entries.next().is_some()
        {
            return Err(Error::GroupsExist(peer.to_string()));
        }
        fs::remove_dir_all(&dir).map_err(|e| Error::io("delete", &dir, e))?;
        crate::fs::sync_dir(&self.root)?;
        if self.default_peer_name()?.is_none() {
            let path = self.root.join(DEFAULT_FILE);
            if path.exists() {
                fs::remove_file(&path).map_err(|e| Error::io("delete", &path, e))?;
            }
        }
        Ok(())
    }

    /// Seals `peer` (secret key and certificate) under `password` for PEERIDENTITYEXPORT.
    pub fn export(&self, peer: &PeerName, password: &[u8]) -> Result<Vec<u8>, Error> {
        let identity = self.get(peer)?;
        let plain = seal::Plain {
            seed: *identity.key.secret().seed(),
            idc_der: identity.idc.der().to_vec(),
        };
        seal::seal(&plain, password, self.kdf)
    }

    /// Opens an exported identity and stores it. Refuses one that is already here, and one
    /// whose sealed certificate does not match `claimed` (the export's PEERNAME).
    pub fn import(
        &self,
        claimed: Option<&PeerName>,
        sealed: &[u8],
        password: &[u8],
    ) -> Result<Identity, Error> {
        let plain = seal::open(sealed, password)?;
        let key = KeyPair::from_secret(&SecretKey::from_seed(plain.seed));
        let idc = IdentityCertificate::from_der(&plain.idc_der)
            .map_err(|e| Error::MalformedExport(format!("certificate: {e}")))?;
        if claimed.is_some_and(|c| c != idc.peer_name()) {
            return Err(Error::MalformedExport(
                "PEERNAME does not match the sealed identity".into(),
            ));
        }
        let identity = Identity::from_parts(key, idc).map_err(|_| {
            Error::MalformedExport("secret key does not match the certificate".into())
        })?;
        self.save(&identity, false)?;
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, IdentityStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = IdentityStore::open(dir.path().join("ids"))
            .unwrap()
            .with_kdf_params(KdfParams::INSECURE_FAST);
        (dir, store)
    }

    #[test]
    fn create_list_find_default() {
        let (_d, s) = store();
        let alice = s.create("Alice", None).unwrap();
        let bob = s.create("Bob", Some("bob-laptop")).unwrap();
        let list = s.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].friendly_name, "Alice");
        assert!(list[0].is_default && !list[1].is_default);
        assert_eq!(s.find("Al").unwrap().peer_name(), alice.peer_name());
        assert_eq!(
            s.find(&bob.peer_name().to_string())
                .unwrap()
                .friendly_name(),
            "Bob"
        );
        assert!(bob.peer_name().to_string().ends_with(".bob-laptop"));
        assert!(matches!(s.find("Zed"), Err(Error::IdentityNotFound(_))));
        s.create("Alan", None).unwrap();
        assert!(matches!(s.find("Al"), Err(Error::AmbiguousIdentity { .. })));
        assert_eq!(s.find("Alice").unwrap().peer_name(), alice.peer_name());
        s.set_default(bob.peer_name()).unwrap();
        assert_eq!(s.default_identity().unwrap().peer_name(), bob.peer_name());
    }

    #[test]
    fn rename_keeps_key_and_name() {
        let (_d, s) = store();
        let a = s.create("Alice", None).unwrap();
        let renamed = s.set_friendly_name(a.peer_name(), "Alicia").unwrap();
        assert_eq!(renamed.peer_name(), a.peer_name());
        assert_eq!(s.friendly_name(a.peer_name()).unwrap(), "Alicia");
        assert!(s.set_friendly_name(a.peer_name(), "").is_err());
    }

    #[test]
    fn delete_refused_while_groups_exist() {
        let (_d, s) = store();
        let a = s.create("Alice", None).unwrap();
        let g = s.groups_dir(a.peer_name()).join("somegroup");
        fs::create_dir_all(&g).unwrap();
        assert!(matches!(
            s.delete(a.peer_name()),
            Err(Error::GroupsExist(_))
        ));
        fs::remove_dir_all(&g).unwrap();
        s.delete(a.peer_name()).unwrap();
        assert!(matches!(
            s.get(a.peer_name()),
            Err(Error::IdentityNotFound(_))
        ));
        assert!(s.default_peer_name().unwrap().is_none());
    }

    #[test]
    fn export_import() {
        let (_d, s) = store();
        let a = s.create("Alice", None).unwrap();
        let sealed = s.export(a.peer_name(), b"pw").unwrap();
        assert!(matches!(
            s.import(None, &sealed, b"pw"),
            Err(Error::AlreadyExists(_))
        ));
        let (_d2, other) = store();
        assert!(matches!(
            other.import(None, &sealed, b"nope"),
            Err(Error::WrongPassword)
        ));
        let wrong_claim: PeerName = format!("{}.x", "0".repeat(40)).parse().unwrap();
        assert!(other.import(Some(&wrong_claim), &sealed, b"pw").is_err());
        let imported = other.import(Some(a.peer_name()), &sealed, b"pw").unwrap();
        assert_eq!(imported.key().public(), a.key().public());
        assert_eq!(other.get(a.peer_name()).unwrap().friendly_name(), "Alice");
    }

    #[test]
    fn corrupt_file_is_reported_and_others_survive() {
        let (_d, s) = store();
        let a = s.create("Alice", None).unwrap();
        let b = s.create("Bob", None).unwrap();
        let path = s.root().join(a.peer_name().to_string()).join(IDENTITY_FILE);
        fs::write(&path, b"{ not json").unwrap();
        assert!(matches!(
            s.get(a.peer_name()),
            Err(Error::CorruptFile { .. })
        ));
        fs::write(
            &path,
            br#"{"version":1,"certificate":"AAAA","secret_key":"AAAA"}"#,
        )
        .unwrap();
        assert!(matches!(
            s.get(a.peer_name()),
            Err(Error::CorruptFile { .. })
        ));
        assert_eq!(s.get(b.peer_name()).unwrap().friendly_name(), "Bob");
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_d, s) = store();
        let a = s.create("Alice", None).unwrap();
        let path = s.root().join(a.peer_name().to_string()).join(IDENTITY_FILE);
        assert_eq!(
            fs::metadata(path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(s.root()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
