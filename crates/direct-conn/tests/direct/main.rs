//! Integration tests of direct connections: real TLS over real loopback sockets, each bounded
//! in time. One binary built from many files (shared fixtures in `support`).

mod data;
mod failures;
mod open;
mod support;
