//! Shared helpers of the store integration tests: testkit's [`Kiln`]
//! runner for this crate's `kiln` binary.

#![allow(dead_code)]

pub(crate) use testkit::cli::Kiln;

/// A fresh, empty state directory for the `kiln` binary under test.
pub(crate) fn kiln() -> Kiln {
    Kiln::new(env!("CARGO_BIN_EXE_kiln"))
}
