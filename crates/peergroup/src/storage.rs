//! Where a group lives on disk, per identity:
//!
//! ```text
//! <data dir>/identities/<identity>/groups/<group>/
//!   credentials.json   the member's chain, the group key (creator), bootstrap addresses,
//!                      the password record (password groups, admins and inviting members:
//!                      an OPAQUE registration, see peergroup_transport::PasswordRecord)
//!   records.sqlite     the group's record database (WAL)
//! ```
//!
//! Files are written atomically with owner-only permissions; a damaged file is reported.

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use peergroup_credential_roles::CertChain;
use peergroup_credential_roles::RevocationSet;
use peergroup_identity::{Identity, IdentityStore, KeyPair, PeerName, SecretKey, Timestamp};
use peergroup_record_db::reserved::GroupProperties;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

const CREDENTIALS: &str = "credentials.json";
const DATABASE: &str = "records.sqlite";

/// One identity's membership of one group, as stored.
pub(crate) struct Membership {
    pub(crate) identity: PeerName,
    pub(crate) chain: CertChain,
    pub(crate) group_key: Option<KeyPair>,
    pub(crate) addresses: Vec<SocketAddr>,
    pub(crate) password: Option<Zeroizing<Vec<u8>>>,
}

impl Membership {
    pub(crate) fn group(&self) -> &PeerName {
        self.chain.group()
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group_key: Option<String>,
    #[serde(default)]
    addresses: Vec<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

pub(crate) fn group_dir(store: &IdentityStore, identity: &PeerName, group: &PeerName) -> PathBuf {
    store.groups_dir(identity).join(group.to_string())
}

/// The group's friendly name: what its properties record in the database says (after a
/// rename), or the root certificate's while that record has not arrived or the database
/// cannot be read.
pub(crate) fn friendly_name(store: &IdentityStore, m: &Membership) -> String {
    use peergroup_record_db::store::{SqliteStore, Store as _};
    let root = m.chain.root();
    let fallback = || root.subject_friendly_name().to_owned();
    let path = database_path(store, &m.identity, m.group());
    let Some(creator) = root.creator() else {
        return fallback();
    };
    if !path.is_file() {
        return fallback();
    }
    SqliteStore::open(&path)
        .ok()
        .and_then(|db| db.get(&GroupProperties::record_id(creator)).ok().flatten())
        .filter(|r| !r.is_deleted())
        .and_then(|r| GroupProperties::from_payload(&r.payload).ok())
        .map_or_else(fallback, |p| p.friendly_name)
}

pub(crate) fn database_path(
    store: &IdentityStore,
    identity: &PeerName,
    group: &PeerName,
) -> PathBuf {
    group_dir(store, identity, group).join(DATABASE)
}

fn b64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

/// Writes a membership (replacing it when `replace`).
pub(crate) fn save(store: &IdentityStore, m: &Membership, replace: bool) -> Result<()> {
    let dir = group_dir(store, &m.identity, m.group());
    let path = dir.join(CREDENTIALS);
    if !replace && path.exists() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} is already a member of group {}", m.identity, m.group()),
        ));
    }
    peergroup_identity::fs::create_private_dir(&dir)?;
    let file = File {
        version: 1,
        chain: b64().encode(m.chain.to_pkcs7()),
        group_key: m
            .group_key
            .as_ref()
            .map(|k| b64().encode(k.secret().seed())),
        addresses: m.addresses.clone(),
        password: m.password.as_ref().map(|p| b64().encode(&p[..])),
    };
    let text = Zeroizing::new(
        serde_json::to_vec_pretty(&file).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?,
    );
    peergroup_identity::fs::write_atomic(&path, &text)?;
    Ok(())
}

/// Reads a membership.
pub(crate) fn load(
    store: &IdentityStore,
    identity: &PeerName,
    group: &PeerName,
) -> Result<Membership> {
    let path = group_dir(store, identity, group).join(CREDENTIALS);
    let text = match std::fs::read(&path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::GroupNotFound,
                format!("{identity} is not a member of group {group}"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let corrupt = |why: String| {
        Error::new(
            ErrorKind::Corrupt,
            format!("corrupt file {}: {why}", path.display()),
        )
    };
    let file: File = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != 1 {
        return Err(corrupt(format!("unsupported version {}", file.version)));
    }
    let chain_bytes = b64()
        .decode(&file.chain)
        .map_err(|e| corrupt(format!("chain: {e}")))?;
    let chain = CertChain::from_pkcs7(&chain_bytes).map_err(|e| corrupt(format!("chain: {e}")))?;
    if chain.group() != group {
        return Err(corrupt("the chain belongs to another group".into()));
    }
    let group_key = match file.group_key {
        None => None,
        Some(k) => {
            let seed = Zeroizing::new(
                b64()
                    .decode(k)
                    .map_err(|e| corrupt(format!("group key: {e}")))?,
            );
            let seed: [u8; 32] = seed
                .as_slice()
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
    let password = match file.password {
        None => None,
        Some(p) => Some(Zeroizing::new(
            b64()
                .decode(p)
                .map_err(|e| corrupt(format!("password record: {e}")))?,
        )),
    };
    Ok(Membership {
        identity: identity.clone(),
        chain,
        group_key,
        addresses: file.addresses,
        password,
    })
}

/// Every group stored for `identity`, skipping (and logging) damaged entries.
pub(crate) fn list(store: &IdentityStore, identity: &PeerName) -> Vec<Membership> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(store.groups_dir(identity)) else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(group) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<PeerName>().ok())
        else {
            continue;
        };
        match load(store, identity, &group) {
            Ok(m) => out.push(m),
            Err(e) => tracing::warn!("skipping {}: {e}", entry.path().display()),
        }
    }
    out.sort_by(|a, b| {
        let name = |m: &Membership| m.chain.root().subject_friendly_name().to_owned();
        (name(a), a.group().to_string()).cmp(&(name(b), b.group().to_string()))
    });
    out
}

/// Removes a group's local data.
pub(crate) fn delete(store: &IdentityStore, identity: &PeerName, group: &PeerName) -> Result<()> {
    let dir = group_dir(store, identity, group);
    if !dir.join(CREDENTIALS).exists() {
        return Err(Error::new(
            ErrorKind::GroupNotFound,
            format!("{identity} is not a member of group {group}"),
        ));
    }
    std::fs::remove_dir_all(&dir)?;
    peergroup_identity::fs::sync_dir(&store.groups_dir(identity))?;
    Ok(())
}

/// Validates a chain issued to `me` (the invitation's or a password join's) and stores the
/// membership: nothing is stored when it is not `me`'s or not valid now.
pub(crate) fn store_joined(
    identities: &IdentityStore,
    me: &Identity,
    chain: peergroup_credential_roles::CertChain,
    addresses: Vec<SocketAddr>,
    password: Option<zeroize::Zeroizing<Vec<u8>>>,
) -> Result<PeerName> {
    let group = chain.group().clone();
    if chain.leaf().subject_peer() != me.peer_name() {
        return Err(Error::new(
            ErrorKind::InvitationNotTrusted,
            format!(
                "the invitation was issued to {} ({}), not to {}",
                chain.leaf().subject_peer(),
                chain.leaf().subject_friendly_name(),
                me.peer_name()
            ),
        ));
    }
    chain
        .validate(
            &group,
            Timestamp::now(),
            &RevocationSet::new(),
            Some(&me.key().public()),
        )
        .map_err(|e| match e {
            peergroup_credential_roles::ChainError::Expired { .. }
            | peergroup_credential_roles::ChainError::NotYetValid { .. } => Error::new(
                ErrorKind::InvalidTimePeriod,
                format!("the invitation is not valid now: {e}"),
            ),
            e => Error::new(
                ErrorKind::InvitationNotTrusted,
                format!("the invitation is not trusted: {e}"),
            ),
        })?;
    let membership = Membership {
        identity: me.peer_name().clone(),
        chain,
        group_key: None,
        addresses,
        password,
    };
    save(identities, &membership, false)?;
    Ok(group)
}

/// `extra` then `invited`, each address once.
pub(crate) fn with_extra(
    extra: &[std::net::SocketAddr],
    invited: &[std::net::SocketAddr],
) -> Vec<std::net::SocketAddr> {
    let mut out: Vec<std::net::SocketAddr> = Vec::with_capacity(extra.len() + invited.len());
    for a in extra.iter().chain(invited) {
        if !out.contains(a) {
            out.push(*a);
        }
    }
    out
}
