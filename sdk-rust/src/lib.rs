//! Write Outpost plugins in Rust.
