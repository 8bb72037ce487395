//! The JSON of `stele trust` against hand-checked documents: two real keys
//! of Sigstore's public instance (its Rekor v2 Ed25519 log `log2025-1` and
//! its Rekor v1 ECDSA P-256 log), whose tlog entries in Sigstore's
//! production trusted root (as sigstore-python 4.5 embeds it) are copied
//! below, field for field; then the configuration rules and the writing
//! rules, on real files.

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use stele_tiles::note::{Ed25519Signer, NoteSigner};

use super::write::replaceable;
use super::*;

/// `log2025-1.rekor.sigstore.dev`'s key as a note verifier key, made by
/// hand from the trusted root's `rawBytes` (the last 32 bytes of the DER
/// SPKI) and its `logId` (whose first four bytes are the key ID).
const SIGSTORE_ED25519_VKEY: &str =
    "log2025-1.rekor.sigstore.dev+cf119915+AbfK5adZJxsI323FwGD2AJJ9F4i89cfDuLdGJBIYntuO";
const SIGSTORE_ED25519_ORIGIN: &str = "log2025-1.rekor.sigstore.dev";
/// `rekor.sigstore.dev`'s key, the trusted root's `rawBytes` in PEM.
const SIGSTORE_ECDSA_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
";
const SIGSTORE_ECDSA_ORIGIN: &str = "rekor.sigstore.dev";

/// The two tlog entries of Sigstore's production trusted root, plus the
/// checkpoint key ID (the first four bytes of each log ID), which that
/// root leaves out.
fn sigstore_tlogs() -> Value {
    json!([
        {
            "baseUrl": "https://rekor.sigstore.dev",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwrkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==",
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2021-01-12T11:53:27Z" }
            },
            "logId": { "keyId": "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=" },
            "checkpointKeyId": { "keyId": "wNI9ag==" }
        },
        {
            "baseUrl": "https://log2025-1.rekor.sigstore.dev",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": "MCowBQYDK2VwAyEAt8rlp1knGwjfbcXAYPYAkn0XiLz1x8O4t0YkEhie244=",
                "keyDetails": "PKIX_ED25519",
                "validFor": { "start": "2025-09-23T00:00:00Z" }
            },
            "logId": { "keyId": "zxGZFVvd0FEmjR8WrFwMdcAJ9vtaY/QXf44Y1wUeP6A=" },
            "checkpointKeyId": { "keyId": "zxGZFQ==" }
        }
    ])
}

fn at(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339(rfc3339).expect("an RFC 3339 time")
}

fn log(name: &str, url: &str, vkey: &str, origin: &str, window: Window, from: &str) -> TrustedLog {
    TrustedLog {
        name: name.to_owned(),
        url: url.to_owned(),
        key: PublicKey::parse(vkey, Some(origin)).expect("key"),
        window,
        valid_from: at(from),
    }
}

/// Sigstore's two logs, the Ed25519 one first (as a configuration might
/// list them): the trusted root puts the older first.
fn sigstore_logs() -> Vec<TrustedLog> {
    vec![
        log(
            "log2025-1",
            "https://log2025-1.rekor.sigstore.dev",
            SIGSTORE_ED25519_VKEY,
            SIGSTORE_ED25519_ORIGIN,
            Window {
                from: Some(at("2025-09-23T00:00:00Z")),
                until: None,
            },
            "2025-09-23T00:00:00Z",
        ),
        log(
            "rekor",
            "https://rekor.sigstore.dev",
            SIGSTORE_ECDSA_PEM,
            SIGSTORE_ECDSA_ORIGIN,
            Window::default(),
            "2021-01-12T11:53:27Z",
        ),
    ]
}

#[test]
fn keys_are_described_as_sigstore_describes_its_own_logs() {
    let ed25519 = PublicKey::parse(SIGSTORE_ED25519_VKEY, None).expect("Ed25519 key");
    assert_eq!(ed25519.origin, SIGSTORE_ED25519_ORIGIN);
    assert_eq!(ed25519.algorithm, KeyAlgorithm::Ed25519);
    assert_eq!(ed25519.key_id, 0xcf119915);
    let ecdsa = PublicKey::parse(SIGSTORE_ECDSA_PEM, Some(SIGSTORE_ECDSA_ORIGIN)).expect("PEM");
    assert_eq!(ecdsa.algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(ecdsa.text, SIGSTORE_ECDSA_PEM.trim_end());

    let root = trusted_root(&sigstore_logs()).expect("trusted root");
    assert_eq!(
        root,
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": sigstore_tlogs(),
            "certificateAuthorities": [],
            "ctlogs": [],
            "timestampAuthorities": []
        })
    );
}

#[test]
fn a_pem_key_needs_the_origin_and_a_named_key_its_own() {
    let err = PublicKey::parse(SIGSTORE_ECDSA_PEM, None).expect_err("no origin");
    assert!(err.contains("no name"), "{err}");
    let err = PublicKey::parse(SIGSTORE_ED25519_VKEY, Some("other.example/log"))
        .expect_err("another origin");
    assert!(
        err.contains(SIGSTORE_ED25519_ORIGIN) && err.contains("other.example/log"),
        "{err}"
    );
    let err = PublicKey::parse("not a key", None).expect_err("garbage");
    assert!(err.contains("neither"), "{err}");
}

/// A two-shard deployment, windows back to back, written and parsed back
/// with serde_json: every field as docs/shards.md and protobuf-specs say.
#[test]
fn two_shards_documents_parse_back_as_written() {
    let first = Ed25519Signer::from_seed("log.example.com/2026", &[7; 32]).expect("key");
    let second = Ed25519Signer::from_seed("log.example.com/2027", &[8; 32]).expect("key");
    let logs = vec![
        log(
            "2026",
            "https://log.example.com/2026",
            &first.verifier().to_text(),
            "log.example.com/2026",
            Window {
                from: Some(at("2026-01-01T00:00:00Z")),
                until: Some(at("2027-01-01T00:00:00Z")),
            },
            "2026-01-01T00:00:00Z",
        ),
        log(
            "2027",
            "https://log.example.com/2027",
            &second.verifier().to_text(),
            "log.example.com/2027",
            Window {
                from: Some(at("2027-01-01T00:00:00Z")),
                until: None,
            },
            "2027-01-01T00:00:00Z",
        ),
    ];
    let files = outputs(&logs, "example.com").expect("outputs");
    let names: Vec<&str> = files.iter().map(|file| file.file.as_str()).collect();
    assert_eq!(
        names,
        [
            "2026.vkey",
            "2027.vkey",
            "shards.json",
            "signing_config.json",
            "trusted_root.json"
        ]
    );
    assert_eq!(
        files[0].bytes,
        format!("{}\n", first.verifier().to_text()).into_bytes()
    );
    let parsed = |file: &str| -> Value {
        let output = files
            .iter()
            .find(|output| output.file == file)
            .expect("file");
        assert!(output.bytes.ends_with(b"}\n"));
        serde_json::from_slice(&output.bytes).expect("JSON")
    };

    let signing = parsed("signing_config.json");
    assert_eq!(
        signing,
        json!({
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "rekorTlogUrls": [
                {
                    "url": "https://log.example.com/2027",
                    "majorApiVersion": 2,
                    "validFor": { "start": "2027-01-01T00:00:00Z" },
                    "operator": "example.com"
                },
                {
                    "url": "https://log.example.com/2026",
                    "majorApiVersion": 2,
                    "validFor": { "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z" },
                    "operator": "example.com"
                }
            ],
            "rekorTlogConfig": { "selector": "ANY" }
        })
    );

    let shards = parsed("shards.json");
    assert_eq!(
        shards,
        json!({ "shards": [
            {
                "name": "2026",
                "origin": "log.example.com/2026",
                "url": "https://log.example.com/2026",
                "vkey": first.verifier().to_text(),
                "accept_from": "2026-01-01T00:00:00Z",
                "accept_until": "2027-01-01T00:00:00Z"
            },
            {
                "name": "2027",
                "origin": "log.example.com/2027",
                "url": "https://log.example.com/2027",
                "vkey": second.verifier().to_text(),
                "accept_from": "2027-01-01T00:00:00Z",
                "accept_until": null
            }
        ]})
    );

    let root = parsed("trusted_root.json");
    let tlogs = root["tlogs"].as_array().expect("tlogs");
    assert_eq!(tlogs.len(), 2);
    for (tlog, (signer, url)) in tlogs.iter().zip([
        (&first, "https://log.example.com/2026"),
        (&second, "https://log.example.com/2027"),
    ]) {
        let public = signer.verifier().public_key();
        assert_eq!(tlog["baseUrl"], url);
        assert_eq!(tlog["hashAlgorithm"], "SHA2_256");
        assert_eq!(tlog["publicKey"]["keyDetails"], "PKIX_ED25519");
        let raw = STANDARD
            .decode(tlog["publicKey"]["rawBytes"].as_str().expect("rawBytes"))
            .expect("base64");
        assert_eq!(raw[..12], ED25519_SPKI_PREFIX);
        assert_eq!(raw[12..], public);
        let log_id = STANDARD
            .decode(tlog["logId"]["keyId"].as_str().expect("logId"))
            .expect("base64");
        assert_eq!(log_id, log_id_ed25519(signer.name(), &public));
        let key_id = STANDARD
            .decode(tlog["checkpointKeyId"]["keyId"].as_str().expect("key ID"))
            .expect("base64");
        assert_eq!(key_id, signer.key_id().to_be_bytes());
    }
    assert_eq!(
        tlogs[0]["publicKey"]["validFor"],
        json!({ "start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z" })
    );
    assert_eq!(
        tlogs[1]["publicKey"]["validFor"],
        json!({ "start": "2027-01-01T00:00:00Z" })
    );
}

#[test]
fn base_urls_must_hold_the_origin() {
    assert_eq!(
        check_url("https://log.example.com/2026/", "log.example.com/2026"),
        Ok("https://log.example.com/2026".to_owned())
    );
    assert_eq!(
        check_url("http://127.0.0.1:8080/a.test", "a.test"),
        Ok("http://127.0.0.1:8080/a.test".to_owned())
    );
    for (url, problem) in [
        (
            "https://log.example.com/2027",
            "does not contain the log's origin",
        ),
        (
            "https://example.com/log/2026",
            "does not contain the log's origin",
        ),
        ("ftp://log.example.com/2026", "not an http"),
        ("https:///log.example.com/2026", "no host"),
        ("https://log.example.com/2026?x", "no query"),
    ] {
        let err = check_url(url, "log.example.com/2026").expect_err(url);
        assert!(err.contains(problem), "{url}: {err}");
    }
}

/// A folder with a configuration and the logs' verifier keys, as `stele
/// serve` leaves them.
struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        Deployment {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("trust")
    }

    fn vkey(&self, folder: &str, text: &str) {
        let folder = self.data().join(folder);
        fs::create_dir_all(&folder).expect("mkdir");
        fs::write(folder.join("log.vkey"), format!("{text}\n")).expect("vkey");
    }

    /// `body` after `data = ...`.
    fn config(&self, body: &str) -> PathBuf {
        let path = self.dir.path().join("stele.toml");
        let text = format!("data = {:?}\n{body}", self.data().display().to_string());
        fs::write(&path, text).expect("config");
        path
    }

    fn args(&self, config: PathBuf) -> TrustArgs {
        TrustArgs {
            config,
            out: self.out(),
            url: None,
            name: None,
            valid_from: None,
        }
    }
}

/// Sigstore's two keys as two shards: one with its window, one without a
/// start.
const TWO_SHARDS: &str = r#"operator = "sigstore.example"

[[shard]]
name = "rekor"
origin = "rekor.sigstore.dev"
url = "https://rekor.sigstore.dev"
key_algorithm = "ecdsa-p256"

[[shard]]
name = "log2025-1"
origin = "log2025-1.rekor.sigstore.dev"
url = "https://log2025-1.rekor.sigstore.dev"
accept_from = "2025-09-23T00:00:00Z"
"#;

#[test]
fn shards_resolve_with_their_keys_and_the_rules_for_a_missing_start() {
    let deployment = Deployment::new();
    deployment.vkey("rekor", SIGSTORE_ECDSA_PEM.trim_end());
    deployment.vkey("log2025-1", SIGSTORE_ED25519_VKEY);
    let mut args = deployment.args(deployment.config(TWO_SHARDS));
    let config = Config::from_file(&args.config).expect("config");

    let err = resolve(&config, &args).expect_err("no start for rekor");
    assert!(
        err.contains("shard \"rekor\"") && err.contains("--valid-from"),
        "{err}"
    );
    args.valid_from = Some(at("2021-01-12T11:53:27Z"));
    let logs = resolve(&config, &args).expect("resolves");
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].name, "rekor");
    assert_eq!(logs[1].valid_from, at("2025-09-23T00:00:00Z"));
    let root = trusted_root(&logs).expect("root");
    assert_eq!(root["tlogs"], sigstore_tlogs());

    args.url = Some("https://elsewhere.example".to_owned());
    let err = resolve(&config, &args).expect_err("--url beside shards");
    assert!(err.contains("--url") && err.contains("[[shard]]"), "{err}");
}

#[test]
fn configuration_mistakes_are_named() {
    let deployment = Deployment::new();
    deployment.vkey("rekor", SIGSTORE_ECDSA_PEM.trim_end());
    deployment.vkey("log2025-1", SIGSTORE_ED25519_VKEY);
    let cases = [
        (
            TWO_SHARDS.replace("url = \"https://rekor.sigstore.dev\"\n", ""),
            "shard \"rekor\" has no url",
        ),
        (
            TWO_SHARDS.replace(
                "https://log2025-1.rekor.sigstore.dev",
                "https://log.example.com/2025",
            ),
            "does not contain the log's origin \"log2025-1.rekor.sigstore.dev\"",
        ),
        (
            TWO_SHARDS.replace(
                "key_algorithm = \"ecdsa-p256\"",
                "key_algorithm = \"ed25519\"",
            ),
            "is an ecdsa-p256 key, but key_algorithm is ed25519",
        ),
        (
            TWO_SHARDS.replace(
                "origin = \"log2025-1.rekor.sigstore.dev\"",
                "origin = \"log2025-1.rekor.sigstore.dev.x\"",
            ),
            "the key is named \"log2025-1.rekor.sigstore.dev\"",
        ),
        (
            TWO_SHARDS.replace("name = \"rekor\"", "name = \"missing\""),
            "shard \"missing\": cannot read its verifier key",
        ),
        (
            TWO_SHARDS.replace("operator = \"sigstore.example\"", ""),
            "sets no operator",
        ),
        (
            TWO_SHARDS.replace("\"sigstore.example\"", "\"https://sigstore.example\""),
            "not a scheme-less URI",
        ),
        (
            TWO_SHARDS.replace(
                "accept_from = \"2025-09-23T00:00:00Z\"",
                "accept_until = \"2020-01-01T00:00:00Z\"",
            ),
            "is not before its accept_until",
        ),
    ];
    for (text, problem) in cases {
        let mut args = deployment.args(deployment.config(&text));
        args.valid_from = Some(at("2021-01-12T11:53:27Z"));
        let err = run(&args).expect_err(problem);
        assert!(err.contains(problem), "{problem}: {err}");
        assert!(!deployment.out().exists(), "nothing written for {problem}");
    }
}

#[test]
fn a_single_log_needs_a_url_and_takes_its_name_from_the_origin() {
    let deployment = Deployment::new();
    let signer = Ed25519Signer::from_seed("log.example.com/main", &[3; 32]).expect("key");
    deployment.vkey("", &signer.verifier().to_text());
    let config = deployment.config("operator = \"example.com\"\n");
    let mut args = deployment.args(config.clone());
    args.valid_from = Some(at("2024-05-01T00:00:00Z"));
    let err = run(&args).expect_err("no --url");
    assert!(err.contains("needs --url"), "{err}");

    args.url = Some("https://log.example.com/main/".to_owned());
    run(&args).expect("trust material");
    let shards: Value =
        serde_json::from_slice(&fs::read(deployment.out().join("shards.json")).expect("read"))
            .expect("JSON");
    assert_eq!(shards["shards"][0]["name"], "main");
    assert_eq!(shards["shards"][0]["url"], "https://log.example.com/main");
    assert_eq!(shards["shards"][0]["accept_from"], Value::Null);
    let root: Value = serde_json::from_slice(
        &fs::read(deployment.out().join("trusted_root.json")).expect("read"),
    )
    .expect("JSON");
    assert_eq!(
        root["tlogs"][0]["publicKey"]["validFor"],
        json!({ "start": "2024-05-01T00:00:00Z" })
    );
    assert_eq!(
        fs::read_to_string(deployment.out().join("main.vkey")).expect("vkey"),
        format!("{}\n", signer.verifier().to_text())
    );

    args.name = Some("Main".to_owned());
    assert!(run(&args).expect_err("bad name").contains("--name"));
    args.name = Some("primary".to_owned());
    run(&args).expect("named");
    assert!(deployment.out().join("primary.vkey").exists());

    // The origin's last segment must be a name, else --name is needed.
    let odd = Deployment::new();
    let signer = Ed25519Signer::from_seed("Log.Example", &[4; 32]).expect("key");
    odd.vkey("", &signer.verifier().to_text());
    let mut args = odd.args(odd.config("operator = \"example.com\"\n"));
    args.url = Some("https://Log.Example".to_owned());
    args.valid_from = Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let err = run(&args).expect_err("no name");
    assert!(err.contains("pass --name"), "{err}");
}

/// Rerunning is a no-op; a new shard rewrites the documents; files that
/// are not this command's, or another key, stop it before it writes
/// anything; other files are never touched.
#[test]
fn writes_replace_only_trust_material() {
    let deployment = Deployment::new();
    deployment.vkey("rekor", SIGSTORE_ECDSA_PEM.trim_end());
    deployment.vkey("log2025-1", SIGSTORE_ED25519_VKEY);
    let mut args = deployment.args(deployment.config(TWO_SHARDS));
    args.valid_from = Some(at("2021-01-12T11:53:27Z"));
    let out = deployment.out();
    fs::create_dir_all(&out).expect("out");
    fs::write(out.join("README"), "mine").expect("unrelated file");
    run(&args).expect("first run");
    let snapshot = |file: &str| fs::read(out.join(file)).expect("read");
    let root = snapshot("trusted_root.json");
    let signing_two = snapshot("signing_config.json");
    let files = outputs(
        &resolve(&Config::from_file(&args.config).expect("config"), &args).expect("logs"),
        "sigstore.example",
    )
    .expect("outputs");
    for file in &files {
        assert_eq!(snapshot(&file.file), file.bytes, "{}", file.file);
        let mode = fs::metadata(out.join(&file.file))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
    let plan = write_all(&out, &files).expect("again");
    assert!(plan.iter().all(|(_, changed)| !changed), "{plan:?}");

    // A third shard: the documents change, the keys already there stay.
    let signer = Ed25519Signer::from_seed("third.example", &[9; 32]).expect("key");
    deployment.vkey("third", &signer.verifier().to_text());
    let third = format!(
        "{TWO_SHARDS}\n[[shard]]\nname = \"third\"\norigin = \"third.example\"\n\
         url = \"https://third.example\"\naccept_from = \"2030-01-01T00:00:00Z\"\n"
    );
    let args = TrustArgs {
        config: deployment.config(&third),
        ..args
    };
    run(&args).expect("with a third shard");
    assert_ne!(snapshot("trusted_root.json"), root);
    let root_now: Value = serde_json::from_slice(&snapshot("trusted_root.json")).expect("JSON");
    assert_eq!(root_now["tlogs"][2]["baseUrl"], "https://third.example");
    assert_eq!(snapshot("README"), b"mine");

    // A deployment's own trusted root (with its CAs) is not replaced; nor
    // another key; and then nothing else is written either, not even a
    // stale signing config of ours.
    let signing_three = snapshot("signing_config.json");
    let mut theirs: Value = serde_json::from_slice(&root).expect("JSON");
    theirs["certificateAuthorities"] = json!([{ "uri": "https://fulcio.example" }]);
    fs::write(out.join("trusted_root.json"), theirs.to_string()).expect("theirs");
    fs::write(out.join("signing_config.json"), &signing_two).expect("stale");
    let err = run(&args).expect_err("their trusted root");
    assert!(
        err.contains("trusted_root.json") && err.contains("not replacing"),
        "{err}"
    );
    assert_eq!(snapshot("signing_config.json"), signing_two);
    fs::write(out.join("signing_config.json"), b"{}").expect("not ours");
    let err = run(&args).expect_err("not a signing config of ours");
    assert!(err.contains("signing_config.json"), "{err}");
    fs::write(out.join("trusted_root.json"), &root).expect("ours again");
    fs::write(out.join("signing_config.json"), &signing_three).expect("ours again");

    fs::write(
        out.join("third.vkey"),
        format!(
            "{}\n",
            Ed25519Signer::from_seed("third.example", &[10; 32])
                .expect("key")
                .verifier()
                .to_text()
        ),
    )
    .expect("another key");
    let err = run(&args).expect_err("another key");
    assert!(
        err.contains("third.vkey") && err.contains("another key"),
        "{err}"
    );
    assert_eq!(snapshot("trusted_root.json"), root, "nothing written");

    fs::remove_file(out.join("third.vkey")).expect("remove");
    fs::create_dir(out.join("third.vkey")).expect("a folder in the way");
    let err = run(&args).expect_err("a folder");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn replaceable_files_are_recognised() {
    let ours = trusted_root(&sigstore_logs()).expect("root");
    let bytes = |value: &Value| value.to_string().into_bytes();
    assert!(replaceable(Replaces::TrustedRoot, &bytes(&ours)));
    assert!(replaceable(
        Replaces::TrustedRoot,
        &bytes(&json!({ "mediaType": TRUSTED_ROOT_MEDIA_TYPE, "tlogs": [] }))
    ));
    let mut with_ctlog = ours.clone();
    with_ctlog["ctlogs"] = ours["tlogs"].clone();
    assert!(!replaceable(Replaces::TrustedRoot, &bytes(&with_ctlog)));
    assert!(!replaceable(Replaces::TrustedRoot, b"not json"));
    assert!(!replaceable(Replaces::ShardList, &bytes(&ours)));

    let signing = signing_config(&sigstore_logs(), "sigstore.dev").expect("signing");
    assert!(replaceable(Replaces::SigningConfig, &bytes(&signing)));
    let mut with_ca = signing.clone();
    with_ca["caUrls"] = json!([{ "url": "https://fulcio.example" }]);
    assert!(!replaceable(Replaces::SigningConfig, &bytes(&with_ca)));
    assert!(replaceable(
        Replaces::ShardList,
        &bytes(&shard_list(&sigstore_logs()).expect("shards"))
    ));
    assert!(!replaceable(Replaces::Same, b"anything"));
}
