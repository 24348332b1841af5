//! The run's trace: a hash of every step, always, and the readable lines, when replaying.
//!
//! The hash is computed from cheap digests of what each step fed and what came out (kinds,
//! ids, seqs, block hashes), never from formatted text, so a run costs the same whether it
//! prints or not and the printed replay of a seed has the same hash as the hunt that found it.
//! Two runs of one seed must produce equal hashes; a test checks it.

use core::hash::{Hash, Hasher};
use std::io::Write;
use std::mem::discriminant;

use sapix_core::node::{Input, Output, Reply, Response};

use crate::config::{Micros, SECOND};

/// A small, fast, deterministic hasher (FxHash's mixing).
#[derive(Debug, Clone, Copy)]
pub struct Fx(pub u64);

impl Default for Fx {
    fn default() -> Self {
        Fx(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Digest of an input: its kind and the ids and seqs it carries.
pub fn input_digest(input: &Input, h: &mut Fx) {
    discriminant(input).hash(h);
    match input {
        Input::WriteRequested {
            request,
            credential,
            wall,
            ..
        } => (request, credential, wall.0).hash(h),
        Input::IngestRequested {
            request,
            blocks,
            head,
        } => {
            request.hash(h);
            blocks.iter().for_each(|b| b.block().hash.hash(h));
            head.as_ref().map(|v| v.get().head.seq).hash(h);
        }
        Input::Appended { token, offsets } => (token, offsets).hash(h),
        Input::CallEnded { call, outcome } => {
            call.hash(h);
            if let Ok(reply) = outcome {
                reply_digest(reply, h);
            }
        }
        _ => {}
    }
}

/// Digest of a call's answer: its kind and the ids and seqs it carries.
fn reply_digest(reply: &Reply, h: &mut Fx) {
    discriminant(reply).hash(h);
    match reply {
        Reply::Copied { next, sent } => (next, sent).hash(h),
        Reply::Gap { expected } => expected.hash(h),
        Reply::Probed {
            agent_id, holds, ..
        } => (agent_id, holds).hash(h),
        Reply::Page { blocks, next, tip } => {
            (next, tip).hash(h);
            blocks.iter().for_each(|b| b.block().hash.hash(h));
        }
        Reply::Ingested { witnessed } => witnessed.as_ref().map(|w| w.head.seq).hash(h),
        Reply::MembersUpdated { .. } | Reply::Decided(_) | Reply::Stored => {}
    }
}

/// Digest of an output.
pub fn output_digest(output: &Output, h: &mut Fx) {
    discriminant(output).hash(h);
    match output {
        Output::Append { token, blocks } => {
            token.hash(h);
            blocks.iter().for_each(|b| b.hash.hash(h));
        }
        Output::ResumeAppends => {}
        Output::Push { peer, from, to, .. } => (peer, from, to).hash(h),
        Output::Probe { peer, .. } => peer.hash(h),
        Output::ProbeBack { divider, .. } => divider.hash(h),
        Output::FetchPage { peer, after, .. } => (peer, after).hash(h),
        Output::PersistCursors { peer, cursor, .. } => (peer, cursor).hash(h),
        Output::PersistCluster { version, .. } => version.hash(h),
        Output::PersistHead { head } => (&head.head.author, head.head.seq).hash(h),
        Output::Copy { to, after, .. } => (to, after).hash(h),
        Output::Announce { to, .. } => to.hash(h),
        Output::Respond { request, response } => {
            request.hash(h);
            response_digest(response, h);
        }
        _ => {}
    }
}

fn response_digest(r: &Response, h: &mut Fx) {
    discriminant(r).hash(h);
    match r {
        Response::Written(rc) | Response::Indeterminate { receipt: rc, .. } => {
            (rc.hash, rc.seq, rc.offset).hash(h)
        }
        Response::Ingested {
            accepted,
            duplicates,
            witnessed,
        } => (accepted, duplicates, witnessed.as_ref().map(|w| w.head.seq)).hash(h),
        Response::ProbeAnswer { holds, .. } => holds.hash(h),
        _ => {}
    }
}

/// Where trace lines go, and the running hash.
pub struct Trace {
    hash: Fx,
    out: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trace({:016x})", self.hash.0)
    }
}

impl Trace {
    /// Hash only.
    pub fn quiet() -> Self {
        Trace {
            hash: Fx::default(),
            out: None,
        }
    }

    /// Hash, and every step printed to `out`.
    pub fn to(out: Box<dyn Write + Send>) -> Self {
        Trace {
            hash: Fx::default(),
            out: Some(out),
        }
    }

    /// Whether lines are printed.
    pub fn printing(&self) -> bool {
        self.out.is_some()
    }

    /// The hash of everything so far.
    pub fn hash(&self) -> u64 {
        self.hash.0
    }

    /// Mixes a step into the hash.
    pub fn mix(&mut self, v: u64) {
        self.hash.write_u64(v);
    }

    /// The hasher, for digests.
    pub fn hasher(&mut self) -> &mut Fx {
        &mut self.hash
    }

    /// Prints a line stamped with `now`, if printing; `line` is only called then.
    pub fn line(&mut self, now: Micros, line: impl FnOnce() -> String) {
        if let Some(out) = &mut self.out {
            let _ = writeln!(out, "{:>4}.{:06} {}", now / SECOND, now % SECOND, line());
        }
    }

    /// Flushes the printed lines.
    pub fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            let _ = out.flush();
        }
    }
}
