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
mod control;
mod demo;
mod input;
mod logfile;
mod malloc;
mod metrics;
mod progress;
mod stop;
mod terminal;
mod util;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::Styles;
use clap::error::ErrorKind;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

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
    /// Send data to one member over a direct connection.
    Send(cmd_record::SendArgs),
    /// Connect to the group briefly and list the connections made.
    Connections(cmd_record::ConnectionsArgs),
    /// Export or import a group's database.
    #[command(subcommand)]
    Db(cmd_maint::DbCommand),
    /// Export or import a group configuration (password protected).
    #[command(subcommand)]
    Config(cmd_maint::ConfigCommand),
    /// Give a member new credentials (admins): change its roles, or renew them.
    Credentials(cmd_maint::CredentialsArgs),
    /// Revoke a member (admins): every member refuses it from then on.
    Revoke(cmd_maint::RevokeArgs),
    /// Chat in a group: a terminal UI, or line mode when stdin is not a terminal.
    Chat(chat::ChatArgs),
    /// Start a real local group of several peers and show records, presence and chat flowing.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    malloc::tune();
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match parse(args.iter().cloned()) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // A node running on the data directory carries the command out (see `control.rs`).
    if forwardable(&cli.command) {
        let forwarded = util::Home::resolve(cli.home.clone())
            .and_then(|home| control::forward(&home.dir, &args));
        match forwarded {
            Ok(Some(code)) => return ExitCode::from(code),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: {}", util::one_line(&e));
                return ExitCode::FAILURE;
            }
        }
    }
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
        if !makes_home(&cli.command) && !home.dir.exists() {
            // A mistyped --home or PEERGROUP_HOME would otherwise start an empty home.
            anyhow::bail!(
                "no peergroup data directory at {} (is --home or PEERGROUP_HOME right? \
                 `peergroup identity create` makes one)",
                home.dir.display()
            );
        }
        dispatch(&home, cli.command, cli.verbose).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`peergroup … | head -1`): what it wanted, it has.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", util::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Whether writing the output failed because its reader closed the pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs a command on `home` (here, or in the running node for a client).
async fn dispatch(home: &util::Home, command: Command, verbose: u8) -> anyhow::Result<()> {
    match command {
        Command::Identity(c) => cmd_identity::run(home, c).await,
        Command::Group(c) => cmd_group::run(home, c).await,
        Command::Invite(a) => cmd_invite::invite(home, a).await,
        Command::Invitation(c) => cmd_invite::invitation(c),
        Command::Join(a) => cmd_invite::join(home, a).await,
        Command::Run(a) => cmd_run::run(home, a).await,
        Command::Record(c) => cmd_record::run(home, c).await,
        Command::Members(a) => cmd_record::members(home, a).await,
        Command::Connections(a) => cmd_record::connections(home, a).await,
        Command::Send(a) => cmd_record::send(home, a).await,
        Command::Db(c) => cmd_maint::db(home, c).await,
        Command::Config(c) => cmd_maint::config(home, c).await,
        Command::Revoke(a) => cmd_maint::revoke(home, a).await,
        Command::Credentials(a) => cmd_maint::credentials(home, a).await,
        Command::Chat(a) => chat::run(home, a, verbose).await,
        Command::Demo(a) => demo::run(a).await,
    }
}

/// Whether the command may start a data directory that does not exist yet (making or
/// importing an identity or a group configuration); the demo and reading an invitation file
/// use none.
fn makes_home(command: &Command) -> bool {
    matches!(
        command,
        Command::Identity(
            cmd_identity::IdentityCommand::Create { .. }
                | cmd_identity::IdentityCommand::Import { .. }
        ) | Command::Config(cmd_maint::ConfigCommand::Import { .. })
            | Command::Demo(_)
            | Command::Invitation(_)
    )
}

/// Whether a node running on the data directory carries this command out: everything that
/// reads or writes the directory, but not another node (`run`, `chat`), the demo (its own
/// directory) or reading an invitation file.
fn forwardable(command: &Command) -> bool {
    !matches!(
        command,
        Command::Run(_) | Command::Chat(_) | Command::Demo(_) | Command::Invitation(_)
    )
}

/// Parses the command line. clap renders its errors without styles here: a styled error,
/// once printed as plain text, has every escape sequence stripped, clap's and those in the
/// arguments it quotes alike, so what the user typed would be shown altered instead of
/// escaped by [`usage_error`].
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    let matches = Cli::command()
        .styles(Styles::plain())
        .try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// What clap found wrong with the command line, on one line like every other refusal (clap
/// writes a paragraph: the error, indented details, a usage line, a hint), the arguments it
/// quotes made [`inert`](terminal::inert). Help and version are printed as clap writes them,
/// styled.
fn usage_error(e: &clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        match Cli::try_parse() {
            Err(styled) => {
                let _ = styled.print();
            }
            Ok(_) => {
                let _ = e.print();
            }
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {}", terminal::inert(&usage_line(e)));
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// clap's message for `e` as one line. clap writes the error on its first line, details on
/// indented lines (missing arguments, the subcommands, a tip), a `Usage:` line and a closing
/// hint, with blank lines between; those become `; `-separated parts (the hint is dropped).
/// Any other line break is inside what the user typed and quoted: it is kept, for [`inert`]
/// to show as `\n`. When the message is a whole help text (no `error:`), only its usage is
/// kept.
///
/// [`inert`]: terminal::inert
fn usage_line(e: &clap::Error) -> String {
    // Unstyled (see `parse`): the text as clap wrote it, the arguments as typed.
    let text = e.render().ansi().to_string();
    let mut out = String::new();
    if !text.starts_with("error:") {
        let commands: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        if commands.is_empty() {
            out.push_str("an argument is missing");
        } else {
            out.push_str("a subcommand is needed: ");
            out.push_str(&commands.join(", "));
        }
        for usage in text.split('\n').filter(|l| l.starts_with("Usage:")) {
            out.push_str("; ");
            out.push_str(usage.trim());
        }
    } else {
        let mut after_blank = false;
        for (i, line) in text.trim_end_matches('\n').split('\n').enumerate() {
            if i == 0 {
                out.push_str(line.strip_prefix("error: ").unwrap_or(line));
            } else if line.is_empty() {
                after_blank = true;
            } else if line.starts_with("For more information") {
                continue;
            } else if after_blank || line.starts_with("  ") || line.starts_with("Usage:") {
                out.push_str(if out.ends_with(':') { " " } else { "; " });
                out.push_str(line.trim());
                after_blank = false;
            } else {
                out.push('\n');
                out.push_str(line);
            }
        }
    }
    out.push_str(" (see --help)");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_of(args: &[&str]) -> String {
        let e = parse(args.iter().map(OsString::from)).unwrap_err();
        terminal::inert(&usage_line(&e)).into_owned()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_one_line() {
        let missing = usage_of(&["peergroup", "identity", "create"]);
        assert!(
            missing.starts_with("the following required arguments were not provided: <FRIENDLY_NAME>; Usage: peergroup identity create"),
            "{missing}"
        );
        let unknown = usage_of(&["peergroup", "--bogus"]);
        assert!(
            unknown.starts_with("unexpected argument '--bogus' found"),
            "{unknown}"
        );
        let no_subcommand = usage_of(&["peergroup", "identity"]);
        assert!(
            no_subcommand.starts_with(
                "a subcommand is needed: create, list, xml, export, import, delete, default, \
                 rename; Usage: peergroup identity"
            ),
            "{no_subcommand}"
        );
        for line in [missing, unknown, no_subcommand] {
            assert!(
                !line.contains('\n') && line.ends_with("(see --help)"),
                "{line}"
            );
        }
    }

    #[test]
    fn a_line_break_typed_in_an_argument_is_shown_escaped() {
        let bad = usage_of(&[
            "peergroup",
            "record",
            "get",
            "--group",
            "g",
            "a\u{1b}[2J\nb\r",
        ]);
        assert!(bad.contains(r"a\u{1b}[2J\nb\r"), "{bad}");
        assert!(!bad.contains('\n') && !bad.contains('\r'), "{bad}");
    }
}
