//! # sapix-server
//!
//! The `sapix-agent` binary's library: environment configuration, the HTTP API, and start-up.

pub mod api;
pub mod config;
pub mod error;
pub mod startup;
