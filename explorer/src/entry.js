// Decoding log entries: Sigstore hashedrekord v0.0.2, Stele release
// statements (stele/release/v1), and anything else as opaque bytes.

import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { fromBase64, fromUtf8, toHex, utf8 } from './bytes.js';
import { parseSpki } from './note.js';

export const RELEASE_MAGIC = 'stele/release/v1\n';

const NAMESPACE_SEGMENT = /^[a-z0-9._\-@+]+$/;

/** Whether `ns` is a namespace as docs/formats.md defines it. */
export function validNamespace(ns) {
  if (ns.length < 1 || ns.length > 200) return false;
  return ns.split('/').every((s) => NAMESPACE_SEGMENT.test(s) && s !== '.' && s !== '..');
}

/** The index path of a namespace: each / written as ~. */
export const namespacePath = (ns) => `index/namespace/${ns.replaceAll('/', '~')}`;

/**
 * Decodes one entry. Returns {kind: 'hashedrekord'|'release'|'other', ...};
 * a release statement whose signature does not verify, or which is
 * malformed, has `problem` set.
 */
export function decodeEntry(bytes) {
  const text = fromUtf8(bytes);
  if (text !== null && text.startsWith(RELEASE_MAGIC)) return decodeRelease(bytes, text);
  if (text !== null && text.startsWith('{')) {
    const rekord = decodeHashedRekord(text);
    if (rekord) return rekord;
  }
  return {
    kind: 'other',
    size: bytes.length,
    text: text !== null && /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(text) ? text : null,
    hex: toHex(bytes.subarray(0, 64)),
  };
}

function decodeHashedRekord(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value?.kind !== 'hashedrekord' || value?.apiVersion !== '0.0.2') return null;
  const spec = value.spec?.hashedRekordV002;
  const data = spec?.data;
  const verifier = spec?.signature?.verifier;
  if (!data || !verifier) return null;
  let digest = null;
  let keyId = null;
  let keySource = null;
  let certificate = null;
  try {
    digest = toHex(fromBase64(data.digest));
    if (verifier.publicKey?.rawBytes) {
      const der = fromBase64(verifier.publicKey.rawBytes);
      keyId = toHex(sha256(der));
      keySource = 'public key';
    } else if (verifier.x509Certificate?.rawBytes) {
      certificate = fromBase64(verifier.x509Certificate.rawBytes);
      const spki = certificateSpki(certificate);
      keyId = spki ? toHex(sha256(spki)) : null;
      keySource = 'certificate';
    }
  } catch {
    return null;
  }
  return {
    kind: 'hashedrekord',
    algorithm: data.algorithm,
    digest,
    keyDetails: verifier.keyDetails,
    keyId,
    keySource,
    signature: spec.signature.content,
  };
}

/** Parses a stele/release/v1 statement strictly and checks its signature. */
export function decodeRelease(bytes, text) {
  const bad = (problem) => ({ kind: 'release', problem, size: bytes.length });
  if (!text.endsWith('\n')) return bad('does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  const names = ['stele/release/v1', 'namespace', 'version', 'file', 'sha256', 'key', 'signature'];
  if (lines.length !== 7) return bad(`has ${lines.length} lines, not 7`);
  const fields = {};
  for (let i = 1; i < 7; i++) {
    const prefix = `${names[i]} `;
    if (!lines[i].startsWith(prefix)) return bad(`line ${i + 1} is not "${names[i]} ..."`);
    fields[names[i]] = lines[i].slice(prefix.length);
  }
  const { namespace, version, file, sha256: digest } = fields;
  if (!validNamespace(namespace)) return bad('its namespace is malformed');
  if (!/^[\x21-\x7e]{1,128}$/.test(version)) return bad('its version is malformed');
  if (!/^[\x21-\x7e]{1,255}$/.test(file) || /[/\\]/.test(file)) return bad('its file name is malformed');
  if (!/^[0-9a-f]{64}$/.test(digest)) return bad('its sha256 is not 64 lowercase hex digits');
  let der;
  let signature;
  try {
    der = fromBase64(fields.key);
    signature = fromBase64(fields.signature);
  } catch {
    return bad('its key or signature is not padded base64');
  }
  const key = parseSpki(der);
  if (!key) return bad('its key is neither Ed25519 nor ECDSA P-256');
  const statement = utf8(lines.slice(0, 6).join('\n') + '\n');
  let valid = false;
  try {
    valid =
      key.algorithm === 'ed25519'
        ? signature.length === 64 && ed25519.verify(signature, statement, key.raw)
        : p256.verify(signature, statement, key.raw, { prehash: true, lowS: false, format: 'der' });
  } catch {
    valid = false;
  }
  return {
    kind: 'release',
    namespace,
    version,
    file,
    digest,
    algorithm: key.algorithm === 'ed25519' ? 'Ed25519' : 'ECDSA P-256',
    keyId: toHex(sha256(der)),
    signatureValid: valid,
    problem: valid ? null : 'its signature does not verify',
  };
}

// A minimal DER reader, enough to find a certificate's subjectPublicKeyInfo.
function readTlv(bytes, at) {
  if (at + 2 > bytes.length) throw new Error('truncated DER');
  const tag = bytes[at];
  let length = bytes[at + 1];
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || at + 2 + count > bytes.length) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[at + 2 + i];
    header += count;
  }
  const end = at + header + length;
  if (end > bytes.length) throw new Error('truncated DER');
  return { tag, start: at, body: at + header, end };
}

/** The DER subjectPublicKeyInfo of an X.509 certificate, or null. */
export function certificateSpki(cert) {
  try {
    const certificate = readTlv(cert, 0);
    const tbs = readTlv(cert, certificate.body);
    let at = tbs.body;
    let field = readTlv(cert, at);
    if (field.tag === 0xa0) {
      at = field.end; // explicit version
      field = readTlv(cert, at);
    }
    // serialNumber, signature, issuer, validity, subject, then the key.
    for (let i = 0; i < 5; i++) {
      at = readTlv(cert, at).end;
    }
    const spki = readTlv(cert, at);
    if (spki.tag !== 0x30) return null;
    return cert.subarray(spki.start, spki.end);
  } catch {
    return null;
  }
}
