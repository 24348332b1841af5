//! # sapix-sim
//!
//! A deterministic simulator of a SapixDB cluster: 2–5 [`sapix_core::Node`]s, their strands
//! and state files, the network between them, their clocks and their clients, all in one
//! thread and all drawn from one `u64` seed. It drives the very state machine the agent runs,
//! maps its outputs exactly as the runtime and server do ([`mesh`]), injects faults
//! ([`faults`], [`network`], [`storage`], [`clock`]) in a mix the seed draws ([`config`],
//! swarm testing), and checks DESIGN §6 after every step ([`checkers`]). A failing seed
//! replays with `cargo run -p sapix-sim --release -- replay 0x<seed>`, and [`shrink`] finds
//! the smallest [`overrides`] of its configuration that still fail the same way.
//!
//! The [`world`] is the one thing those parts plug into: it holds the cluster and imports the
//! parts, which never import it (`tests/modules_form_no_circle.rs`).
//!
//! Layer 0b, `madsim_driver` (built only with `--cfg madsim`, by `cargo madsim-test`), drives
//! the same nodes, workload, Codios model and checkers (the same `World`, stepped by the same
//! code) over madsim's network and node kill/restart instead of this crate's event heap: a
//! second opinion with a different scheduler and network model.
//!
//! ```no_run
//! use sapix_sim::{runner, trace::Trace};
//! let report = runner::run_seed(0x2a, &[], Trace::quiet());
//! assert!(report.violation.is_none(), "{:?}", report.violation);
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod checkers;
pub mod clock;
mod codios;
pub mod config;
pub mod coverage;
mod faults;
mod forger;
mod host;
#[cfg(madsim)]
pub mod madsim_driver;
mod mesh;
pub mod network;
pub mod overrides;
pub mod runner;
pub mod shrink;
pub mod storage;
pub mod trace;
mod workload;
pub mod world;

pub use config::Config;
pub use world::{Report, Stats};
