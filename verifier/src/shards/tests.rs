use std::time::{Duration, UNIX_EPOCH};

use rand_core::OsRng;
use serde_json::{Value, json};
use stele_tiles::note::{EcdsaP256Signer, Ed25519Signer};

use super::*;

fn ed25519(origin: &str, seed: u8) -> String {
    Ed25519Signer::from_seed(origin, &[seed; 32])
        .expect("a key")
        .verifier()
        .to_text()
}

fn ecdsa(origin: &str) -> String {
    EcdsaP256Signer::generate(origin, &mut OsRng)
        .expect("a key")
        .verifier()
        .to_spki_pem()
        .expect("PEM")
}

fn shard(name: &str, seed: u8) -> Value {
    let origin = format!("log.example.com/{name}");
    json!({
        "name": name,
        "origin": origin,
        "url": format!("https://log.example.com/{name}"),
        "vkey": ed25519(&origin, seed),
        "accept_from": null,
        "accept_until": null,
    })
}

fn parse(list: &Value) -> Result<ShardList> {
    ShardList::parse("shards.json", list.to_string().as_bytes())
}

/// The reason of a refused list, which must be an `Error::Shards` naming
/// the file.
fn refused(list: &Value) -> String {
    refused_bytes(list.to_string().as_bytes())
}

fn refused_bytes(data: &[u8]) -> String {
    match ShardList::parse("shards.json", data) {
        Err(Error::Shards { location, reason }) => {
            assert_eq!(location, "shards.json");
            reason
        }
        other => panic!("not refused as a shards list: {other:?}"),
    }
}

#[test]
fn reads_a_list_and_writes_it_back() {
    let mut second = shard("2027", 2);
    second["origin"] = json!("log.example.com/2027");
    second["vkey"] = json!(ecdsa("log.example.com/2027"));
    second["accept_from"] = json!("2027-01-01T00:00:00Z");
    second["accept_until"] = json!("2028-01-01T00:00:00.25Z");
    let list = json!({"shards": [shard("2026", 1), second]});
    let parsed = parse(&list).expect("a valid list");
    assert_eq!(parsed.shards.len(), 2);
    assert_eq!(parsed.names(), "2026, 2027");
    let first = parsed.get("2026").expect("listed");
    assert_eq!(first.origin, "log.example.com/2026");
    assert_eq!(first.key.origin, "log.example.com/2026");
    assert_eq!((first.accept_from, first.accept_until), (None, None));
    let ecdsa = parsed.by_origin("log.example.com/2027").expect("listed");
    assert_eq!(ecdsa.name, "2027");
    assert_eq!(
        ecdsa.accept_from,
        Some(UNIX_EPOCH + Duration::from_secs(1_798_761_600))
    );
    assert_eq!(
        ecdsa.accept_until,
        Some(UNIX_EPOCH + Duration::from_millis(1_830_297_600_250))
    );
    assert!(parsed.get("2028").is_none());
    // Written back, it reads the same, and writes the same again.
    let written = parsed.to_json();
    assert_eq!(written, list);
    let again = parse(&written).expect("reads back");
    assert_eq!(again.to_json(), written);
}

#[test]
fn window_bounds() {
    let mut entry = shard("a", 1);
    entry["accept_from"] = json!("2026-01-01T00:00:00Z");
    entry["accept_until"] = json!("2027-01-01T00:00:00Z");
    let list = parse(&json!({"shards": [entry]})).expect("valid");
    let shard = &list.shards[0];
    let from = humantime::parse_rfc3339("2026-01-01T00:00:00Z").expect("time");
    let until = humantime::parse_rfc3339("2027-01-01T00:00:00Z").expect("time");
    assert!(!shard.accepts_at(from - Duration::from_nanos(1)));
    assert!(shard.accepts_at(from));
    assert!(shard.accepts_at(until - Duration::from_nanos(1)));
    assert!(!shard.accepts_at(until));
    let open = parse(&json!({"shards": [shard_value_open()]})).expect("valid");
    assert!(open.shards[0].accepts_at(UNIX_EPOCH));
}

fn shard_value_open() -> Value {
    shard("open", 3)
}

#[test]
fn refuses_what_is_not_the_format() {
    let ok = shard("a", 1);
    assert!(refused_bytes(b"").contains("EOF"));
    assert!(refused_bytes(b"[]").contains("expected struct"));
    assert!(
        refused_bytes(format!("{} x", json!({"shards": [ok]})).as_bytes()).contains("trailing")
    );
    assert!(refused_bytes(&vec![b' '; MAX_SHARDS_BYTES + 1]).contains("limit"));
    assert_eq!(refused(&json!({"shards": []})), "lists no shards");
    assert!(refused(&json!({})).contains("missing field `shards`"));
    assert!(
        refused(&json!({"shards": [ok.clone()], "version": 1})).contains("unknown field `version`")
    );
    let mut extra = ok.clone();
    extra["witnesses"] = json!([]);
    assert!(refused(&json!({"shards": [extra]})).contains("unknown field `witnesses`"));
    for field in [
        "name",
        "origin",
        "url",
        "vkey",
        "accept_from",
        "accept_until",
    ] {
        let mut missing = ok.clone();
        missing.as_object_mut().expect("object").remove(field);
        let reason = refused(&json!({"shards": [missing]}));
        assert!(
            reason.contains(&format!("missing field `{field}`")),
            "{field}: {reason}"
        );
    }
    // A field given twice (serde_json's Value would keep the last one).
    let twice = br#"{"shards":[{"name":"a","name":"b","origin":"o","url":"https://x/a","vkey":"k","accept_from":null,"accept_until":null}]}"#;
    assert!(refused_bytes(twice).contains("duplicate field `name`"));
    let mut number = ok.clone();
    number["accept_from"] = json!(1_767_225_600);
    assert!(refused(&json!({"shards": [number]})).contains("invalid type"));
}

#[test]
fn refuses_bad_fields_naming_the_shard() {
    let case = |field: &str, value: Value| {
        let mut entry = shard("a", 1);
        entry[field] = value;
        refused(&json!({"shards": [entry]}))
    };
    for name in ["", "A", "-a", ".", "..", "a/b", "a b", &"a".repeat(64)] {
        let reason = case("name", json!(name));
        assert!(
            reason.contains("shard #1") && reason.contains("a name is [a-z0-9]"),
            "{name:?}: {reason}"
        );
    }
    let mut long = shard("a", 1);
    long["name"] = json!("a".repeat(63));
    parse(&json!({"shards": [long]})).expect("a 63-byte name");
    assert!(case("origin", json!("log example")).contains("shard \"a\": origin"));
    assert!(case("origin", json!("")).contains("origin \"\""));
    for url in [
        "log.example.com/a",
        "ftp://log.example.com/a",
        "https://",
        "https://log.example.com/a?x=1",
        "https://log.example.com/a#top",
        "/a",
    ] {
        let reason = case("url", json!(url));
        assert!(reason.starts_with("shard \"a\": url"), "{url}: {reason}");
    }
    assert!(case("vkey", json!("garbage")).starts_with("shard \"a\": vkey: "));
    let pem = ecdsa("log.example.com/a").replace("MFkw", "MFkX");
    assert!(case("vkey", json!(pem)).starts_with("shard \"a\": vkey: "));
    // The key of another log: its name is not the origin.
    let reason = case("vkey", json!(ed25519("log.example.com/b", 1)));
    assert_eq!(
        reason,
        "shard \"a\": vkey is the key of \"log.example.com/b\", not of the shard's origin \
         \"log.example.com/a\""
    );
    for time in [
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+01:00",
        "2026-13-01T00:00:00Z",
        "yesterday",
    ] {
        let reason = case("accept_until", json!(time));
        assert!(
            reason.contains("accept_until: ") && reason.contains("not an RFC 3339 time in UTC"),
            "{time}: {reason}"
        );
    }
    let mut backwards = shard("a", 1);
    backwards["accept_from"] = json!("2027-01-01T00:00:00Z");
    backwards["accept_until"] = json!("2027-01-01T00:00:00Z");
    assert_eq!(
        refused(&json!({"shards": [backwards]})),
        "shard \"a\": accept_from 2027-01-01T00:00:00Z is not before accept_until \
         2027-01-01T00:00:00Z"
    );
}

#[test]
fn refuses_two_shards_sharing_a_name_origin_or_url() {
    let a = shard("a", 1);
    let mut same_name = shard("b", 2);
    same_name["name"] = json!("a");
    assert_eq!(
        refused(&json!({"shards": [a.clone(), same_name]})),
        "shard \"a\": two shards have this name"
    );
    let mut same_origin = shard("b", 2);
    same_origin["origin"] = a["origin"].clone();
    same_origin["vkey"] = a["vkey"].clone();
    assert_eq!(
        refused(&json!({"shards": [a.clone(), same_origin]})),
        "shard \"b\": origin \"log.example.com/a\" is another shard's too"
    );
    let mut same_url = shard("b", 2);
    same_url["url"] = json!("https://log.example.com/a/");
    assert_eq!(
        refused(&json!({"shards": [a, same_url]})),
        "shard \"b\": url \"https://log.example.com/a/\" is another shard's too"
    );
}

#[test]
fn a_vkey_is_never_read_as_a_file() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("log.vkey");
    std::fs::write(&path, ed25519("log.example.com/a", 1)).expect("write");
    let mut entry = shard("a", 1);
    entry["vkey"] = json!(path.display().to_string());
    assert!(refused(&json!({"shards": [entry]})).starts_with("shard \"a\": vkey: "));
}

#[tokio::test]
async fn loads_from_a_file() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("shards.json");
    std::fs::write(&path, json!({"shards": [shard("a", 1)]}).to_string()).expect("write");
    let location = path.display().to_string();
    let list = ShardList::load(&location, &HttpOptions::default())
        .await
        .expect("loads");
    assert_eq!(list.names(), "a");
    std::fs::write(&path, "{}").expect("write");
    match ShardList::load(&location, &HttpOptions::default()).await {
        Err(Error::Shards { location: at, .. }) => assert_eq!(at, location),
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("none.json").display().to_string();
    assert!(matches!(
        ShardList::load(&missing, &HttpOptions::default()).await,
        Err(Error::NotFound { .. })
    ));
}
