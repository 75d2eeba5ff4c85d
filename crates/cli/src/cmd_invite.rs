//! `peergroup invite`, `peergroup invitation show`, `peergroup join`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use peergroup_credential_roles::{Action, MemberRequest, RevocationSet, Role, Roles, authorize};
use peergroup_identity::Timestamp;
use peergroup_invitation_xml::{Addresses, Cloud, IdentityInfo, Invitation};

use crate::groups::{self, Membership};
use crate::util::{self, Home};

#[derive(Debug, Args)]
pub(crate) struct InviteArgs {
    /// The group (peer name or friendly-name prefix).
    #[arg(long)]
    group: String,
    /// The invitee's PEERIDENTITYINFO file (from `peergroup identity xml`).
    #[arg(long, value_name = "FILE")]
    identity_info: PathBuf,
    /// The role to grant.
    #[arg(long, default_value = "member")]
    role: Role,
    /// How long the invitation (and the membership it grants) lasts.
    #[arg(long, default_value = "30d", value_parser = util::parse_duration)]
    expires: Duration,
    /// The inviting identity, when several of yours belong to the group.
    #[arg(long)]
    identity: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum InvitationCommand {
    /// Show what an invitation holds (PEER_INVITATION_INFO).
    Show {
        /// The PEERINVITATION file.
        file: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// The PEERINVITATION file.
    invitation: PathBuf,
    /// The identity the invitation was issued to (default: the default identity).
    #[arg(long)]
    identity: Option<String>,
}

fn read_invitation(path: &Path) -> Result<Invitation> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Invitation::parse_bytes(&bytes)
        .with_context(|| format!("{} is not a valid invitation", path.display()))
}

pub(crate) fn invite(home: &Home, a: InviteArgs) -> Result<()> {
    let me = a
        .identity
        .as_deref()
        .map(|q| home.identities.find(q))
        .transpose()?;
    let membership = groups::find(
        &home.identities,
        &a.group,
        me.as_ref().map(|i| i.peer_name()),
    )?;
    let me = home.identities.get(&membership.identity)?;
    let info_bytes = std::fs::read(&a.identity_info)
        .with_context(|| format!("reading {}", a.identity_info.display()))?;
    let invitee = IdentityInfo::parse_bytes(&info_bytes).with_context(|| {
        format!(
            "{} is not a valid PEERIDENTITYINFO",
            a.identity_info.display()
        )
    })?;
    let now = Timestamp::now();
    let valid = membership
        .chain
        .validate(
            membership.group(),
            now,
            &RevocationSet::new(),
            Some(&me.key().public()),
        )
        .context("your own credentials for this group are not valid")?;
    authorize(&valid, Action::Invite(a.role))?;
    let chain = membership.chain.issue(
        me.key(),
        &MemberRequest {
            subject_key: *invitee.certificate.public_key(),
            subject_peer: invitee.peer_name().clone(),
            subject_friendly_name: invitee.friendly_name().to_owned(),
            roles: Roles::one(a.role),
            classifiers: vec![],
            not_before: now,
            not_after: now.saturating_add(a.expires),
        },
    )?;
    let invitation = Invitation::new_certificate(
        chain,
        Cloud::global(),
        Addresses::new(membership.addresses.clone())?,
    )?;
    util::emit(a.output.as_deref(), &invitation.to_xml())
}

pub(crate) fn invitation(_home: &Home, cmd: InvitationCommand) -> Result<()> {
    match cmd {
        InvitationCommand::Show { file, json } => {
            let info = read_invitation(&file)?.info();
            if json {
                return util::print_json(&info);
            }
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            println!("scheme:          {:?}", info.auth_scheme);
            println!(
                "group:           {} ({})",
                info.group_peer_name, info.group_friendly_name
            );
            println!(
                "issuer:          {} ({})",
                opt(info.issuer_peer_name.map(|p| p.to_string())),
                opt(info.issuer_friendly_name)
            );
            println!(
                "subject:         {} ({})",
                opt(info.subject_peer_name.map(|p| p.to_string())),
                opt(info.subject_friendly_name)
            );
            println!(
                "valid:           {} to {}",
                opt(info.validity_start.map(|t| t.to_rfc3339())),
                opt(info.validity_end.map(|t| t.to_rfc3339()))
            );
            println!("roles:           {}", info.roles);
            let classifiers: Vec<&str> = info.classifiers.iter().map(|c| c.as_str()).collect();
            println!("classifiers:     {}", classifiers.join(","));
            println!(
                "cloud:           {} ({:?}, flags {})",
                info.cloud_name, info.scope, info.cloud_flags
            );
            let addrs: Vec<String> = info.addresses.iter().map(|a| a.to_string()).collect();
            println!(
                "addresses:       {}",
                if addrs.is_empty() {
                    "-".into()
                } else {
                    addrs.join(" ")
                }
            );
            Ok(())
        }
    }
}

pub(crate) fn join(home: &Home, a: JoinArgs) -> Result<()> {
    let me = home.identity(a.identity.as_deref())?;
    let invitation = read_invitation(&a.invitation)?;
    let Invitation::Certificate {
        chain, addresses, ..
    } = invitation
    else {
        bail!(
            "{} is a password invitation; joining with a password needs a running member \
             (`peergroup join --password-file`, coming with the network layer)",
            a.invitation.display()
        );
    };
    let group = chain.group().clone();
    if chain.leaf().subject_peer() != me.peer_name() {
        bail!(
            "the invitation was issued to {} ({}), not to {} ({})",
            chain.leaf().subject_peer(),
            chain.leaf().subject_friendly_name(),
            me.peer_name(),
            me.friendly_name()
        );
    }
    chain
        .validate(
            &group,
            Timestamp::now(),
            &RevocationSet::new(),
            Some(&me.key().public()),
        )
        .context("the invitation is not trusted")?;
    let membership = Membership {
        identity: me.peer_name().clone(),
        chain,
        group_key: None,
        addresses: addresses.as_slice().to_vec(),
    };
    groups::save(&home.identities, &membership, false)?;
    println!("{group}");
    Ok(())
}
