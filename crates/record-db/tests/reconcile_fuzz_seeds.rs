//! Runs the `reconcile` fuzz body over every seed in `fuzz/seeds/reconcile/`.
//!
//! Regenerate the seeds after a wire change with
//! `cargo test -p peergroup-record-db --test reconcile_fuzz_seeds -- --ignored regenerate`.

use std::path::Path;

use peergroup_record_db::reconcile::fuzz;
use peergroup_record_db::reconcile::measure::expected_outcome;

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/reconcile");

#[test]
fn fuzz_body_runs_over_every_seed() {
    let mut count = 0;
    for entry in std::fs::read_dir(SEEDS).expect("seed directory exists") {
        let path = entry.expect("readable directory").path();
        let data = std::fs::read(&path).expect("readable seed");
        fuzz::reconcile_messages(&data);
        count += 1;
    }
    assert!(count >= 4, "only {count} seeds in {SEEDS}");
}

/// The recorded conversation still drives both sessions to the exact outcome, so the seed
/// reaches the deep states (a wire change makes this fail: regenerate the seeds).
#[test]
fn recorded_conversation_seed_is_current() {
    let data = std::fs::read(Path::new(SEEDS).join("conversation.bin")).expect("seed exists");
    assert_eq!(
        data,
        fuzz::recorded_conversation(),
        "stale seed: regenerate"
    );
    // Frames are [target][len u16 LE][payload]: Start, More, Symbols, ..., Done.
    let (mut frames, mut rest) = (0, &data[..]);
    while let [_, lo, hi, tail @ ..] = rest {
        rest = &tail[usize::from(u16::from_le_bytes([*lo, *hi]))..];
        frames += 1;
    }
    assert!(frames >= 4, "conversation has only {frames} messages");
    let (a, b) = fuzz::sets();
    let (initiator, responder) = fuzz::run(&data);
    assert_eq!(initiator, Some(expected_outcome(&a, &b)));
    assert_eq!(responder, Some(expected_outcome(&b, &a)));
}

/// The truncated conversation leaves both sessions waiting; garbage reaches no outcome.
#[test]
fn partial_inputs_reach_no_outcome() {
    let conversation = fuzz::recorded_conversation();
    assert_eq!(
        fuzz::run(&conversation[..conversation.len() / 2]),
        (None, None)
    );
    assert_eq!(fuzz::run(&[0xff; 64]), (None, None));
}

#[test]
#[ignore]
fn regenerate() {
    std::fs::create_dir_all(SEEDS).expect("create seed directory");
    for (name, data) in fuzz::seed_corpus() {
        std::fs::write(Path::new(SEEDS).join(name), data).expect("write seed");
    }
}
