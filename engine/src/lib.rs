//! Roundtrip's server-side core: the ports every adapter implements and the use-case services the REST
//! API and the console call.
//!
//! Direction of dependencies: this crate imports `domain` and nothing else of ours. Adapters (the simulated
//! estate, the embedded store, later AWS and DynamoDB) implement [`cloud::Cloud`], [`store::Store`] and
//! [`clock::Clock`]; the server wires one of each into [`services::Services`].

pub mod access;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod cloud;
pub mod cloud_accounts;
pub mod error;
pub mod executions;
pub mod failback;
pub mod groups;
pub mod launch;
pub mod metrics;
pub mod notify;
pub mod pace;
pub mod pairs;
pub mod plans;
pub mod readiness;
pub mod repo;
pub mod report;
pub mod retry;
pub mod services;
pub mod settings;
pub mod share;
pub mod store;

pub use services::{ServiceError, Services};
