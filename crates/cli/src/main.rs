//! `peergroup`: secure peer-to-peer groups from the command line.
//!
//! Every command exits 0 on success and non-zero with a one-line reason on failure.

#![forbid(unsafe_code)]

mod cmd_group;
mod cmd_identity;
mod cmd_invite;
mod groups;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Secure peer-to-peer groups: identities, groups, invitations, a shared record database and
/// chat.
#[derive(Debug, Parser)]
#[command(name = "peergroup", version, about, long_about = None)]
struct Cli {
    /// Data directory (identities, groups, databases). Default: the platform data directory.
    #[arg(long, global = true, env = "PEERGROUP_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, export and delete identities.
    #[command(subcommand)]
    Identity(cmd_identity::IdentityCommand),
    /// Create and list groups.
    #[command(subcommand)]
    Group(cmd_group::GroupCommand),
    /// Invite an identity into a group: prints a PEERINVITATION.
    Invite(cmd_invite::InviteArgs),
    /// Inspect invitations.
    #[command(subcommand)]
    Invitation(cmd_invite::InvitationCommand),
    /// Join a group with an invitation issued to one of your identities.
    Join(cmd_invite::JoinArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    util::init_tracing(cli.verbose);
    let result = util::Home::resolve(cli.home).and_then(|home| match cli.command {
        Command::Identity(c) => cmd_identity::run(&home, c),
        Command::Group(c) => cmd_group::run(&home, c),
        Command::Invite(a) => cmd_invite::invite(&home, a),
        Command::Invitation(c) => cmd_invite::invitation(&home, c),
        Command::Join(a) => cmd_invite::join(&home, a),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes joined with ": ".
            eprintln!("error: {}", util::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
