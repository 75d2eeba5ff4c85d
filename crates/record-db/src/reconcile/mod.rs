//! Set reconciliation (work in progress).
