//! `peergroup`: secure peer-to-peer groups from the command line.
//!
//! Every command exits 0 on success and non-zero with a one-line reason on failure.

#![forbid(unsafe_code)]

mod chat;
mod cmd_group;
mod cmd_identity;
mod cmd_invite;
mod cmd_maint;
mod cmd_record;
mod cmd_run;
mod demo;
mod progress;
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
    /// Create, list, show, change and delete groups.
    #[command(subcommand)]
    Group(cmd_group::GroupCommand),
    /// Invite an identity into a group (or make a password invitation): prints a PEERINVITATION.
    Invite(cmd_invite::InviteArgs),
    /// Inspect invitations.
    #[command(subcommand)]
    Invitation(cmd_invite::InvitationCommand),
    /// Join a group with an invitation (a password invitation needs --password-file).
    Join(cmd_invite::JoinArgs),
    /// Keep a member online: listening, syncing, presence; until interrupted.
    Run(cmd_run::RunArgs),
    /// Add, read, list, search and delete records.
    #[command(subcommand)]
    Record(cmd_record::RecordCommand),
    /// List the group's members.
    Members(cmd_record::MembersArgs),
    /// Connect to the group briefly and list the connections made.
    Connections(cmd_record::ConnectionsArgs),
    /// Export or import a group's database.
    #[command(subcommand)]
    Db(cmd_maint::DbCommand),
    /// Export or import a group configuration (password protected).
    #[command(subcommand)]
    Config(cmd_maint::ConfigCommand),
    /// Revoke a member (admins): every member refuses it from then on.
    Revoke(cmd_maint::RevokeArgs),
    /// Chat in a group: a terminal UI, or line mode when stdin is not a terminal.
    Chat(chat::ChatArgs),
    /// Start a real local group of several peers and show records, presence and chat flowing.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The chat UI owns the terminal; its logs go to a file instead (see `chat`).
    match cli.command {
        Command::Chat(_) => {}
        // The demo refuses a revoked member on purpose: its warnings would only be noise.
        Command::Demo(_) if cli.verbose == 0 => util::init_tracing_at("error"),
        _ => util::init_tracing(cli.verbose),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let home = util::Home::resolve(cli.home)?;
        match cli.command {
            Command::Identity(c) => cmd_identity::run(&home, c).await,
            Command::Group(c) => cmd_group::run(&home, c).await,
            Command::Invite(a) => cmd_invite::invite(&home, a).await,
            Command::Invitation(c) => cmd_invite::invitation(c),
            Command::Join(a) => cmd_invite::join(&home, a).await,
            Command::Run(a) => cmd_run::run(&home, a).await,
            Command::Record(c) => cmd_record::run(&home, c).await,
            Command::Members(a) => cmd_record::members(&home, a).await,
            Command::Connections(a) => cmd_record::connections(&home, a).await,
            Command::Db(c) => cmd_maint::db(&home, c).await,
            Command::Config(c) => cmd_maint::config(&home, c).await,
            Command::Revoke(a) => cmd_maint::revoke(&home, a).await,
            Command::Chat(a) => chat::run(&home, a, cli.verbose).await,
            Command::Demo(a) => demo::run(a).await,
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", util::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
