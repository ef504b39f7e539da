//! The integration tests of `outpost-protocol`: one binary, one module per subject.
//!
//! - [`wire`]: the checked-in JSON Schema against the types;
//! - [`spec_examples`]: every JSON-RPC example of docs/protocol.md against both;
//! - [`framing`]: the line limit of docs/protocol.md §2.2 as the codec keeps it.

mod framing;
mod spec_examples;
mod wire;
