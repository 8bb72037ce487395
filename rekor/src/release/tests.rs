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

/// Replaces the key line's DER SPKI (re-signing is useless: the key is
/// refused before the signature is looked at).
fn with_key(release: &Release, key: Vec<u8>) -> Vec<u8> {
    let mut changed = release.clone();
    changed.key = key;
    changed.render()
}

/// Encodes a DER length (short or long form, as the bytes need).
fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        vec![0x81, len as u8]
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

#[test]
fn non_canonical_keys_are_refused() {
    let (_, ed) = signed(KeyKind::Ed25519);
    let (_, ec) = signed(KeyKind::EcdsaP256);
    let ed_key = &ed.key[ed.key.len() - 32..];
    let ec_point = &ec.key[ec.key.len() - 65..];
    let ed_oid = [0x06, 0x03, 0x2b, 0x65, 0x70];
    let ec_oids = [
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
        0x3d, 0x03, 0x01, 0x07,
    ];
    let bit_string = |key: &[u8]| tlv(0x03, &[&[0u8][..], key].concat());
    let spki =
        |algorithm: &[u8], key: &[u8]| tlv(0x30, &[tlv(0x30, algorithm), bit_string(key)].concat());
    // The canonical forms rebuild to the keys generated.
    assert_eq!(spki(&ed_oid, ed_key), ed.key);
    assert_eq!(spki(&ec_oids, ec_point), ec.key);
    let mut compressed = vec![0x02 | (ec_point[64] & 1)];
    compressed.extend_from_slice(&ec_point[1..33]);
    let mut hybrid = ec_point.to_vec();
    hybrid[0] = 0x06 | (ec_point[64] & 1);
    let mut long_length = vec![0x30, 0x81, 0x2a];
    long_length.extend_from_slice(&ed.key[2..]);
    let cases: [(&str, &Release, Vec<u8>); 7] = [
        (
            "Ed25519 with NULL parameters",
            &ed,
            spki(&[&ed_oid[..], &[0x05, 0x00]].concat(), ed_key),
        ),
        ("Ed25519 with a long-form length", &ed, long_length),
        (
            "Ed25519 with a trailing byte",
            &ed,
            [&ed.key[..], &[0]].concat(),
        ),
        ("compressed P-256 point", &ec, spki(&ec_oids, &compressed)),
        ("hybrid P-256 point", &ec, spki(&ec_oids, &hybrid)),
        ("P-256 without curve", &ec, spki(&ec_oids[..9], ec_point)),
        ("P-256 key with Ed25519 OID", &ec, spki(&ed_oid, ec_point)),
    ];
    for (what, release, key) in cases {
        let err = parse(&with_key(release, key)).expect_err(what);
        assert_eq!(err.line, 6, "{what}: {err}");
    }
}

/// The group order of P-256, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `a - b` over big-endian 32-byte integers (a >= b).
fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// Splits a DER ECDSA signature into 32-byte r and s.
fn split_der(signature: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut at = 2;
    let mut read = || {
        assert_eq!(signature[at], 0x02);
        let len = signature[at + 1] as usize;
        let value = &signature[at + 2..at + 2 + len];
        at += 2 + len;
        let value = value.strip_prefix(&[0]).unwrap_or(value);
        let mut out = [0u8; 32];
        out[32 - value.len()..].copy_from_slice(value);
        out
    };
    (read(), read())
}

fn der_int(value: &[u8; 32]) -> Vec<u8> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(31);
    let mut bytes = value[first..].to_vec();
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

#[test]
fn ecdsa_signature_forms() {
    let (_, release) = signed(KeyKind::EcdsaP256);
    let (r, s) = split_der(&release.signature);
    let with_signature = |signature: Vec<u8>| {
        let mut changed = release.clone();
        changed.signature = signature;
        changed.render()
    };
    // The other S of the pair (n - s) verifies as well: ECDSA signatures are
    // malleable, and release statements accept either (docs/formats.md).
    let other = tlv(0x30, &[der_int(&r), der_int(&sub(&P256_N, &s))].concat());
    let twin = parse(&with_signature(other.clone())).expect("n - s verifies");
    assert_eq!(twin.render(), with_signature(other));
    assert_ne!(twin.render(), release.render());
    // Non-DER encodings of the same (r, s) do not.
    let canonical = tlv(0x30, &[der_int(&r), der_int(&s)].concat());
    assert_eq!(canonical, release.signature);
    let mut long_length = vec![0x30, 0x81, canonical[1]];
    long_length.extend_from_slice(&canonical[2..]);
    let mut padded_r = vec![0x00];
    padded_r.extend_from_slice(&der_int(&r)[2..]);
    let padded = tlv(0x30, &[tlv(0x02, &padded_r), der_int(&s)].concat());
    let trailing = [&canonical[..], &[0]].concat();
    let mut raw = r.to_vec();
    raw.extend_from_slice(&s);
    for (what, signature) in [
        ("long-form length", long_length),
        ("zero-padded r", padded),
        ("trailing byte", trailing),
        ("raw r || s", raw),
    ] {
        let err = parse(&with_signature(signature)).expect_err(what);
        assert_eq!(err.line, 7, "{what}: {err}");
    }
}

/// The group order of Ed25519, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

#[test]
fn ed25519_non_canonical_s_is_refused() {
    let (_, release) = signed(KeyKind::Ed25519);
    // S + L is the same scalar; RFC 8032 requires S < L.
    let mut changed = release.clone();
    let mut carry = 0u16;
    for (i, l) in ED25519_L.iter().enumerate() {
        let sum = u16::from(changed.signature[32 + i]) + u16::from(*l) + carry;
        changed.signature[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let err = parse(&changed.render()).expect_err("S + L");
    assert_eq!(err.line, 7, "{err}");
}

#[test]
fn non_canonical_base64_is_refused() {
    let (_, release) = signed(KeyKind::Ed25519);
    let entry = String::from_utf8(release.render()).expect("ASCII");
    // A 64-byte signature ends in "==": the last character before them
    // carries 4 unused bits, which must be zero.
    let line = entry.lines().nth(6).expect("signature line");
    let last = line.len() - 3;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let value = alphabet
        .iter()
        .position(|&c| c == line.as_bytes()[last])
        .expect("base64");
    let mut bad = line.as_bytes().to_vec();
    bad[last] = alphabet[value | 1];
    assert_ne!(bad, line.as_bytes());
    let changed = entry.replace(line, std::str::from_utf8(&bad).expect("ASCII"));
    let err = parse(changed.as_bytes()).expect_err("trailing bits");
    assert_eq!(err.line, 7, "{err}");
}
