//! Integration tests of peergroup-invitation-xml, one binary built from many files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod failures;
mod homegroup;
mod never_panic;
mod roundtrip;
mod support;
mod xmllint;
