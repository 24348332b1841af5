//! # sapix-runtime
//!
//! The tokio shell around `sapix-core`: it owns the clocks, the durable strand and the
//! network, performs the effects the core asks for and feeds the results back as inputs.
//! Policy never lives here: see `sapix_core::node`.

pub mod actor;
pub mod blocking;
pub mod clock;
pub mod codios;
pub mod disk;
pub mod evidence;
pub mod http;
pub mod mesh;
pub mod metrics;
pub mod persist;
pub mod state_file;
pub mod strand;
pub mod tls;
