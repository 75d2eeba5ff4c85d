//! Attribute XML and search queries (work in progress).
