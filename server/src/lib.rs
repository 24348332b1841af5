//! # sapix-server
//!
//! The `sapix-agent` binary's library: environment configuration, the HTTP API, and start-up;
//! plus [`codios_dev`], the Codios-compatible dev server behind the `codios-dev` binary.

pub mod api;
pub mod codios_dev;
pub mod config;
pub mod error;
pub mod head_key;
pub mod serve;
pub mod startup;
