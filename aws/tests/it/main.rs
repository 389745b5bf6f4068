//! The AWS adapters against AWS-protocol endpoints: the simulator over the wire (`sim::wire`, in process)
//! for DRS, EC2, STS and IAM, and moto (started by the test command) for DynamoDB, EC2 and STS.

mod moto;
mod wire;
