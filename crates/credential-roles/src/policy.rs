//! Who may do what: the authorization policy as pure functions of a validated chain.
//!
//! | action | allowed to |
//! |---|---|
//! | invite with role R | holders of a role that may grant R (admin: any; inviting member: inviting member, member) |
//! | issue credentials | admins (and the group root) |
//! | set group properties | the group's creator only |
//! | add a record | every member |
//! | update or delete a record created by X | X itself, or an admin |
//! | revoke | admins |

use peergroup_identity::PeerName;

use crate::chain::ValidatedChain;
use crate::role::Role;

/// Something a member wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Invite someone with this role.
    Invite(Role),
    /// Issue (renew or change) credentials granting this role.
    IssueCredentials(Role),
    /// Change the group properties.
    SetProperties,
    /// Publish a new record.
    AddRecord,
    /// Update a record created by this peer.
    UpdateRecord {
        /// The record's creator.
        creator: &'a PeerName,
    },
    /// Delete a record created by this peer.
    DeleteRecord {
        /// The record's creator.
        creator: &'a PeerName,
    },
    /// Revoke a member or certificate.
    Revoke,
}

/// Why an action is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not authorized: {0}")]
pub struct Denied(pub String);

/// Decides whether the holder of `chain` may perform `action`.
pub fn authorize(chain: &ValidatedChain, action: Action<'_>) -> Result<(), Denied> {
    let roles = chain.roles();
    let is_admin = roles.contains(Role::Admin);
    let who = chain.peer();
    match action {
        Action::Invite(role) if roles.can_issue(role) => Ok(()),
        Action::Invite(role) => Err(Denied(format!(
            "{who} ({roles}) may not invite with the {role} role"
        ))),
        Action::IssueCredentials(role) if is_admin && roles.can_issue(role) => Ok(()),
        Action::IssueCredentials(_) => Err(Denied(format!(
            "only admins issue credentials; {who} holds {roles}"
        ))),
        Action::SetProperties if chain.is_group_root() || chain.creator() == Some(who) => Ok(()),
        Action::SetProperties => Err(Denied(format!(
            "only the group creator sets properties, not {who}"
        ))),
        Action::AddRecord => Ok(()),
        Action::UpdateRecord { creator } | Action::DeleteRecord { creator }
            if is_admin || creator == who =>
        {
            Ok(())
        }
        Action::UpdateRecord { creator } | Action::DeleteRecord { creator } => Err(Denied(
            format!("{who} may change only its own records, and this one belongs to {creator}"),
        )),
        Action::Revoke if is_admin => Ok(()),
        Action::Revoke => Err(Denied(format!("only admins revoke; {who} holds {roles}"))),
    }
}
