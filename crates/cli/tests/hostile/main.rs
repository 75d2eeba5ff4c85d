//! Hostile input, through the real binary: remote and file text reaches the terminal inert
//! ([`text`]), and every file or stream read is bounded ([`limits`]).

mod limits;
mod support;
mod text;
