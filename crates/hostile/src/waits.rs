//! Every wait of the suite, named. Each is generous (a loaded 2-core machine shared with
//! builds), so a step that does not happen at all fails after it with a message saying what
//! was awaited; the one tight figure, [`MEMBER_GOAL`], is an assertion, not a wait.

use std::time::Duration;

/// The goal: an honest member holds the node's seeded records this soon after it starts
/// connecting, while an attack goes on.
pub(crate) const MEMBER_GOAL: Duration = Duration::from_secs(2);
/// How long the honest member is given before its sync counts as failed altogether (its time
/// is reported when it arrives late but within this).
pub(crate) const MEMBER_DEADLINE: Duration = Duration::from_secs(30);
/// One `peergroup` command (identity, group, invite, join).
pub(crate) const CLI_WAIT: Duration = Duration::from_secs(60);
/// A node process from start to its `listening` line.
pub(crate) const NODE_START_WAIT: Duration = Duration::from_secs(60);
/// One control-channel answer.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(60);
/// A node leaving cleanly once its input closes.
pub(crate) const NODE_STOP_WAIT: Duration = Duration::from_secs(30);
/// A TLS connection and a mesh hello answered.
pub(crate) const HANDSHAKE_WAIT: Duration = Duration::from_secs(30);
/// Records sent to the node becoming visible through its control channel; a second node
/// catching up with the first.
pub(crate) const STORE_WAIT: Duration = Duration::from_secs(60);
/// The idle node before its "before" memory is read.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);
/// Memory is still sampled this long after an attack stops ("right after").
pub(crate) const AFTER_ATTACK: Duration = Duration::from_secs(2);
/// Attack tasks stopping once told to.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(30);
/// A whole attack, set-up to records check.
pub(crate) const ATTACK_DEADLINE: Duration = Duration::from_secs(240);
/// The whole suite (full run); the watchdog kills every child and exits after it.
pub(crate) const SUITE_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The whole suite with `--short`.
pub(crate) const SUITE_DEADLINE_SHORT: Duration = Duration::from_secs(12 * 60);
