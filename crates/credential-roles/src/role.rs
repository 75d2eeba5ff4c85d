//! Roles, with the GUIDs Windows gave them, and who may grant which.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::{Uuid, uuid};

/// A role GUID as it appears in certificates and on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleId(pub Uuid);

impl RoleId {
    /// PEER_GROUP_ROLE_ADMIN.
    pub const ADMIN: RoleId = RoleId(uuid!("04387127-aa56-450a-8ce5-4f565c6790f4"));
    /// PEER_GROUP_ROLE_MEMBER.
    pub const MEMBER: RoleId = RoleId(uuid!("f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2"));
    /// PEER_GROUP_ROLE_INVITING_MEMBER.
    pub const INVITING_MEMBER: RoleId = RoleId(uuid!("4370fd89-dc18-4cfb-8dbf-9853a8a9f905"));
}

impl fmt::Debug for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleId({{{}}})", self.0)
    }
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

/// A role a member holds in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Issues invitations and credentials of any role, may change or delete any record,
    /// revokes members.
    Admin,
    /// A member that may invite members and inviting members.
    InvitingMember,
    /// Publishes records and changes its own.
    Member,
}

impl Role {
    /// Every role, strongest first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::InvitingMember, Role::Member];

    /// The Windows GUID.
    pub const fn id(self) -> RoleId {
        match self {
            Role::Admin => RoleId::ADMIN,
            Role::InvitingMember => RoleId::INVITING_MEMBER,
            Role::Member => RoleId::MEMBER,
        }
    }

    /// The role of a GUID, if it is one of ours.
    pub fn from_id(id: RoleId) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Whether a holder of `self` may grant `other` (MS-PPSEC §2.2.5.3).
    pub const fn can_issue(self, other: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::InvitingMember => !matches!(other, Role::Admin),
            Role::Member => false,
        }
    }

    /// The short name used on the command line: `admin`, `inviting-member`, `member`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::InvitingMember => "inviting-member",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text is neither a role name nor a role GUID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use admin, inviting-member or member")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        if let Some(r) = Role::ALL.into_iter().find(|r| r.name() == s) {
            return Ok(r);
        }
        Uuid::parse_str(s.trim_matches(|c| c == '{' || c == '}'))
            .ok()
            .and_then(|u| Role::from_id(RoleId(u)))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A set of roles.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Roles(u8);

impl Roles {
    /// No roles.
    pub const EMPTY: Roles = Roles(0);

    const fn bit(r: Role) -> u8 {
        match r {
            Role::Admin => 1,
            Role::InvitingMember => 2,
            Role::Member => 4,
        }
    }

    /// A set of one role.
    pub const fn one(r: Role) -> Self {
        Roles(Self::bit(r))
    }

    /// Whether `r` is in the set.
    pub const fn contains(self, r: Role) -> bool {
        self.0 & Self::bit(r) != 0
    }

    /// Adds `r`.
    pub fn insert(&mut self, r: Role) {
        self.0 |= Self::bit(r);
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles, strongest first.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// Whether a holder of these roles may grant `r`.
    pub fn can_issue(self, r: Role) -> bool {
        self.iter().any(|mine| mine.can_issue(r))
    }

    /// Whether these roles may issue certificates at all (they make a CA certificate).
    pub fn is_issuer(self) -> bool {
        self.contains(Role::Admin) || self.contains(Role::InvitingMember)
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        let mut s = Roles::EMPTY;
        for r in iter {
            s.insert(r);
        }
        s
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Role::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuance_table() {
        use Role::*;
        let table = [
            (Admin, [true, true, true]),
            (InvitingMember, [false, true, true]),
            (Member, [false, false, false]),
        ];
        for (issuer, allowed) in table {
            for (subject, ok) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(issuer.can_issue(subject), ok, "{issuer} → {subject}");
            }
        }
    }

    #[test]
    fn names_and_guids_parse() {
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>().unwrap(), r);
            assert_eq!(r.id().to_string().parse::<Role>().unwrap(), r);
            assert_eq!(Role::from_id(r.id()), Some(r));
        }
        assert!("owner".parse::<Role>().is_err());
        assert_eq!(
            RoleId::ADMIN.to_string(),
            "{04387127-aa56-450a-8ce5-4f565c6790f4}"
        );
    }

    #[test]
    fn role_sets() {
        let s: Roles = [Role::Member, Role::InvitingMember].into_iter().collect();
        assert!(s.is_issuer() && s.can_issue(Role::Member) && !s.can_issue(Role::Admin));
        assert_eq!(s.to_string(), "inviting-member,member");
        assert!(!Roles::one(Role::Member).is_issuer());
    }
}
