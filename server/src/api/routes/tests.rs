use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Guard, ROUTES};

/// `docs/openapi.yaml`, as JSON values.
fn openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
    serde_yaml_ng::from_str(&text).expect("docs/openapi.yaml is YAML")
}

/// `(METHOD, path)` → the operation, for every operation the document describes.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.insert((method.to_uppercase(), path.clone()), op.clone());
        }
    }
    ops
}

#[test]
fn the_route_table_has_no_route_twice() {
    let mut seen = BTreeSet::new();
    for r in ROUTES {
        assert!(
            seen.insert((r.method, r.path)),
            "{} {} twice",
            r.method,
            r.path
        );
        let mut sorted = r.statuses.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted, r.statuses,
            "{} {}: statuses sorted, once",
            r.method, r.path
        );
    }
}

#[test]
fn openapi_describes_exactly_the_routes_the_router_serves() {
    let doc = openapi();
    let ops = operations(&doc);
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let described: BTreeSet<(String, String)> = ops.keys().cloned().collect();
    assert_eq!(
        described.difference(&table).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "docs/openapi.yaml describes routes the router does not serve"
    );
    assert_eq!(
        table.difference(&described).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "the router serves routes docs/openapi.yaml does not describe"
    );
}

#[test]
fn openapi_lists_every_status_a_route_answers_and_no_other() {
    let ops = operations(&openapi());
    for r in ROUTES {
        let op = &ops[&(r.method.to_string(), r.path.to_string())];
        let documented: Vec<u16> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(|k| k.parse().expect("a numeric status"))
            .collect();
        assert_eq!(documented, r.statuses, "{} {}", r.method, r.path);
    }
}

#[test]
fn openapi_asks_a_token_exactly_where_the_route_needs_one() {
    let ops = operations(&openapi());
    for r in ROUTES {
        let op = &ops[&(r.method.to_string(), r.path.to_string())];
        let secured = op.get("security").is_some();
        assert_eq!(secured, r.guard != Guard::Open, "{} {}", r.method, r.path);
        let tags = op["tags"].as_array().expect("tags");
        let tagged = |t: &str| tags.iter().any(|x| x == t);
        match r.guard {
            Guard::Mesh => assert!(tagged("mesh"), "{} {} is a mesh route", r.method, r.path),
            Guard::Admin => assert!(tagged("admin"), "{} {} is an admin route", r.method, r.path),
            Guard::Open | Guard::Writer | Guard::Reader => {
                assert!(
                    !tagged("mesh") && !tagged("admin"),
                    "{} {}",
                    r.method,
                    r.path
                )
            }
        }
        // A denied read answers 404 like an absent record, so reads have 401 and no 403.
        let refusals: &[u16] = match r.guard {
            Guard::Open => &[],
            Guard::Reader => &[401],
            Guard::Writer | Guard::Mesh | Guard::Admin => &[401, 403],
        };
        let answered: Vec<u16> = [401, 403]
            .into_iter()
            .filter(|s| r.statuses.contains(s))
            .collect();
        assert_eq!(
            answered, refusals,
            "{} {}: 401 and 403 where a token is needed",
            r.method, r.path
        );
    }
}

#[test]
fn every_reference_in_openapi_resolves() {
    let doc = openapi();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "the document uses its components");
    for r in refs {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
