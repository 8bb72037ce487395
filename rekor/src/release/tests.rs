use super::*;

fn signed(kind: KeyKind) -> (MaintainerKey, Release) {
    let key = MaintainerKey::generate(kind).expect("key");
    let release = Release::sign(
        "npm/@scope/name",
        "1.0.0",
        "name-1.0.0.tgz",
        [0xab; 32],
        &key,
    )
    .expect("sign");
    (key, release)
}

#[test]
fn sign_render_parse_round_trip() {
    for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
        let (key, release) = signed(kind);
        let entry = release.render();
        assert!(entry.starts_with(PREFIX));
        assert_eq!(entry.iter().filter(|&&b| b == b'\n').count(), LINES);
        assert!(entry.starts_with(&release.statement()));
        assert_eq!(parse(&entry), Ok(release.clone()));
        assert_eq!(release.key_id(), key.key_id());
        assert_eq!(release.key_kind(), Ok(kind));
    }
}

#[test]
fn statement_text() {
    let (_, release) = signed(KeyKind::Ed25519);
    let text = String::from_utf8(release.statement()).expect("ASCII");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "stele/release/v1");
    assert_eq!(lines[1], "namespace npm/@scope/name");
    assert_eq!(lines[2], "version 1.0.0");
    assert_eq!(lines[3], "file name-1.0.0.tgz");
    assert_eq!(lines[4], format!("sha256 {}", "ab".repeat(32)));
    assert_eq!(lines[5], format!("key {}", STANDARD.encode(&release.key)));
    assert_eq!(lines.len(), 6);
}

#[test]
fn signing_checks_the_fields() {
    let key = MaintainerKey::generate(KeyKind::Ed25519).expect("key");
    let cases = [
        ("Pypi/x", "1", "f", 2),
        ("pypi/x", "1 2", "f", 3),
        ("pypi/x", "1", "a/b", 4),
    ];
    for (namespace, version, file, line) in cases {
        let err = Release::sign(namespace, version, file, [0; 32], &key).expect_err("refused");
        assert_eq!(err.line, line, "{err}");
    }
}

#[test]
fn a_changed_field_breaks_the_signature() {
    let (_, mut release) = signed(KeyKind::EcdsaP256);
    release.version = "1.0.1".to_owned();
    let err = parse(&release.render()).expect_err("signature");
    assert_eq!((err.line, err.field), (7, "signature"));
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn namespace_rules() {
    for good in [
        "a",
        "pypi/requests",
        "github.com/org/repo",
        "npm/@s/n",
        "a+b/_-.",
    ] {
        assert_eq!(check_namespace(good), Ok(()), "{good}");
    }
    for bad in ["", "A", "a//b", "/a", "a/", ".", "a/..", "a~b", "a b", "é"] {
        assert!(check_namespace(bad).is_err(), "{bad}");
    }
    assert!(check_namespace(&"a".repeat(200)).is_ok());
    assert!(check_namespace(&"a".repeat(201)).is_err());
    assert_eq!(
        namespace_path("github.com/org/repo"),
        "index/namespace/github.com~org~repo"
    );
    assert_eq!(key_index_path("00ff"), "index/key/00ff");
}

#[test]
fn key_text_forms() {
    let key = MaintainerKey::generate(KeyKind::EcdsaP256).expect("key");
    let der = key.public_key_der();
    let pem = key.public_key_pem().expect("pem");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(public_key_from_text(pem.as_bytes()), Ok(der.clone()));
    assert_eq!(
        public_key_from_text(STANDARD.encode(&der).as_bytes()),
        Ok(der.clone())
    );
    let private = key.to_pkcs8_pem().expect("pem");
    assert!(public_key_from_text(private.as_bytes()).is_err());
    assert!(MaintainerKey::from_pem(pem.as_bytes()).is_err());
    assert!(MaintainerKey::from_pem(b"junk").is_err());
    assert_eq!(
        MaintainerKey::from_pem(private.as_bytes())
            .expect("reload")
            .public_key_der(),
        der
    );
}
