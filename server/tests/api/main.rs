//! Black-box tests of REST API v1: the real server on port 0, a temporary data folder, the bundled
//! simulated estate. One test binary; `spawn_app()` starts a server and returns a typed client.

mod aws_binary;
mod bad_input;
mod cli;
mod crash;
mod executions;
mod helpers;
mod launch;
mod matching;
mod oidc;
mod operability;
mod pairs;
mod plans;
mod protection_groups;
mod security;
