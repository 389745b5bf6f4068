//! Roundtrip on real AWS: the cloud port over aws-sdk-drs, -ec2, -iam and -sts ([`AwsCloud`]), the store
//! port over DynamoDB ([`DynamoStore`]), and the least-privilege policies generated from the one table of
//! actions they call ([`iam`]).
//!
//! Nothing outside this crate sees an SDK type: [`error`] maps every AWS failure into the engine's
//! `CloudError`. The crate is kept apart because the SDK is large (aws-sdk-ec2 alone is 1.2 M lines) and
//! should be rebuilt rarely.

pub mod attempts;
pub mod clients;
pub mod cloud;
pub mod dynamo;
pub mod error;
pub mod iam;
pub mod settings;
pub use engine::pace as throttle;

// For tools and tests that seed an emulator through the same SDK.
pub use aws_credential_types;
pub use aws_sdk_ec2;
pub use clients::Clients;
pub use cloud::AwsCloud;
pub use dynamo::DynamoStore;
pub use settings::{AwsAccount, AwsSettings};
