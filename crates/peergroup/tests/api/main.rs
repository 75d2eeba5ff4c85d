//! The peergroup API, end to end: one test binary, a file per area, every peer a real
//! infrastructure with its own data directory and a TLS endpoint on loopback, in this
//! process. Every test builds its own peers (see `support`) and is bounded in time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

mod bounds;
mod credentials;
mod database;
mod direct;
mod events;
mod forgery;
mod group;
mod infrastructure;
mod join;
mod members;
mod properties;
mod quic;
mod records;
