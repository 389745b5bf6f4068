//! Roundtrip's pure core, shared by the server and the browser.
//!
//! This crate owns the vocabulary of the product — identifiers, the estate model as AWS describes it,
//! Name-tag matching, pair and IP validation, and the stable error codes every edge reports. It does no
//! I/O, reads no clock and depends on nothing of ours, so `cargo check -p domain --target
//! wasm32-unknown-unknown` passes and the console runs the same validation as the server.

pub mod audit;
pub mod auth;
pub mod error;
pub mod estate;
pub mod execution;
pub mod group;
pub mod ids;
pub mod launch;
pub mod matching;
pub mod net;
pub mod notify;
pub mod plan;
pub mod readiness;
pub mod recovery;
pub mod report;
pub mod share;
pub mod text;
pub mod time;
pub mod validation;

pub use error::{ErrorCode, FieldError};
pub use ids::{AccountId, InstanceId, PairId, ProtectionGroupId, Region, SourceServerId, SubnetId};
