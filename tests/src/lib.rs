//! # sapix-tests
//!
//! Black-box tests of the real `sapix-agent` binary over loopback HTTP, and the harness they
//! share:
//!
//! - [`locate`] finds or builds the binaries under test (`SAPIX_AGENT_BIN` overrides);
//! - [`CodiosDev`] runs the `codios-dev` authorization server, to kill and bring back;
//! - [`Agent`] runs one agent in a temporary data directory: start, SIGKILL, restart on the
//!   same data and port, stderr kept and shown when a test fails;
//! - [`Api`] is a blocking client with a timeout on every call and the contract's answers;
//! - [`strand`] parses export pages byte-exactly and verifies a strand with `sapix-core`;
//! - [`audit`] runs `sapixctl verify` and tampers with a stopped agent's strand on disk;
//! - [`wait_until`] polls a condition against a deadline: tests never sleep for an event;
//! - [`turmoil_cluster`] runs three real nodes and a Codios host under turmoil with seeded
//!   faults (Layer 1), over the adapters in [`turmoil_net`] and the simulated file system in
//!   [`turmoil_disk`].
//!
//! The behaviours live in `tests/*.rs`, one file per area; `src/bin/sapix-load.rs` is a load
//! generator built on the same harness.

pub mod agent;
pub mod audit;
pub mod codios;
pub mod http;
pub mod locate;
pub mod raw;
pub mod strand;
pub mod turmoil_cluster;
pub mod turmoil_disk;
pub mod turmoil_net;
pub mod wait;

pub use agent::{Agent, AgentBuilder, Exited};
pub use codios::CodiosDev;
pub use http::{Api, Auth, Reply, Written};
pub use wait::{try_wait_until, wait_until};

/// A fixed master seed for tests that need several agents of one cluster.
pub const TEST_SEED: &str = "5a91d0c2e4f6a8b0c2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";

/// An agent of the [`TEST_SEED`] cluster with the given id.
pub fn cluster_agent(agent_id: &str) -> Agent {
    Agent::builder()
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_AGENT_ID", agent_id)
        .start()
}

/// The key schedule of the [`TEST_SEED`] cluster, to verify blocks independently.
pub fn test_keys() -> sapix_core::KeySchedule {
    sapix_core::KeySchedule::new(
        sapix_core::MasterSeed::from_hex(TEST_SEED).expect("TEST_SEED is 64 hex characters"),
    )
}
