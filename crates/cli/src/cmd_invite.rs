//! `peergroup invite`, `peergroup invitation show`, `peergroup join`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use peergroup::{Invitation, Role};

use crate::input;
use crate::terminal::print_line;
use crate::util::{self, Home};

#[derive(Debug, Args)]
pub(crate) struct InviteArgs {
    /// The group (peer name or friendly-name prefix).
    #[arg(long)]
    group: String,
    /// The invitee's PEERIDENTITYINFO file (from `peergroup identity xml`).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "password",
        conflicts_with = "password"
    )]
    identity_info: Option<PathBuf>,
    /// Make a password invitation instead (for a password group; it holds no secret).
    #[arg(long)]
    password: bool,
    /// The role to grant.
    #[arg(long, default_value = "member")]
    role: Role,
    /// How long the invitation (and the membership it grants) lasts.
    #[arg(long, default_value = "30d", value_parser = util::parse_duration)]
    expires: Duration,
    /// The inviting identity, when several of yours belong to the group.
    #[arg(long)]
    identity: Option<String>,
    /// Where the invitee can reach a member (e.g. where `peergroup run` listens); repeatable.
    #[arg(long = "address", value_name = "ADDR")]
    addresses: Vec<std::net::SocketAddr>,
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
    /// For a password invitation: the first line of this file is the password. Joining then
    /// proves it to a member online.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// A member's address (HOST:PORT) to join through, tried before the invitation's own. An
    /// invitation made while its inviter was offline names none. Repeatable.
    #[arg(long, value_name = "ADDR")]
    connect: Vec<std::net::SocketAddr>,
}

/// Reads an invitation file's text through [`input::INVITATION`]; one too large is "not a
/// valid invitation", like any other the parser refuses.
fn read_invitation_text(path: &Path) -> Result<String> {
    input::read_text(path, input::INVITATION).map_err(|e| refused_invitation(path, e))
}

fn read_invitation(path: &Path) -> Result<Invitation> {
    let bytes = input::read_file_or_stdin(path, input::INVITATION)
        .map_err(|e| refused_invitation(path, e))?;
    Invitation::parse_bytes(&bytes)
        .with_context(|| format!("{} is not a valid invitation", path.display()))
}

/// An invitation over its limit said the way the parser's refusals are.
fn refused_invitation(path: &Path, e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<input::TooLarge>() {
        Some(t) => anyhow::anyhow!(
            "{} is not a valid invitation: it is {}",
            path.display(),
            t.reason()
        ),
        None => e,
    }
}

pub(crate) async fn invite(home: &Home, a: InviteArgs) -> Result<()> {
    let infra = home.offline().await?;
    let found = util::group(&infra, &a.group, a.identity.as_deref()).await?;
    let group = home.open_group(&infra, &found).await?;
    let result = async {
        if a.password {
            return Ok(group.create_password_invitation().await?);
        }
        let path = a
            .identity_info
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--identity-info is required"))?;
        let info = input::read_text(path, input::IDENTITY_INFO)?;
        Ok::<_, anyhow::Error>(group.create_invitation(&info, a.role, a.expires).await?)
    }
    .await;
    group.done().await?;
    let xml = with_addresses(&result?, &a.addresses)?;
    util::emit(a.output.as_deref(), &xml)
}

/// Adds addresses to an invitation (the ones it has stay first).
fn with_addresses(xml: &str, extra: &[std::net::SocketAddr]) -> Result<String> {
    if extra.is_empty() {
        return Ok(xml.to_owned());
    }
    let mut addrs: Vec<std::net::SocketAddr> = extra.to_vec();
    let invitation = Invitation::parse(xml)?;
    addrs.splice(0..0, invitation.addresses().as_slice().iter().copied());
    addrs.dedup();
    let addresses = peergroup_invitation_xml::Addresses::new(addrs)?;
    let rebuilt = match invitation {
        Invitation::Certificate { cloud, chain, .. } => {
            Invitation::new_certificate(chain, cloud, addresses)?
        }
        Invitation::Password {
            cloud,
            group,
            group_friendly_name,
            ..
        } => Invitation::new_password(group, group_friendly_name, cloud, addresses),
    };
    Ok(rebuilt.to_xml())
}

pub(crate) fn invitation(cmd: InvitationCommand) -> Result<()> {
    match cmd {
        InvitationCommand::Show { file, json } => {
            let info = read_invitation(&file)?.info();
            if json {
                return util::print_json(&info);
            }
            // Every field comes from the file: each line is printed inert.
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            print_line(&format!("scheme:          {:?}", info.auth_scheme))?;
            print_line(&format!(
                "group:           {} ({})",
                info.group_peer_name, info.group_friendly_name
            ))?;
            print_line(&format!(
                "issuer:          {} ({})",
                opt(info.issuer_peer_name.map(|p| p.to_string())),
                opt(info.issuer_friendly_name)
            ))?;
            print_line(&format!(
                "subject:         {} ({})",
                opt(info.subject_peer_name.map(|p| p.to_string())),
                opt(info.subject_friendly_name)
            ))?;
            print_line(&format!(
                "valid:           {} to {}",
                opt(info.validity_start.map(|t| t.to_rfc3339())),
                opt(info.validity_end.map(|t| t.to_rfc3339()))
            ))?;
            print_line(&format!("roles:           {}", info.roles))?;
            let classifiers: Vec<&str> = info.classifiers.iter().map(|c| c.as_str()).collect();
            print_line(&format!("classifiers:     {}", classifiers.join(",")))?;
            print_line(&format!(
                "cloud:           {} ({:?}, flags {})",
                info.cloud_name, info.scope, info.cloud_flags
            ))?;
            let addrs: Vec<String> = info.addresses.iter().map(|a| a.to_string()).collect();
            print_line(&format!(
                "addresses:       {}",
                if addrs.is_empty() {
                    "-".into()
                } else {
                    addrs.join(" ")
                }
            ))
        }
    }
}

pub(crate) async fn join(home: &Home, a: JoinArgs) -> Result<()> {
    let infra = home.offline().await?;
    let me = util::identity(&infra, a.identity.as_deref()).await?;
    let xml = read_invitation_text(&a.invitation)?;
    let invitation = Invitation::parse(&xml)
        .with_context(|| format!("{} is not a valid invitation", a.invitation.display()))?;
    let group = match (invitation, a.password_file) {
        (Invitation::Password { addresses, .. }, Some(f)) => {
            if addresses.as_slice().is_empty() && a.connect.is_empty() {
                bail!(
                    "{} names no member address (it was made while its group was not \
                     running): give one with --connect HOST:PORT",
                    a.invitation.display()
                )
            }
            let password = util::read_password_file(&f)?;
            infra
                .password_join_via(me.peer_name(), &xml, &password, &a.connect)
                .await?
        }
        (Invitation::Password { .. }, None) => {
            bail!(
                "{} is a password invitation: give the password with --password-file",
                a.invitation.display()
            )
        }
        (Invitation::Certificate { .. }, Some(_)) => {
            bail!(
                "{} is a certificate invitation: it needs no password",
                a.invitation.display()
            )
        }
        (Invitation::Certificate { .. }, None) => {
            infra.join_via(me.peer_name(), &xml, &a.connect).await?
        }
    };
    print_line(&group.to_string())?;
    Ok(())
}
