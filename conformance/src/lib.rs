//! The Outpost conformance suite.
