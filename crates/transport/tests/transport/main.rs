//! Integration tests of the transport: real TLS over real loopback sockets, each bounded in
//! time. One binary built from many files (shared fixtures in `support`).

mod auth;
mod bounds;
mod frames;
mod handshakes;
mod join;
mod liveness;
mod mdns;
mod punch;
mod quic;
mod relayed;
mod support;
