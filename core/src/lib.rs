//! # sapix-core
//!
//! The pure, sans-IO heart of the SapixDB agent: the signed block model, the cluster key
//! schedule, and (in [`node`]) the state machine that makes every replication and
//! authorization decision. Nothing in this crate performs I/O, reads a clock or draws ambient
//! randomness; time arrives as an argument and effects leave as values, so the production
//! runtime and the deterministic simulator drive exactly the same code.
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod block;
pub mod chain;
pub mod digest;
pub mod id;
pub mod keys;
pub mod node;
pub mod repl;
pub mod status;
pub mod time;
pub mod wire;

pub use block::{Block, BlockBody, Hash, Signature, Verified};
pub use id::{AgentId, Collection};
pub use keys::{KeySchedule, MasterSeed, RootKey};
pub use node::{Input, Node, NodeConfig, Output, Response};
pub use status::{ClusterStatus, Consistency, Role};
pub use time::{Instant, UnixMillis};
