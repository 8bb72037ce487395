#!/usr/bin/env python3
"""Release statement (stele/release/v1) vectors signed by Python `cryptography`.

Independent of the Rust code under test: the statements are written here from
docs/formats.md ("Release statement") and signed with `cryptography`'s Ed25519
and ECDSA P-256. Each malformed case breaks one rule and, where it can, is
still signed properly, so that only that rule is at fault.

Usage:
  release_vectors.py > release_vectors.json
      prints {"keys": [...], "cases": [...]}: the private keys (PKCS#8 PEM),
      their public keys (SPKI PEM) and key IDs; per case its name, whether it
      is valid, the entry bytes (base64), the line the parser must name
      (invalid cases) or the key ID and namespace index path (valid ones); and
      two hashedrekord entries (public key, certificate) with their signer's
      key ID.
  release_vectors.py verify < statements.json
      reads a JSON list of base64 entries signed by someone else and prints a
      JSON list: for each, its key ID if it is a valid, properly signed
      release entry by this script's reading, else null.
"""
import base64
import datetime
import hashlib
import json
import re
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import NameOID

HEADER = "stele/release/v1"
SEGMENT = re.compile(r"^[a-z0-9._\-@+]+$")


def b64(data):
    return base64.b64encode(data).decode()


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key, message):
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def statement(namespace, version, file, sha256_hex, key_der):
    return (f"{HEADER}\nnamespace {namespace}\nversion {version}\nfile {file}\n"
            f"sha256 {sha256_hex}\nkey {b64(key_der)}\n").encode()


def entry(key, namespace="pypi/requests", version="2.32.3", file="requests-2.32.3.tar.gz",
          sha256_hex=None, key_der=None, signature=None):
    sha256_hex = sha256_hex if sha256_hex is not None else hashlib.sha256(file.encode()).hexdigest()
    key_der = key_der if key_der is not None else spki(key)
    body = statement(namespace, version, file, sha256_hex, key_der)
    sig = signature if signature is not None else sign(key, body)
    return body + f"signature {b64(sig)}\n".encode()


def generate():
    ed = ed25519.Ed25519PrivateKey.generate()
    p256 = ec.generate_private_key(ec.SECP256R1())
    other = ed25519.Ed25519PrivateKey.generate()
    keys = []
    for kind, key in (("ed25519", ed), ("ecdsa-p256", p256)):
        keys.append({
            "kind": kind,
            "private_pem": key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
            "public_pem": key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            "key_id": hashlib.sha256(spki(key)).hexdigest(),
        })

    cases = []

    def valid(name, key, **fields):
        data = entry(key, **fields)
        namespace = fields.get("namespace", "pypi/requests")
        cases.append({"name": name, "valid": True, "entry": b64(data),
                      "key_id": hashlib.sha256(spki(key)).hexdigest(),
                      "namespace_path": "index/namespace/" + namespace.replace("/", "~")})

    def invalid(name, line, data):
        cases.append({"name": name, "valid": False, "line": line, "entry": b64(data)})

    for kind, key in (("ed25519", ed), ("p256", p256)):
        valid(f"{kind}_pypi", key)
        valid(f"{kind}_github", key, namespace="github.com/org/repo", version="v1.0.0-rc.1+build.5",
              file="repo-v1.0.0.zip")
        valid(f"{kind}_npm_scope", key, namespace="npm/@scope/name", version="1",
              file="name-1.tgz")
        valid(f"{kind}_longest", key, namespace="/".join(["a" * 99, "b" * 100]),
              version="~" * 128, file="!" * 255)
        valid(f"{kind}_shortest", key, namespace="x", version="0", file="f")

    good = entry(ed)
    lines = good.split(b"\n")[:-1]

    def with_line(number, text, key=ed, resign=True):
        new = list(lines)
        new[number - 1] = text
        body = b"\n".join(new[:6]) + b"\n"
        if resign and number <= 6:
            return body + b"signature " + b64(sign(key, body)).encode() + b"\n"
        return body + new[6] + b"\n"

    invalid("empty", 1, b"")
    invalid("header_v2", 1, with_line(1, b"stele/release/v2"))
    invalid("crlf", 1, good.replace(b"\n", b"\r\n"))
    invalid("no_final_newline", 7, good[:-1])
    invalid("six_lines", 7, b"\n".join(lines[:6]) + b"\n")
    invalid("extra_line", 8, good + b"comment x\n")
    invalid("extra_byte", 8, good + b"x")
    swapped = list(lines)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    body = b"\n".join(swapped[:6]) + b"\n"
    invalid("fields_swapped", 2, body + b"signature " + b64(sign(ed, body)).encode() + b"\n")
    invalid("double_space", 2, with_line(2, b"namespace  pypi/requests"))
    invalid("tab", 2, with_line(2, b"namespace\tpypi/requests"))
    for name, namespace in (("ns_upper", "pypi/Requests"), ("ns_tilde", "pypi~requests"),
                            ("ns_leading_slash", "/pypi/requests"),
                            ("ns_trailing_slash", "pypi/requests/"),
                            ("ns_double_slash", "pypi//requests"), ("ns_dotdot", "pypi/../x"),
                            ("ns_dot", "./x"), ("ns_empty", ""), ("ns_space", "pypi/re quests"),
                            ("ns_colon", "pypi:requests"), ("ns_201", "a" * 201),
                            ("ns_utf8", "pypi/r\u00e9quests")):
        invalid(name, 2, with_line(2, b"namespace " + namespace.encode()))
    for name, version in (("version_space", b"1.0 beta"), ("version_trailing_space", b"1.0 "),
                          ("version_empty", b""), ("version_129", b"1" * 129),
                          ("version_utf8", "1.0\u00e9".encode())):
        invalid(name, 3, with_line(3, b"version " + version))
    invalid("missing_version_value", 3, with_line(3, b"version"))
    for name, file in (("file_slash", b"dist/x.tar.gz"), ("file_backslash", b"dist\\x.tar.gz"),
                       ("file_space", b"x y.tar.gz"), ("file_256", b"f" * 256), ("file_empty", b"")):
        invalid(name, 4, with_line(4, b"file " + file))
    digest = hashlib.sha256(b"x").hexdigest()
    for name, text in (("sha_upper", digest.upper()), ("sha_63", digest[:63]),
                       ("sha_65", digest + "0"), ("sha_not_hex", "g" * 64),
                       ("sha_base64", b64(hashlib.sha256(b"x").digest()))):
        invalid(name, 5, with_line(5, b"sha256 " + text.encode()))
    invalid("key_unpadded", 6, with_line(6, b"key " + b64(spki(p256)).rstrip("=").encode(),
                                         key=p256))
    invalid("key_urlsafe", 6, with_line(6, b"key " + base64.urlsafe_b64encode(
        b"\xfb\xff" + spki(ed)).decode().encode()))
    invalid("key_raw_ed25519", 6, with_line(6, b"key " + b64(spki(ed)[-32:]).encode()))
    p384 = ec.generate_private_key(ec.SECP384R1())
    k1 = ec.generate_private_key(ec.SECP256K1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    compressed = p256.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    point = p256.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.CompressedPoint)
    # The SPKI with the compressed point: same algorithm identifier, shorter BIT STRING.
    algorithm = compressed[2:2 + 2 + compressed[3]]
    bitstring = b"\x03" + bytes([len(point) + 1]) + b"\x00" + point
    inner = algorithm + bitstring
    compressed = b"\x30" + bytes([len(inner)]) + inner
    for name, key in (("key_p384", p384), ("key_secp256k1", k1), ("key_rsa", rsa_key)):
        invalid(name, 6, entry(key))
    invalid("key_compressed_point", 6, entry(p256, key_der=compressed))
    invalid("key_trailing_byte", 6, entry(ed, key_der=spki(ed) + b"\x00"))
    invalid("sig_unpadded", 7, with_line(7, b"signature " + b64(sign(ed, good[:good.index(
        b"signature ")])).rstrip("=").encode(), resign=False))
    invalid("sig_other_key", 7, entry(ed, signature=sign(other, statement(
        "pypi/requests", "2.32.3", "requests-2.32.3.tar.gz",
        hashlib.sha256(b"requests-2.32.3.tar.gz").hexdigest(), spki(ed)))))
    invalid("sig_over_other_statement", 7, good.replace(b"version 2.32.3", b"version 2.32.4"))
    whole = entry(ed)
    invalid("sig_over_seven_lines", 7, whole[:whole.index(b"signature ")] + b"signature "
            + b64(sign(ed, whole)).encode() + b"\n")
    flipped = bytearray(sign(ed, good[:good.index(b"signature ")]))
    flipped[5] ^= 1
    invalid("sig_flipped_bit", 7, entry(ed, signature=bytes(flipped)))
    body = statement("pypi/requests", "2.32.3", "requests-2.32.3.tar.gz",
                     hashlib.sha256(b"requests-2.32.3.tar.gz").hexdigest(), spki(p256))
    invalid("sig_p256_sha384", 7, entry(p256, signature=p256.sign(body, ec.ECDSA(hashes.SHA384()))))
    r, s = utils.decode_dss_signature(p256.sign(body, ec.ECDSA(hashes.SHA256())))
    invalid("sig_p256_raw_rs", 7, entry(p256, signature=r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    invalid("sig_ed25519_prehashed", 7, entry(ed, signature=ed.sign(
        hashlib.sha512(good[:good.index(b"signature ")]).digest())))
    invalid("sig_empty", 7, with_line(7, b"signature ", resign=False))
    return {"keys": keys, "cases": cases, "hashedrekord": hashedrekord(p256)}


def hashedrekord(key):
    """hashedrekord v0.0.2 entries by a public key and by a certificate, with
    the key ID of their signer: SHA-256 of the DER SPKI."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stele release vectors")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert_key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(cert_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    artifact = b"artifact"
    digest = hashlib.sha256(artifact).digest()
    out = []
    for verifier, signer, spki_der in (
            ({"publicKey": {"rawBytes": b64(spki(key))}}, key, spki(key)),
            ({"x509Certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}},
             cert_key, spki(cert_key))):
        verifier["keyDetails"] = "PKIX_ECDSA_P256_SHA_256"
        signature = signer.sign(artifact, ec.ECDSA(hashes.SHA256()))
        body = {"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": b64(digest)},
            "signature": {"content": b64(signature), "verifier": verifier}}}}
        out.append({"entry": json.dumps(body, sort_keys=True, separators=(",", ":")),
                    "key_id": hashlib.sha256(spki_der).hexdigest()})
    return out


def read_release(data):
    """Key ID of a valid release entry, else None (this script's own reading)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if len(lines) != 8 or lines[7] != "" or lines[0] != HEADER:
        return None
    fields = {}
    for line, name in zip(lines[1:7], ("namespace", "version", "file", "sha256", "key",
                                       "signature")):
        if not line.startswith(name + " "):
            return None
        fields[name] = line[len(name) + 1:]
    ns = fields["namespace"]
    if not 1 <= len(ns) <= 200 or any(not SEGMENT.match(s) or s in (".", "..")
                                      for s in ns.split("/")):
        return None
    if not re.fullmatch(r"[\x21-\x7e]{1,128}", fields["version"]):
        return None
    if not re.fullmatch(r"[\x21-\x2e\x30-\x5b\x5d-\x7e]{1,255}", fields["file"]):
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", fields["sha256"]):
        return None
    try:
        key_der = base64.b64decode(fields["key"], validate=True)
        signature = base64.b64decode(fields["signature"], validate=True)
    except ValueError:
        return None
    if b64(key_der) != fields["key"] or b64(signature) != fields["signature"]:
        return None
    try:
        key = serialization.load_der_public_key(key_der)
    except ValueError:
        return None
    # Re-encoding gives canonical DER with an uncompressed point.
    if key.public_bytes(serialization.Encoding.DER,
                        serialization.PublicFormat.SubjectPublicKeyInfo) != key_der:
        return None
    signed = text[:text.index("\nsignature ") + 1].encode()
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        else:
            return None
    except InvalidSignature:
        return None
    return hashlib.sha256(key_der).hexdigest()


def main():
    if sys.argv[1:] == ["verify"]:
        entries = json.load(sys.stdin)
        json.dump([read_release(base64.b64decode(e)) for e in entries], sys.stdout)
        return
    if sys.argv[1:]:
        sys.exit(__doc__)
    json.dump(generate(), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
