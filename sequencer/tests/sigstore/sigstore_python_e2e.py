#!/usr/bin/env python3
"""A real Sigstore client against a running `stele serve`: sigstore-python
(the PyPI package `sigstore`, 4.x) signs artifacts, submits them with its
Rekor v2 client, and checks what comes back with its own verification code.

What runs is sigstore-python's, not ours, at every step that matters:

- the request: `RekorV2Client._build_hashed_rekord_request`, the builder
  `Signer.sign_artifact` uses, over a signature made the way `sign_artifact`
  makes it (ECDSA P-256 over the prehashed SHA-256 digest). The signing key
  is made here, with a self-signed certificate standing in for Fulcio's
  (Rekor v2, like stele, checks the signature against the certificate's key
  without chain validation);
- the submission: `RekorV2Client.create_entry`, which parses the answer into
  its `TransparencyLogEntry` model (strict: unknown fields are errors);
- the log check: `TransparencyLogEntry._verify(keyring)`, the step of
  `Verifier` that verifies the Merkle inclusion proof and the signed
  checkpoint, with the keyring of a `TrustedRoot` loaded by
  `TrustedRoot.from_file` from a trusted root that names this log by its
  public key and log ID, as Sigstore's TUF-distributed trusted root names
  Rekor v2 logs. The rest of `Verifier.verify_artifact` (Fulcio chain, SCT,
  timestamp authority) is about the certificate, not the log, and needs a
  whole Sigstore instance;
- the entry's consistency with the artifact:
  `_validate_hashedrekord_v002_entry_body`, the step `verify_artifact` runs
  to tie the logged body to the artifact, signature and certificate.

The trusted root is built from the log's public key file alone (`log.vkey`):
an Ed25519 note verifier key `<name>+<id>+<base64(0x01 || key)>` or an
ECDSA P-256 PEM public key. The log ID is worked out here with rekor-tiles'
rule (pkg/note/note.go): SHA-256(name || 0x0A || 0x01 || key) for Ed25519,
SHA-256(DER SubjectPublicKeyInfo) for ECDSA. Each returned entry must name
the log by it.

Then each of these must make sigstore-python's checks fail, one change per
case: a trusted root with another key of the same type, one flipped byte of
the logged body, of an inclusion proof hash, of the root hash, a changed
checkpoint text, a different artifact.

Usage: sigstore_python_e2e.py --url URL --log-key FILE [--origin ORIGIN]
                              [--entries N] [--skip-negative]

Exits 0 when every check passes (and every negative case is refused), 1
otherwise, with the reason on stderr.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import sys
import tempfile
import types

import sigstore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sigstore._internal.rekor.client_v2 import RekorV2Client
from sigstore._internal.trust import KeyringPurpose
from sigstore._utils import sha256_digest
from sigstore.dsse import Envelope, StatementBuilder, Subject
from sigstore.dsse import _sign as dsse_sign
from sigstore.errors import VerificationError
from sigstore.models import TransparencyLogEntry, TrustedRoot
from sigstore.verify.verifier import (
    _validate_hashedrekord_v002_dsse_entry_body,
    _validate_hashedrekord_v002_entry_body,
)
from sigstore_models.bundle.v1 import MessageSignature
from sigstore_models.rekor.v1 import TransparencyLogEntry as _InnerEntry

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


class LogKey:
    """The log's public key as a Sigstore trusted root holds it."""

    def __init__(self, text, origin):
        text = text.strip()
        if text.startswith("-----BEGIN PUBLIC KEY-----"):
            if origin is None:
                raise SystemExit("an ECDSA (PEM) log key needs --origin")
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
                key.curve, ec.SECP256R1
            ):
                raise SystemExit(f"unsupported PEM log key: {key!r}")
            self.spki = key.public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            self.key_details = "PKIX_ECDSA_P256_SHA_256"
            self.origin = origin
            self.log_id = hashlib.sha256(self.spki).digest()
        else:
            name, key_id_hex, encoded = text.split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            if len(raw) != 33 or raw[0] != 0x01:
                raise SystemExit(f"not an Ed25519 note verifier key: {text}")
            if origin is not None and origin != name:
                raise SystemExit(f"--origin {origin} but the key is named {name}")
            public = raw[1:]
            self.spki = ed25519.Ed25519PublicKey.from_public_bytes(public).public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            self.key_details = "PKIX_ED25519"
            self.origin = name
            self.log_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()
            if self.log_id[:4].hex() != key_id_hex:
                raise SystemExit(f"key ID {key_id_hex} does not match the key {text}")

    def trusted_root(self, url, directory):
        """Writes a trusted root naming this log and loads it the way a
        Sigstore client loads a custom one (`--trusted-root FILE`)."""
        document = {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [
                {
                    "baseUrl": url,
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {
                        "rawBytes": base64.b64encode(self.spki).decode(),
                        "keyDetails": self.key_details,
                        "validFor": {"start": "2020-01-01T00:00:00Z"},
                    },
                    "logId": {"keyId": base64.b64encode(self.log_id).decode()},
                }
            ],
            "certificateAuthorities": [],
            "ctlogs": [],
        }
        path = os.path.join(directory, f"trusted_root_{self.log_id.hex()[:8]}.json")
        with open(path, "w") as file:
            json.dump(document, file)
        return TrustedRoot.from_file(path)


def other_key_like(log_key):
    """A fresh key of the same type and origin: the wrong log key."""
    if log_key.key_details == "PKIX_ED25519":
        public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        key_id = hashlib.sha256(log_key.origin.encode() + b"\n\x01" + public).digest()[:4]
        encoded = base64.b64encode(b"\x01" + public).decode()
        text = f"{log_key.origin}+{key_id.hex()}+{encoded}"
        return LogKey(text, None)
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return LogKey(pem.decode(), log_key.origin)


def signing_identity():
    """An ECDSA P-256 key and a short-lived self-signed certificate for it,
    shaped like a Fulcio certificate (digital signature, code signing)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stele sigstore-python test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def check_entry(entry, content, certificate, trusted_root, log_key):
    """sigstore-python's own checks of a returned entry, for `content`: an
    (artifact, signature) pair or a DSSE envelope. Raises VerificationError
    when one fails."""
    # Inclusion proof and signed checkpoint (Verifier step 4).
    entry._verify(trusted_root.rekor_keyring(KeyringPurpose.VERIFY))
    # The body against the signed content and certificate (step 8). These
    # functions read a few parts of a Bundle; a Bundle proper also wants a
    # timestamp authority's signed time, which a log does not supply.
    if isinstance(content, Envelope):
        bundle_parts = types.SimpleNamespace(
            log_entry=entry, signing_certificate=certificate, _dsse_envelope=content
        )
        _validate_hashedrekord_v002_dsse_entry_body(bundle_parts)
    else:
        artifact, signature = content
        bundle_parts = types.SimpleNamespace(
            log_entry=entry,
            signing_certificate=certificate,
            _inner=types.SimpleNamespace(
                message_signature=MessageSignature(signature=base64.b64encode(signature))
            ),
        )
        _validate_hashedrekord_v002_entry_body(bundle_parts, sha256_digest(artifact))
    # What sigstore-python takes on trust, checked here: the entry names the
    # log by rekor-tiles' log ID of its key.
    inner = entry._inner
    if inner.log_id.key_id != log_key.log_id:
        raise VerificationError(
            f"logId.keyId {base64.b64encode(inner.log_id.key_id).decode()} is not the log ID "
            f"{base64.b64encode(log_key.log_id).decode()} of the log's key"
        )
    if (inner.kind_version.kind, inner.kind_version.version) != ("hashedrekord", "0.0.2"):
        raise VerificationError(f"kindVersion {inner.kind_version}")


def flip_base64_byte(value, position=0):
    raw = bytearray(base64.b64decode(value))
    raw[position] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def tampered(entry, change):
    """A copy of `entry` with `change` applied to its protojson form."""
    document = copy.deepcopy(entry._inner.to_dict())
    change(document)
    return TransparencyLogEntry(_InnerEntry.from_dict(document))


def expect_refused(description, check):
    try:
        check()
    except VerificationError as error:
        print(f"  refused as it must be: {description}: {str(error)[:100]}")
        return
    raise SystemExit(f"NOT REFUSED: {description}: sigstore-python's checks passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the log, e.g. http://127.0.0.1:8080")
    parser.add_argument("--log-key", required=True, help="the log's log.vkey")
    parser.add_argument("--origin", help="the log's origin (needed for a PEM key)")
    parser.add_argument("--entries", type=int, default=3)
    parser.add_argument("--skip-negative", action="store_true")
    args = parser.parse_args()

    print(f"sigstore-python {sigstore.__version__}")
    with open(args.log_key) as file:
        log_key = LogKey(file.read(), args.origin)
    client = RekorV2Client(args.url.rstrip("/"))
    signing_key, certificate = signing_identity()
    workdir = tempfile.mkdtemp(prefix="stele-sigstore-python-")
    trusted_root = log_key.trusted_root(args.url, workdir)

    submitted = []
    for number in range(args.entries):
        artifact = os.urandom(16) + f" artifact {number}".encode()
        hashed = sha256_digest(artifact)
        # As Signer.sign_artifact signs: over the prehashed digest.
        signature = signing_key.sign(hashed.digest, ec.ECDSA(hashed._as_prehashed()))
        request = RekorV2Client._build_hashed_rekord_request(
            hashed_input=hashed, signature=signature, certificate=certificate
        )
        entry = client.create_entry(request)
        submitted.append((entry, (artifact, signature)))

    # An in-toto statement in a DSSE envelope, as Signer.sign_dsse makes and
    # submits it: a hashedrekord over the envelope's PAE.
    statement = (
        StatementBuilder()
        .subjects([Subject(name="artifact", digest={"sha256": hashlib.sha256(b"a").hexdigest()})])
        .predicate_type("https://example.invalid/stele-test/v1")
        .predicate({"nonce": os.urandom(8).hex()})
        .build()
    )
    envelope = dsse_sign(signing_key, statement)
    entry = client.create_entry(RekorV2Client._build_dsse_request(envelope, certificate))
    submitted.append((entry, envelope))

    # Entries logged earlier are checked with their own (older) proofs.
    for entry, content in submitted:
        check_entry(entry, content, certificate, trusted_root, log_key)
        proof = entry._inner.inclusion_proof
        kind = "DSSE envelope" if isinstance(content, Envelope) else "artifact"
        print(
            f"verified by sigstore-python: {kind} at index {entry._inner.log_index} in tree "
            f"of {proof.tree_size}, {len(proof.hashes)} proof hashes, "
            f"log ID {base64.b64encode(entry._inner.log_id.key_id).decode()}"
        )

    if args.skip_negative:
        return
    artifacts = [item for item in submitted if not isinstance(item[1], Envelope)]
    entry, (artifact, signature) = max(
        artifacts, key=lambda item: len(item[0]._inner.inclusion_proof.hashes)
    )
    if not entry._inner.inclusion_proof.hashes:
        raise SystemExit("no entry has proof hashes to tamper with; submit more entries")

    def check(candidate, root=trusted_root, data=artifact):
        return lambda: check_entry(candidate, (data, signature), certificate, root, log_key)

    print("negative cases, each changing one thing:")
    expect_refused(
        "a trusted root with another log key",
        check(entry, root=other_key_like(log_key).trusted_root(args.url, workdir)),
    )

    def body(document):
        document["canonicalizedBody"] = flip_base64_byte(document["canonicalizedBody"], 20)

    expect_refused("one flipped byte of the logged body", check(tampered(entry, body)))

    def proof_hash(document):
        hashes_ = document["inclusionProof"]["hashes"]
        hashes_[0] = flip_base64_byte(hashes_[0])

    expect_refused("one flipped byte of a proof hash", check(tampered(entry, proof_hash)))

    def root_hash(document):
        proof = document["inclusionProof"]
        proof["rootHash"] = flip_base64_byte(proof["rootHash"])

    expect_refused("one flipped byte of the root hash", check(tampered(entry, root_hash)))

    def checkpoint_text(document):
        checkpoint = document["inclusionProof"]["checkpoint"]
        origin, size, rest = checkpoint["envelope"].split("\n", 2)
        checkpoint["envelope"] = f"{origin}\n{int(size) + 1}\n{rest}"

    expect_refused("a changed checkpoint size", check(tampered(entry, checkpoint_text)))
    expect_refused("another artifact", check(entry, data=artifact + b"!"))
    dsse_entry, _ = submitted[-1]
    other_envelope = dsse_sign(signing_key, statement)
    expect_refused(
        "the DSSE entry for another signature over the same statement",
        lambda: check_entry(dsse_entry, other_envelope, certificate, trusted_root, log_key),
    )
    print("all negative cases refused")


if __name__ == "__main__":
    try:
        main()
    except VerificationError as error:
        print(f"sigstore-python verification failed: {error}", file=sys.stderr)
        sys.exit(1)
