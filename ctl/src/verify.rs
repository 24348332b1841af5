//! `sapixctl verify`: an auditor anyone with a read token can run (issue 17). It fetches every
//! head the node holds, checks each author's signature against the head key pinned for that
//! author (pinned in the state file on first use, and only if it is the key the cluster
//! enrolled for that member), counts the witnesses whose cosignatures verify with their own
//! enrolled keys (at least `--min-witnesses`), checks that each head extends the one it
//! saw last time (a consistency proof from the node, verified against the root it kept, never
//! one the node states), and checks the inclusion of records given by hash in their author's
//! head. Nothing the node says is trusted unless a signature or a proof backs it. The state
//! file only moves forward when everything checked out, so a failure can be run again.

use std::collections::BTreeMap;
use std::path::Path;

use sapix_core::ledger::wire::{ConsistencyProof, HeadJson, HeadsJson, InclusionProof};
use sapix_core::ledger::{HeadKeys, HeadPublicKey, SignedHead};
use sapix_core::AgentId;
use sapix_core::Hash;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{Client, Failed};

/// What the auditor keeps between runs, per author.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Per author: its pinned head key and the last head verified.
    pub authors: BTreeMap<String, Seen>,
}

/// One author as last verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The head key, hex (pinned on first use).
    pub head_key: String,
    /// The tree size of the last head verified.
    pub seq: u64,
    /// Its root, hex.
    pub root: String,
}

/// One check and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked (an author, or a record hash).
    pub subject: String,
    /// Passed?
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The report of one run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Report {
    fn pass(&mut self, subject: impl Into<String>, detail: impl Into<String>) {
        self.push(subject, true, detail);
    }

    fn fail(&mut self, subject: impl Into<String>, detail: impl Into<String>) {
        self.push(subject, false, detail);
    }

    fn push(&mut self, subject: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            subject: subject.into(),
            ok,
            detail: detail.into(),
        });
    }

    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        json!({ "ok": self.ok(), "checks": self.checks })
    }

    /// The report as lines for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let verdict = if c.ok { "ok  " } else { "FAIL" };
            out += &format!("{verdict} {:<24} {}\n", c.subject, c.detail);
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        out += &match failed {
            0 => format!("verified: {} checks passed\n", self.checks.len()),
            n => format!("NOT verified: {n} of {} checks failed\n", self.checks.len()),
        };
        out
    }
}

fn load(path: Option<&Path>) -> Result<State, Failed> {
    let Some(path) = path else {
        return Ok(State::default());
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Failed(format!(
                "{} is not an auditor state file: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(Failed(format!("cannot read {}: {e}", path.display()))),
    }
}

fn save(path: &Path, state: &State) -> Result<(), Failed> {
    let text = serde_json::to_vec_pretty(state).expect("state serializes");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Failed(format!("cannot write {}: {e}", path.display())))
}

fn parse<T>(
    value: &Value,
    what: &str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    f(&value.to_string()).map_err(|e| format!("the node's {what} is malformed: {e}"))
}

/// What a run asks beyond the heads.
#[derive(Debug, Default)]
pub struct Asked<'a> {
    /// Records whose inclusion to check.
    pub hashes: &'a [String],
    /// Witnesses each head needs, at least.
    pub min_witnesses: usize,
}

/// Every member's enrolled head key (hex) and its chain of rotations, as the node's cluster
/// status shows them.
async fn enrolled_keys(client: &Client) -> Result<Enrolled, Failed> {
    let (status, body) = client.get("/v1/cluster/status").await?;
    if !status.is_success() {
        return Err(Failed(format!("the cluster status answered {status}")));
    }
    let nodes = body["nodes"].as_array().cloned().unwrap_or_default();
    let mut enrolled = Enrolled::default();
    for n in &nodes {
        let (Some(id), Some(key)) = (n["agent_id"].as_str(), n["head_key"].as_str()) else {
            continue;
        };
        enrolled.current.insert(id.into(), key.into());
        if let Ok(chain) = serde_json::from_value::<HeadKeys>(n["head_keys"].clone()) {
            enrolled.chains.insert(id.into(), chain);
        }
    }
    Ok(enrolled)
}

/// The members' enrolled head keys.
#[derive(Debug, Default)]
struct Enrolled {
    /// Each member's current key, hex.
    current: BTreeMap<String, String>,
    /// Each member's keys, oldest first, with their rotation signatures (if shown).
    chains: BTreeMap<String, HeadKeys>,
}

impl Enrolled {
    /// How many rotations, each signed by the key before it, lead from `pinned` to `now` in
    /// `member`'s chain of keys; `None` if no such chain is shown.
    fn rotations(&self, member: &str, pinned: &str, now: &HeadPublicKey) -> Option<usize> {
        let chain = self.chains.get(member)?;
        let id = AgentId::new(member).ok()?;
        if chain.clone().valid_prefix(&id).len() != chain.len() {
            return None;
        }
        let keys: Vec<String> = chain.links().iter().map(|l| l.key.to_hex()).collect();
        let from = keys.iter().position(|k| k == pinned)?;
        let to = keys.iter().position(|k| *k == now.to_hex())?;
        to.checked_sub(from).filter(|n| *n > 0)
    }
}

/// Runs the audit against `client`; returns the report (the caller exits nonzero unless ok).
pub async fn verify(
    client: &Client,
    token: Option<&str>,
    state_path: Option<&Path>,
    asked: Asked<'_>,
) -> Result<Report, Failed> {
    let mut state = load(state_path)?;
    let mut report = Report::default();
    let enrolled = enrolled_keys(client).await?;
    let heads = client.read("/v1/ledger/heads", token).await?;
    let heads: HeadsJson = serde_json::from_value(heads)
        .map_err(|e| Failed(format!("the node's heads are malformed: {e}")))?;
    // The heads that checked out, by author: inclusion proofs are checked against these.
    let mut trusted: BTreeMap<String, SignedHead> = BTreeMap::new();
    for json in &heads.heads {
        let author = json.author.clone();
        let known = Known {
            seen: state.authors.get(&author),
            enrolled: &enrolled,
            min_witnesses: asked.min_witnesses,
        };
        match check_head(client, token, json, known).await {
            Ok((head, detail)) => {
                report.pass(&author, detail);
                trusted.insert(author, head);
            }
            Err(why) => report.fail(&author, why),
        }
    }
    for (author, seen) in &state.authors {
        if !heads.heads.iter().any(|h| &h.author == author) {
            report.fail(
                author,
                format!(
                    "the node shows no head of {author}, last seen at seq {}",
                    seen.seq
                ),
            );
        }
    }
    for hash in asked.hashes {
        match check_inclusion(client, token, hash, &trusted).await {
            Ok(detail) => report.pass(short(hash), detail),
            Err(why) => report.fail(short(hash), why),
        }
    }
    if report.ok() {
        for (author, head) in &trusted {
            state.authors.insert(
                author.clone(),
                Seen {
                    head_key: head.key.to_hex(),
                    seq: head.head.seq,
                    root: head.head.root.to_hex(),
                },
            );
        }
        if let Some(path) = state_path {
            save(path, &state)?;
        }
    }
    Ok(report)
}

fn short(hash: &str) -> String {
    format!("record {}", hash.get(..12).unwrap_or(hash))
}

/// What one author's head is checked against.
struct Known<'a> {
    /// The author as last verified, if ever.
    seen: Option<&'a Seen>,
    /// Every member's enrolled head keys.
    enrolled: &'a Enrolled,
    /// Witnesses the head needs, at least.
    min_witnesses: usize,
}

/// The witnesses of `head` whose cosignatures verify with the key enrolled for them.
fn enrolled_witnesses(head: &SignedHead, enrolled: &BTreeMap<String, String>) -> usize {
    let mut counted: Vec<&str> = Vec::new();
    for c in &head.cosignatures {
        let witness = c.witness.as_str();
        let enrolled_key = enrolled.get(witness) == Some(&c.key.to_hex());
        let other = c.witness != head.head.author && !counted.contains(&witness);
        if enrolled_key && other && c.verifies(&head.head) {
            counted.push(witness);
        }
    }
    counted.len()
}

/// One author's head: signed by the pinned (and enrolled) key, witnessed by enough members
/// with their enrolled keys, and extending what was seen.
async fn check_head(
    client: &Client,
    token: Option<&str>,
    json: &HeadJson,
    known: Known<'_>,
) -> Result<(SignedHead, String), String> {
    let head = SignedHead::try_from(json).map_err(|e| format!("malformed head: {e}"))?;
    if !head.verifies() {
        return Err(format!(
            "the head at seq {} has a bad signature",
            head.head.seq
        ));
    }
    let author = head.head.author.as_str();
    match known.enrolled.current.get(author) {
        Some(key) if *key != head.key.to_hex() => {
            return Err(format!(
                "seq {} is signed by {}, not by {}, the key enrolled for {author}",
                head.head.seq,
                short_key(&head.key),
                key.get(..16).unwrap_or("")
            ))
        }
        Some(_) => {}
        None => {
            return Err(format!(
                "the cluster shows no enrolled head key for {author}"
            ))
        }
    }
    let witnesses = enrolled_witnesses(&head, &known.enrolled.current);
    if witnesses < known.min_witnesses {
        return Err(format!(
            "seq {} has {witnesses} witness(es) with enrolled keys, fewer than the {} asked",
            head.head.seq, known.min_witnesses
        ));
    }
    let Some(seen) = known.seen else {
        return Ok((
            head.clone(),
            format!(
                "seq {} signed by {} (pinned on first use), {witnesses} witness(es)",
                head.head.seq,
                short_key(&head.key)
            ),
        ));
    };
    // A new key counts only through rotations each signed by the key before it.
    let mut rotated = String::new();
    if head.key.to_hex() != seen.head_key {
        match known.enrolled.rotations(author, &seen.head_key, &head.key) {
            Some(n) => {
                rotated = format!(
                    ", head key rotated from {} ({n} signed rotation(s))",
                    seen.head_key.get(..16).unwrap_or("")
                );
            }
            None => {
                return Err(format!(
                    "the head key changed: pinned {}, now {}, and no rotation signed by the \
                     pinned key leads to it",
                    seen.head_key.get(..16).unwrap_or(""),
                    short_key(&head.key)
                ))
            }
        }
    }
    let old_root = Hash::from_hex(&seen.root).ok_or("the state file's root is malformed")?;
    if head.head.seq < seen.seq {
        return Err(format!(
            "the head went back: seq {} after {}",
            head.head.seq, seen.seq
        ));
    }
    if head.head.seq == seen.seq {
        return match head.head.root == old_root {
            true => Ok((
                head,
                format!(
                    "seq {} unchanged, {witnesses} witness(es){rotated}",
                    seen.seq
                ),
            )),
            false => Err(format!(
                "two different roots at seq {}: a forked chain",
                seen.seq
            )),
        };
    }
    let path = format!(
        "/v1/ledger/proof/consistency?author={}&from={}&to={}",
        head.head.author, seen.seq, head.head.seq
    );
    let proof = client.read(&path, token).await.map_err(|e| e.0)?;
    let proof = parse(&proof, "consistency proof", |t| {
        ConsistencyProof::from_json(t).map_err(|e| e.to_string())
    })?;
    if proof.to_root != head.head.root || proof.from != seen.seq || proof.to != head.head.seq {
        return Err("the consistency proof is for another tree".into());
    }
    proof.verify(&old_root).map_err(|e| {
        format!(
            "seq {} is NOT consistent with seq {} seen before ({e}): the history was rewritten",
            head.head.seq, seen.seq
        )
    })?;
    let detail = format!(
        "seq {} extends seq {} seen before ({} proof hashes), {witnesses} witness(es){rotated}",
        head.head.seq,
        seen.seq,
        proof.path.len()
    );
    Ok((head, detail))
}

fn short_key(key: &HeadPublicKey) -> String {
    key.to_hex()[..16].to_string()
}

/// A record given by hash is in its author's verified head.
async fn check_inclusion(
    client: &Client,
    token: Option<&str>,
    hash: &str,
    trusted: &BTreeMap<String, SignedHead>,
) -> Result<String, String> {
    if hash.len() != 64 || Hash::from_hex(hash).is_none() {
        return Err(format!("{hash:?} is not a hash (64 hex characters)"));
    }
    // Where the record sits: ask for its proof against the latest head, then pin the size to
    // the head verified above.
    let first = client
        .read(&format!("/v1/ledger/proof/inclusion?hash={hash}"), token)
        .await
        .map_err(|e| e.0)?;
    let author = first["author"].as_str().unwrap_or_default().to_string();
    let head = trusted
        .get(&author)
        .ok_or_else(|| format!("no verified head of its author {author:?}"))?;
    let path = format!(
        "/v1/ledger/proof/inclusion?hash={hash}&head_seq={}",
        head.head.seq
    );
    let proof = client.read(&path, token).await.map_err(|e| e.0)?;
    let proof = parse(&proof, "inclusion proof", |t| {
        InclusionProof::from_json(t).map_err(|e| e.to_string())
    })?;
    if proof.hash.to_hex() != hash || proof.tree_size != head.head.seq {
        return Err("the inclusion proof is for another record or tree".into());
    }
    proof.verify(&head.head.root).map_err(|e| {
        format!(
            "NOT included in {author}'s head at seq {} ({e})",
            head.head.seq
        )
    })?;
    Ok(format!(
        "{author}:{} is in the head at seq {} ({} proof hashes)",
        proof.seq,
        head.head.seq,
        proof.path.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapix_core::ledger::{Head, HeadKey};
    use sapix_core::AgentId;

    #[test]
    fn only_cosignatures_with_the_witness_enrolled_key_count() {
        let author = HeadKey::from_bytes([1; 32]);
        let (b, c) = (HeadKey::from_bytes([2; 32]), HeadKey::from_bytes([3; 32]));
        let mut head = author.sign(Head {
            author: AgentId::new("a").unwrap(),
            seq: 4,
            root: Hash([9; 32]),
            ts_ms: 1,
        });
        let as_b = AgentId::new("b").unwrap();
        let as_c = AgentId::new("c").unwrap();
        // b's twice: one witness all the same.
        head.cosignatures = vec![
            b.cosign(&as_b, &head.head),
            b.cosign(&as_b, &head.head),
            c.cosign(&as_c, &head.head),
        ];
        let enrolled: BTreeMap<String, String> = [
            ("b".to_string(), b.public().to_hex()),
            // c is enrolled with another key: its cosignature is not a witness's.
            (
                "c".to_string(),
                HeadKey::from_bytes([4; 32]).public().to_hex(),
            ),
        ]
        .into();
        assert_eq!(head.witnesses().len(), 2);
        assert_eq!(enrolled_witnesses(&head, &enrolled), 1);
    }

    #[test]
    fn a_new_key_counts_only_through_rotations_signed_by_the_pinned_key() {
        let member = AgentId::new("a").unwrap();
        let (k0, k1, k2) = (
            HeadKey::from_bytes([1; 32]),
            HeadKey::from_bytes([2; 32]),
            HeadKey::from_bytes([3; 32]),
        );
        let chain = HeadKeys::first(k0.public())
            .rotated(&member, &k0, k1.public())
            .and_then(|c| c.rotated(&member, &k1, k2.public()))
            .expect("two rotations");
        let mut enrolled = Enrolled::default();
        enrolled.chains.insert("a".into(), chain.clone());
        let pinned = k0.public().to_hex();
        assert_eq!(enrolled.rotations("a", &pinned, &k2.public()), Some(2));
        assert_eq!(
            enrolled.rotations("a", &k1.public().to_hex(), &k2.public()),
            Some(1)
        );
        // Backwards, to a key not in the chain, or for another member: nothing.
        assert_eq!(
            enrolled.rotations("a", &k2.public().to_hex(), &k0.public()),
            None
        );
        let stranger = HeadKey::from_bytes([7; 32]).public();
        assert_eq!(enrolled.rotations("a", &pinned, &stranger), None);
        assert_eq!(enrolled.rotations("b", &pinned, &k2.public()), None);
        // The second rotation's signature altered (as a node lying in its status would show
        // a key of its choosing): refused.
        let mut json = serde_json::to_value(&chain).unwrap();
        let sig = json[2]["signature"].as_str().unwrap().to_string();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        json[2]["signature"] = Value::String(format!("{flipped}{}", &sig[1..]));
        let forged: HeadKeys = serde_json::from_value(json).expect("still well-formed");
        enrolled.chains.insert("a".into(), forged);
        assert_eq!(enrolled.rotations("a", &pinned, &k2.public()), None);
    }
}
