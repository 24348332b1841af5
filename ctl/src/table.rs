//! The status table: one row per node, this node first, columns an operator scans during an
//! incident (reachable, how far behind in blocks and time, retry queue, backoff, last sync).

use sapix_core::status::{ClusterStatus, NodeStatus};

const HEADERS: [&str; 8] = [
    "NODE",
    "ROLE",
    "REACHABLE",
    "LAG BLOCKS",
    "LAG",
    "PULL LAG",
    "BACKOFF",
    "LAST SYNC",
];

/// `ms` as a short duration: `0s`, `4.2s`, `3m12s`, `2h05m`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 if ms % 1000 == 0 => format!("{s}s"),
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn row(n: &NodeStatus, now_ms: u64, me: bool) -> [String; 8] {
    let dash = || "-".to_string();
    let opt = |v: Option<u64>| v.map_or_else(dash, |v| v.to_string());
    let ago = if me {
        dash()
    } else if n.last_sync_ms == 0 {
        "never".into()
    } else {
        format!("{} ago", duration(now_ms.saturating_sub(n.last_sync_ms)))
    };
    [
        if me {
            format!("{} (this node)", n.agent_id)
        } else {
            n.agent_id.to_string()
        },
        format!("{:?}", n.role),
        if n.reachable { "yes" } else { "NO" }.into(),
        opt(n.queue_depth),
        n.lag_ms.map_or_else(dash, duration),
        opt(n.pull_lag_blocks),
        n.backoff_ms.map_or_else(dash, duration),
        ago,
    ]
}

/// The table for `status`, as seen at wall time `now_ms`, and a summary line.
pub fn render(status: &ClusterStatus, now_ms: u64) -> String {
    let rows: Vec<[String; 8]> = status
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| row(n, now_ms, i == 0))
        .collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(HEADERS.to_vec());
    for r in &rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    let mode = format!("{:?}", status.consistency).to_uppercase();
    out += &format!(
        "consistency {mode}, {}\n",
        if status.partitioned {
            "PARTITIONED: a peer is unreachable (CP refuses writes)"
        } else {
            "every peer reachable"
        }
    );
    out
}

/// `GET /v1/chains` as a table: one line per author.
pub fn chains(json: &serde_json::Value) -> String {
    let mut text = format!("{:<24} {:>10}  {}\n", "AUTHOR", "SEQ", "HASH");
    for c in json["chains"].as_array().into_iter().flatten() {
        text += &format!(
            "{:<24} {:>10}  {}\n",
            c["author"].as_str().unwrap_or("?"),
            c["seq"],
            c["hash"].as_str().unwrap_or("?")
        );
    }
    text
}

/// The records of a page, one line each.
fn records(json: &serde_json::Value) -> String {
    let mut text = format!(
        "{:<20} {:>10}  {:<16} {:<20} {}\n",
        "AUTHOR", "SEQ", "HASH", "COLLECTION", "DATA"
    );
    for r in json["records"].as_array().into_iter().flatten() {
        let hash = r["hash"].as_str().unwrap_or("?");
        text += &format!(
            "{:<20} {:>10}  {:<16} {:<20} {}\n",
            r["author"].as_str().unwrap_or("?"),
            r["seq"],
            &hash[..hash.len().min(16)],
            r["collection"].as_str().unwrap_or("?"),
            r["data"]
        );
    }
    text
}

/// A collection page as a table, then the cursor of the next page.
pub fn collection_page(json: &serde_json::Value) -> String {
    let mut text = records(json);
    let next = json["next"].as_str().unwrap_or("");
    if json["more"] == true {
        text += &format!("more: --after {next}\n");
    } else {
        text += &format!("end of the collection held here (later: --after {next})\n");
    }
    text
}

/// A chain page as a table: one line per record, then where the next page starts.
pub fn chain_page(json: &serde_json::Value) -> String {
    let mut text = records(json);
    let withheld = json["withheld"].as_u64().unwrap_or(0);
    if withheld > 0 {
        text += &format!("({withheld} records withheld: this token may not read them)\n");
    }
    match json["next_after_seq"].as_u64() {
        Some(next) => text += &format!("more: --after-seq {next} (tip {})\n", json["tip"]),
        None => text += &format!("end of the chain held here (tip {})\n", json["tip"]),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapix_core::{AgentId, Consistency, Role};

    fn node(id: &str, reachable: bool) -> NodeStatus {
        NodeStatus {
            agent_id: AgentId::new(id).unwrap(),
            endpoint: format!("http://{id}:7475"),
            role: Role::Replica,
            added_at_ms: 0,
            last_sync_ms: 1_000_000,
            reachable,
            blocks: None,
            queue_depth: Some(4),
            backoff_ms: Some(2_000),
            pull_cursor: Some(9),
            last_commit_ms: None,
            lag_ms: Some(192_000),
            pull_lag_blocks: Some(0),
            head_key: None,
            head_keys_enrolled: None,
            head_keys: None,
            head_seq: None,
            head_witnesses: None,
            equivocations: None,
        }
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(4_200), "4.2s");
        assert_eq!(duration(192_000), "3m12s");
        assert_eq!(duration(7_500_000), "2h05m");
    }

    #[test]
    fn the_table_has_a_row_per_node_and_says_what_is_wrong() {
        let status = ClusterStatus {
            nodes: vec![node("primary", true), node("replica-eu", false)],
            partitioned: true,
            consistency: Consistency::Cp,
            auth: None,
        };
        let table = render(&status, 1_065_000);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NODE"), "{table}");
        assert!(lines[1].starts_with("primary (this node)"), "{table}");
        let eu = lines[2];
        for cell in ["replica-eu", "NO", "4", "3m12s", "2s", "1m05s ago"] {
            assert!(eu.contains(cell), "{cell:?} missing: {eu}");
        }
        assert!(
            lines[3].contains("CP") && lines[3].contains("PARTITIONED"),
            "{table}"
        );
    }
}
