//! Replication sub-machines, each a plain struct tested on its own; [`crate::node::Node`]
//! composes them. See DESIGN §4.

pub mod backoff;
pub mod membership;
pub mod peer;
pub mod pull;
