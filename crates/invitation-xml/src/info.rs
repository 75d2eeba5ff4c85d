//! `InvitationInfo`: what Windows' `PEER_INVITATION_INFO` holds, for display and `--json`.

use std::net::SocketAddr;

use peergroup_credential_roles::{Role, Roles};
use peergroup_identity::{Classifier, PeerName, PublicKey, Timestamp};
use serde::{Serialize, Serializer};

use crate::invitation::Invitation;
use crate::values::{AuthScheme, Scope};

/// What an invitation says, as `PEER_INVITATION_INFO` lays it out.
///
/// For a certificate invitation everything comes from the chain: the group is the root's,
/// the group friendly name is the root's subject name, the issuer is the certificate before
/// the leaf and the subject is the leaf (its validity, roles, classifiers and key). A password
/// invitation only knows the group and cloud, so the rest is `None` or empty.
///
/// Serialised with serde (for `--json`): times as RFC 3339 text, the key as hex, roles by
/// name (`admin`, `inviting-member`, `member`), addresses as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvitationInfo {
    /// How the invitation authenticates its holder.
    pub auth_scheme: AuthScheme,
    /// The PNRP cloud name.
    pub cloud_name: String,
    /// The PNRP scope.
    pub scope: Scope,
    /// The cloud flags.
    pub cloud_flags: u32,
    /// The group peer name.
    pub group_peer_name: PeerName,
    /// The group friendly name.
    pub group_friendly_name: String,
    /// Who issued the invitee's certificate.
    pub issuer_peer_name: Option<PeerName>,
    /// The issuer's friendly name.
    pub issuer_friendly_name: Option<String>,
    /// Whom the certificate is for.
    pub subject_peer_name: Option<PeerName>,
    /// The subject's friendly name.
    pub subject_friendly_name: Option<String>,
    /// Start of the membership's validity.
    #[serde(serialize_with = "rfc3339")]
    pub validity_start: Option<Timestamp>,
    /// End of the membership's validity.
    #[serde(serialize_with = "rfc3339")]
    pub validity_end: Option<Timestamp>,
    /// The roles granted.
    #[serde(serialize_with = "role_names")]
    pub roles: Roles,
    /// The certificate's classifiers.
    #[serde(serialize_with = "classifier_names")]
    pub classifiers: Vec<Classifier>,
    /// The key the certificate is for.
    #[serde(serialize_with = "hex_key")]
    pub subject_public_key: Option<PublicKey>,
    /// Members to dial.
    pub addresses: Vec<SocketAddr>,
}

impl InvitationInfo {
    pub(crate) fn of(invitation: &Invitation) -> Self {
        let cloud = invitation.cloud();
        let mut info = InvitationInfo {
            auth_scheme: invitation.auth_scheme(),
            cloud_name: cloud.name.as_str().to_owned(),
            scope: cloud.scope,
            cloud_flags: cloud.flags,
            group_peer_name: invitation.group().clone(),
            group_friendly_name: String::new(),
            issuer_peer_name: None,
            issuer_friendly_name: None,
            subject_peer_name: None,
            subject_friendly_name: None,
            validity_start: None,
            validity_end: None,
            roles: Roles::EMPTY,
            classifiers: Vec::new(),
            subject_public_key: None,
            addresses: invitation.addresses().as_slice().to_vec(),
        };
        match invitation {
            Invitation::Password {
                group_friendly_name,
                ..
            } => {
                info.group_friendly_name = group_friendly_name.as_str().to_owned();
            }
            Invitation::Certificate { chain, .. } => {
                let certs = chain.certificates();
                let root = chain.root();
                let leaf = chain.leaf();
                // The issuer is the certificate before the leaf; a lone root issued itself.
                let issuer = certs
                    .len()
                    .checked_sub(2)
                    .and_then(|i| certs.get(i))
                    .unwrap_or(root);
                info.group_friendly_name = root.subject_friendly_name().to_owned();
                info.issuer_peer_name = Some(issuer.subject_peer().clone());
                info.issuer_friendly_name = Some(issuer.subject_friendly_name().to_owned());
                info.subject_peer_name = Some(leaf.subject_peer().clone());
                info.subject_friendly_name = Some(leaf.subject_friendly_name().to_owned());
                info.validity_start = Some(leaf.not_before());
                info.validity_end = Some(leaf.not_after());
                info.roles = leaf.roles();
                info.classifiers = leaf.classifiers().to_vec();
                info.subject_public_key = Some(*leaf.public_key());
            }
        }
        info
    }
}

fn rfc3339<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

fn role_names<S: Serializer>(roles: &Roles, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(roles.iter().map(Role::name))
}

fn classifier_names<S: Serializer>(classifiers: &[Classifier], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(classifiers.iter().map(Classifier::as_str))
}

fn hex_key<S: Serializer>(key: &Option<PublicKey>, s: S) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.serialize_some(&hex::encode(k.as_bytes())),
        None => s.serialize_none(),
    }
}
