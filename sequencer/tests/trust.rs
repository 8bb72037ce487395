//! `stele trust`, the real binary, and real Sigstore clients reading what it
//! writes.
//!
//! - On keys made by `stele keygen`: the four kinds of files, what stdout
//!   says, sigstore-python loading the trusted root and the signing config
//!   with its own parsers, and the refusals for a configuration it cannot
//!   describe (nothing written then).
//! - End to end: one `stele serve` runs two shards (an Ed25519 and an ECDSA
//!   P-256 key, both taking entries); `stele trust` writes their trust
//!   material; sigstore-python (tests/sigstore/trust_e2e.py) submits
//!   entries to each shard at the URL its signing config names and verifies
//!   them with a trusted root built from `trusted_root.json`, and refuses
//!   each shard's entries when the root holds only the other shard's tlog;
//!   sigstore-js (tests/sigstore/js/verify_with_trusted_root.js) accepts a
//!   key-signed bundle of each shard against that shard's tlog as written,
//!   and refuses it against the other's, or when the tlog's baseUrl does
//!   not hold the origin.
//!
//! Without sigstore-python or sigstore-js the client checks skip with a
//! message, unless `CI` is set (scripts/install-test-deps.sh installs them).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::stele::{Stele, keygen, python_has, run};
use serde_json::Value;

fn python_ready() -> bool {
    python_has(&["sigstore", "cryptography"], "pip install sigstore==4.5.1")
}

/// Whether sigstore-js is installed in tests/sigstore/js; under CI its
/// absence fails the test.
fn sigstore_js() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/js");
    let ready = dir
        .join("node_modules/@sigstore/verify/package.json")
        .is_file()
        && Command::new("node").arg("--version").output().is_ok();
    if ready {
        return Some(dir.join("verify_with_trusted_root.js"));
    }
    let message = format!(
        "sigstore-js is not installed in {} (scripts/install-test-deps.sh installs it)",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{message}; CI is set");
    eprintln!("SKIPPED: {message}");
    None
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("read")).expect("JSON")
}

fn temporary() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary folder")
}

/// `stele trust --config CONFIG --out OUT EXTRA...`.
fn trust(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let (config, out) = (config.display().to_string(), out.display().to_string());
    let mut args = vec!["trust", "--config", &config, "--out", &out];
    args.extend_from_slice(extra);
    let output = run(&args);
    eprintln!("{}", text(&output));
    output
}

#[test]
fn trust_material_from_keygen_keys_loads_in_sigstore_python() {
    let dir = temporary();
    let data = dir.path().join("data");
    assert!(
        keygen("ed25519", "log.example.com/2026", &data.join("2026"))
            .status
            .success()
    );
    assert!(
        keygen("ecdsa-p256", "log.example.com/2027", &data.join("2027"))
            .status
            .success()
    );
    let shards = format!(
        "data = {:?}\noperator = \"example.com\"\n\n\
         [[shard]]\nname = \"2026\"\norigin = \"log.example.com/2026\"\n\
         url = \"https://log.example.com/2026\"\n\
         accept_from = \"2026-01-01T00:00:00Z\"\naccept_until = \"2027-01-01T00:00:00Z\"\n\n\
         [[shard]]\nname = \"2027\"\norigin = \"log.example.com/2027\"\n\
         key_algorithm = \"ecdsa-p256\"\n",
        data.display().to_string()
    );
    let config = dir.path().join("stele.toml");
    let out = dir.path().join("trust");

    // The second shard has no url and no start: refused, one after the other.
    fs::write(&config, &shards).expect("config");
    let output = trust(&config, &out, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stele trust: error: shard \"2027\" has no url"),
        "{stderr}"
    );
    fs::write(
        &config,
        format!("{shards}url = \"https://log.example.com/2027\"\n"),
    )
    .expect("config");
    let output = trust(&config, &out, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("shard \"2027\" has no accept_from, so the start of its key's validity"),
        "{}",
        text(&output)
    );
    assert!(!out.exists(), "nothing written on refusal");

    let output = trust(&config, &out, &["--valid-from", "2026-12-01T00:00:00Z"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for file in [
        "2026.vkey",
        "2027.vkey",
        "shards.json",
        "signing_config.json",
        "trusted_root.json",
    ] {
        let line = format!("wrote {}", out.join(file).display());
        assert!(stdout.lines().any(|l| l == line), "{line}: {stdout}");
    }
    assert!(
        stdout.contains("log 2026: origin log.example.com/2026, ed25519 key "),
        "{stdout}"
    );
    for (name, folder) in [("2026", "2026"), ("2027", "2027")] {
        assert_eq!(
            fs::read(out.join(format!("{name}.vkey"))).expect("vkey"),
            fs::read(data.join(folder).join("log.vkey")).expect("log.vkey")
        );
    }
    let root = read_json(&out.join("trusted_root.json"));
    let tlogs = root["tlogs"].as_array().expect("tlogs");
    assert_eq!(tlogs[0]["publicKey"]["keyDetails"], "PKIX_ED25519");
    assert_eq!(
        tlogs[1]["publicKey"]["keyDetails"],
        "PKIX_ECDSA_P256_SHA_256"
    );
    assert_eq!(
        tlogs[1]["publicKey"]["validFor"]["start"],
        "2026-12-01T00:00:00Z"
    );
    let shards_json = read_json(&out.join("shards.json"));
    assert_eq!(shards_json["shards"][1]["accept_from"], Value::Null);

    // Again: nothing changes, nothing is rewritten.
    let output = trust(&config, &out, &["--valid-from", "2026-12-01T00:00:00Z"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches("unchanged ")
            .count(),
        5
    );

    if !python_ready() {
        return;
    }
    // sigstore-python's own parsers (strict: unknown fields are errors) and
    // its key loading: each tlog key loads, under the log ID given.
    let script = r#"
import base64, sys
from sigstore.models import TrustedRoot
from sigstore._internal.trust import Key
from sigstore_models.trustroot.v1 import SigningConfig
root = TrustedRoot.from_file(sys.argv[1])
for tlog in root._inner.tlogs:
    Key(tlog.public_key)
    print("tlog", tlog.base_url, tlog.public_key.key_details.value,
          base64.b64encode(tlog.checkpoint_key_id.key_id).decode())
config = SigningConfig.from_json(open(sys.argv[2], "rb").read())
for service in config.rekor_tlog_urls:
    print("service", service.url, service.major_api_version, service.operator)
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(out.join("trusted_root.json"))
        .arg(out.join("signing_config.json"))
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("tlog https://log.example.com/2026 PKIX_ED25519"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tlog https://log.example.com/2027 PKIX_ECDSA_P256_SHA_256"),
        "{stdout}"
    );
    assert!(
        stdout.contains("service https://log.example.com/2027 2 example.com\nservice https://log.example.com/2026 2 example.com"),
        "{stdout}"
    );
}

/// Two shards in one `stele serve`, their trust material, and both clients.
#[test]
fn two_shards_each_verified_against_its_own_key_only() {
    let python = python_ready();
    let js = sigstore_js();
    if !python && js.is_none() {
        return;
    }
    let dir = temporary();
    let data = dir.path().join("data");
    // Each origin is the shard's name, so that the shard's base URL on this
    // server (http://127.0.0.1:PORT/<name>) holds it whatever the port.
    let shards = [("a.trust.test", "ed25519"), ("b.trust.test", "ecdsa-p256")];
    let mut serve_config = format!(
        "data = {:?}\noperator = \"trust.test\"\nbatch_interval = \"10ms\"\n",
        data.display().to_string()
    );
    for (index, (name, algorithm)) in shards.iter().enumerate() {
        serve_config.push_str(&format!(
            "\n[[shard]]\nname = \"{name}\"\norigin = \"{name}\"\nkey_algorithm = \"{algorithm}\"\n"
        ));
        // One shard with its window's start, one without (--valid-from).
        if index == 0 {
            serve_config.push_str("accept_from = \"2020-01-01T00:00:00Z\"\n");
        }
    }
    let config = dir.path().join("serve.toml");
    fs::write(&config, &serve_config).expect("config");
    let server = Stele::start(&data, &["--config", &config.display().to_string()]);

    // The same configuration with each shard's public URL, as the operator
    // writes it once the address is known.
    let mut trust_config = serve_config.clone();
    for (name, _) in shards {
        let table = format!("name = \"{name}\"\n");
        trust_config =
            trust_config.replace(&table, &format!("{table}url = \"{}/{name}\"\n", server.url));
    }
    let trust_toml = dir.path().join("trust.toml");
    fs::write(&trust_toml, &trust_config).expect("config");
    let out = dir.path().join("trust");
    let output = trust(&trust_toml, &out, &["--valid-from", "2020-01-01T00:00:00Z"]);
    assert!(output.status.success(), "{}", text(&output));

    let bundles = dir.path().join("bundles");
    fs::create_dir_all(&bundles).expect("bundles");
    if python {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/trust_e2e.py");
        let output = Command::new("python3")
            .arg(script)
            .arg("--trust")
            .arg(&out)
            .arg("--bundles")
            .arg(&bundles)
            .output()
            .expect("run python3");
        eprintln!("{}", text(&output));
        assert!(output.status.success(), "sigstore-python's checks failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("sigstore-python 4."), "{stdout}");
        for (name, _) in shards {
            assert_eq!(
                stdout
                    .matches(&format!("verified by sigstore-python: shard {name}, "))
                    .count(),
                3,
                "{stdout}"
            );
            assert_eq!(
                stdout
                    .matches(&format!("refused as it must be: shard {name}'s "))
                    .count(),
                3,
                "{stdout}"
            );
        }
        assert!(stdout.contains("all 2 shards checked"), "{stdout}");
    }

    if let (Some(script), true) = (js, python) {
        let verify = |name: &str, root: &Path| -> Output {
            let output = Command::new("node")
                .arg(&script)
                .arg(bundles.join(format!("{name}.bundle.json")))
                .arg(bundles.join(format!("{name}.artifact")))
                .arg(bundles.join(format!("{name}.pub.pem")))
                .arg(root)
                .output()
                .expect("run node");
            eprintln!("{}", text(&output));
            output
        };
        for (name, _) in shards {
            // The whole trusted_root.json as `stele trust` wrote it, and the
            // shard's own tlog alone.
            for root in [
                out.join("trusted_root.json"),
                bundles.join(format!("{name}.own.json")),
            ] {
                let output = verify(name, &root);
                assert!(output.status.success(), "sigstore-js refused {name}");
                assert!(
                    String::from_utf8_lossy(&output.stdout).contains("verified by sigstore-js"),
                    "{}",
                    text(&output)
                );
            }
            let output = verify(name, &bundles.join(format!("{name}.others.json")));
            assert_eq!(
                output.status.code(),
                Some(1),
                "the other shard's key passed"
            );
            assert!(
                text(&output).contains("invalid checkpoint signature"),
                "{}",
                text(&output)
            );
            // The shard's own tlog, but a baseUrl without the origin: what
            // sigstore-js refuses, and `stele trust` never writes.
            let mut own = read_json(&bundles.join(format!("{name}.own.json")));
            own["tlogs"][0]["baseUrl"] = Value::from(format!("{}/elsewhere", server.url));
            let elsewhere = bundles.join(format!("{name}.elsewhere.json"));
            fs::write(&elsewhere, own.to_string()).expect("write");
            let output = verify(name, &elsewhere);
            assert_eq!(
                output.status.code(),
                Some(1),
                "a baseUrl without the origin passed"
            );
        }
    }
    server.stop();
}
