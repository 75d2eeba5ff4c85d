//! Group credentials on disk: what `group create` and `join` store and the other commands use.
//!
//! One file per (identity, group): `<home>/identities/<identity>/groups/<group>/credentials.json`
//! (mode 0600), holding the certificate chain, the group key when this identity created the
//! group, and the bootstrap addresses from the invitation.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use peergroup_credential_roles::{CertChain, GroupRoot};
use peergroup_identity::{IdentityStore, KeyPair, PeerName, SecretKey};
use serde::{Deserialize, Serialize};

const CREDENTIALS_FILE: &str = "credentials.json";

/// One identity's membership of one group.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) identity: PeerName,
    pub(crate) chain: CertChain,
    pub(crate) group_key: Option<KeyPair>,
    pub(crate) addresses: Vec<SocketAddr>,
}

impl Membership {
    pub(crate) fn group(&self) -> &PeerName {
        self.chain.group()
    }

    pub(crate) fn friendly_name(&self) -> &str {
        self.chain.root().subject_friendly_name()
    }

    /// The group root, when this identity holds the group key.
    #[allow(dead_code)]
    pub(crate) fn root(&self) -> Option<Result<GroupRoot>> {
        let key = self.group_key.as_ref()?;
        let grc = CertChain::from_ders(&[self.chain.root().der()]).map_err(anyhow::Error::from);
        Some(grc.and_then(|grc| {
            GroupRoot::from_parts(KeyPair::from_secret(&key.secret()), grc)
                .map_err(anyhow::Error::from)
        }))
    }
}

#[derive(Serialize, Deserialize)]
struct CredentialsFile {
    version: u32,
    chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group_key: Option<String>,
    #[serde(default)]
    addresses: Vec<SocketAddr>,
}

fn path_of(store: &IdentityStore, identity: &PeerName, group: &PeerName) -> PathBuf {
    store
        .groups_dir(identity)
        .join(group.to_string())
        .join(CREDENTIALS_FILE)
}

/// Stores a new membership; refuses one that exists.
pub(crate) fn save(store: &IdentityStore, m: &Membership, replace: bool) -> Result<()> {
    let path = path_of(store, &m.identity, m.group());
    if !replace && path.exists() {
        bail!(
            "{} is already a member of group {} ({})",
            m.identity,
            m.group(),
            m.friendly_name()
        );
    }
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("bad path {}", path.display()))?;
    peergroup_identity::fs::create_private_dir(dir)?;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let file = CredentialsFile {
        version: 1,
        chain: b64.encode(m.chain.to_pkcs7()),
        group_key: m.group_key.as_ref().map(|k| b64.encode(k.secret().seed())),
        addresses: m.addresses.clone(),
    };
    peergroup_identity::fs::write_atomic(&path, &serde_json::to_vec_pretty(&file)?)?;
    Ok(())
}

/// Loads one membership.
pub(crate) fn load(
    store: &IdentityStore,
    identity: &PeerName,
    group: &PeerName,
) -> Result<Membership> {
    let path = path_of(store, identity, group);
    let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let corrupt = |why: String| anyhow!("corrupt file {}: {why}", path.display());
    let file: CredentialsFile =
        serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != 1 {
        return Err(corrupt(format!("unsupported version {}", file.version)));
    }
    let b64 = &base64::engine::general_purpose::STANDARD;
    let chain_bytes = b64
        .decode(&file.chain)
        .map_err(|e| corrupt(format!("chain: {e}")))?;
    let chain = CertChain::from_pkcs7(&chain_bytes).map_err(|e| corrupt(format!("chain: {e}")))?;
    if chain.group() != group {
        return Err(corrupt("the chain belongs to another group".into()));
    }
    let group_key = match file.group_key {
        None => None,
        Some(k) => {
            let seed = b64
                .decode(k)
                .map_err(|e| corrupt(format!("group key: {e}")))?;
            let seed: [u8; 32] = seed
                .try_into()
                .map_err(|_| corrupt("group key is not 32 bytes".into()))?;
            let key = KeyPair::from_secret(&SecretKey::from_seed(seed));
            if &key.public() != chain.root().public_key() {
                return Err(corrupt(
                    "the group key does not match the group root certificate".into(),
                ));
            }
            Some(key)
        }
    };
    Ok(Membership {
        identity: identity.clone(),
        chain,
        group_key,
        addresses: file.addresses,
    })
}

/// Every (identity, group) pair stored, optionally for one identity only.
pub(crate) fn list(store: &IdentityStore, only: Option<&PeerName>) -> Result<Vec<Membership>> {
    let mut out = Vec::new();
    let identities: Vec<PeerName> = match only {
        Some(p) => vec![p.clone()],
        None => store.list()?.into_iter().map(|s| s.peer_name).collect(),
    };
    for identity in identities {
        let dir = store.groups_dir(&identity);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(group) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<PeerName>().ok())
            else {
                continue;
            };
            match load(store, &identity, &group) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!("skipping {}: {e:#}", entry.path().display()),
            }
        }
    }
    out.sort_by(|a, b| (a.friendly_name(), a.group()).cmp(&(b.friendly_name(), b.group())));
    Ok(out)
}

/// Finds a membership by group peer name or unique friendly-name prefix.
pub(crate) fn find(
    store: &IdentityStore,
    query: &str,
    identity: Option<&PeerName>,
) -> Result<Membership> {
    let all = list(store, identity)?;
    let exact: Vec<&Membership> = all
        .iter()
        .filter(|m| m.group().to_string() == query || m.friendly_name() == query)
        .collect();
    let matches: Vec<&Membership> = if exact.is_empty() {
        all.iter()
            .filter(|m| m.friendly_name().starts_with(query))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [] => bail!("group not found: {query} (see `peergroup group list`)"),
        [one] => load(store, &one.identity, one.group()),
        many => bail!(
            "{query:?} matches several groups or memberships; name one with --identity or the \
             group peer name: {}",
            many.iter()
                .map(|m| format!("{} as {}", m.group(), m.identity))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
