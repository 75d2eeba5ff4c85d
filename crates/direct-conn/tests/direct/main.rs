//! Integration tests of direct connections: real TLS over real loopback sockets, each bounded
//! in time. One binary built from many files (shared fixtures in `support`).

mod bounds;
mod data;
mod expiry;
mod failures;
mod open;
mod support;
