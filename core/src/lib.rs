//! # sapix-core
//!
//! The pure, sans-IO heart of the SapixDB agent: the signed block model, the cluster key
//! schedule, and (in [`node`]) the state machine that makes every replication and
//! authorization decision. Nothing in this crate performs I/O, reads a clock or draws ambient
//! randomness; time arrives as an argument and effects leave as values, so the production
//! runtime and the deterministic simulator drive exactly the same code.
//!
//! # Where things are
//!
//! - [`block`], [`digest`], [`keys`], [`chain`]: what a block is, how it is hashed, signed and
//!   verified, and where it may sit in its author's chain.
//! - [`node`]: the [`Node`] — [`Input`]s in (facts, past tense), [`Output`]s out (commands),
//!   one [`Response`] per request, [`node::Event`]s for the log, and its timer table.
//! - [`repl`]: per-peer push state and backoff, pull-sync cursors, membership.
//! - [`auth`]: the Codios decision cache and the circuit breaker.
//! - [`wire`]: the mesh's JSON contract, typed once for server and client.
//!
//! # Driving a node
//!
//! A shell owns the I/O. It feeds every fact with the time it observed it, performs every
//! output, and reports each completion back as an input; it wakes the node at
//! [`Node::poll_timeout`]:
//!
//! ```no_run
//! use sapix_core::node::{Restored, Output, Input};
//! use sapix_core::{AgentId, Instant, KeySchedule, MasterSeed, Node, NodeConfig, RootKey};
//!
//! let id = AgentId::new("primary").unwrap();
//! let keys = KeySchedule::new(MasterSeed::from_bytes([7; 32]));
//! let config = NodeConfig {
//!     agent_id: id.clone(),
//!     endpoint: "http://primary:7475".into(),
//!     added_at: sapix_core::UnixMillis(0),
//!     backoff: Default::default(),
//!     rng_seed: 1,
//!     root: RootKey::new("the root key").credential(),
//!     auth: Default::default(),
//!     head_key: sapix_core::ledger::HeadKey::from_bytes([9; 32]), // the node's own, random
//! };
//! let mut node = Node::new(config, keys.signing_key(&id), Restored::default());
//! # fn next_fact(_wake: Option<Instant>) -> Option<(Instant, Option<Input>)> { None }
//! # fn perform(_o: Output) {}
//! // One loop: a fact (a request, a completion) or the timer, then every output.
//! while let Some((now, fact)) = next_fact(node.poll_timeout()) {
//!     match fact {
//!         Some(input) => node.handle(now, input),
//!         None => node.handle_timeout(now),
//!     }
//!     while let Some(output) = node.poll_output() {
//!         perform(output); // append, push, respond, log… and report its completion later
//!     }
//! }
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod block;
pub mod chain;
pub mod digest;
pub mod endpoint;
pub mod id;
pub mod keys;
pub mod ledger;
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
