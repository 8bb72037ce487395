// c2sp.org/signed-note, c2sp.org/tlog-checkpoint and
// c2sp.org/tlog-cosignature: parsing, the log's two key types (Ed25519
// `name+id+base64` keys and ECDSA P-256 PEM keys, as Rekor v2 signs), and
// witness cosignatures.

import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { concat, equal, fromBase64, fromUtf8, toHex, utf8 } from './bytes.js';

export class VerificationError extends Error {}

const ED25519_TYPE = 0x01;
const COSIGNATURE_TYPE = 0x04;
/** DER SubjectPublicKeyInfo prefix of an uncompressed P-256 point. */
export const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
  0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
]);
/** DER SubjectPublicKeyInfo prefix of an Ed25519 key. */
export const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

const keyHash = (name, type, key) => sha256(concat(utf8(name), [0x0a, type], key)).subarray(0, 4);
const u32 = (bytes) => ((bytes[0] << 24) >>> 0) + (bytes[1] << 16) + (bytes[2] << 8) + bytes[3];

/** A public key in a DER SPKI: {algorithm: 'ed25519'|'p256', raw}, or null. */
export function parseSpki(der) {
  if (der.length === 44 && equal(der.subarray(0, 12), ED25519_SPKI_PREFIX)) {
    return { algorithm: 'ed25519', raw: der.subarray(12) };
  }
  if (der.length === 91 && equal(der.subarray(0, 26), P256_SPKI_PREFIX) && der[26] === 0x04) {
    return { algorithm: 'p256', raw: der.subarray(26) };
  }
  return null;
}

/**
 * A log's verifier key: Go's `<name>+<8 hex>+<base64(0x01 ‖ key)>` for
 * Ed25519, or a PEM `PUBLIC KEY` (SPKI) for ECDSA P-256.
 */
export function parseLogKey(text) {
  text = text.trim();
  if (text.startsWith('-----BEGIN PUBLIC KEY-----')) {
    const body = text
      .replace('-----BEGIN PUBLIC KEY-----', '')
      .replace('-----END PUBLIC KEY-----', '')
      .replace(/\s+/g, '');
    const der = fromBase64(body);
    const key = parseSpki(der);
    if (!key || key.algorithm !== 'p256') throw new Error('the PEM key is not an ECDSA P-256 public key');
    const id = sha256(der).subarray(0, 4);
    return {
      algorithm: 'ECDSA P-256',
      name: null,
      id: u32(id),
      text,
      verify: (message, signature) => {
        try {
          return p256.verify(signature, message, key.raw, { prehash: true, lowS: false, format: 'der' });
        } catch {
          return false;
        }
      },
    };
  }
  const { name, id, key } = parseNoteKey(text, ED25519_TYPE);
  return {
    algorithm: 'Ed25519',
    name,
    id,
    text,
    verify: (message, signature) => signature.length === 64 && safeEd25519(signature, message, key),
  };
}

/** A witness's cosignature/v1 verifier key `<name>+<8 hex>+<base64(0x04 ‖ key)>`. */
export function parseWitnessKey(text) {
  const { name, id, key } = parseNoteKey(text.trim(), COSIGNATURE_TYPE);
  return { name, id, key, text: text.trim() };
}

function parseNoteKey(text, type) {
  // The name has no '+'; the base64 key may.
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text);
  if (!match) throw new Error(`not a verifier key <name>+<id>+<key>: ${JSON.stringify(text.slice(0, 80))}`);
  const [, name, idHex, keyText] = match;
  const bytes = fromBase64(keyText);
  if (bytes.length !== 33 || bytes[0] !== type) {
    throw new Error(`verifier key ${name}: not a key of type 0x0${type} (Ed25519${type === COSIGNATURE_TYPE ? ' cosignature/v1' : ''})`);
  }
  const key = bytes.subarray(1);
  const id = u32(keyHash(name, type, key));
  if (id !== parseInt(idHex, 16)) throw new Error(`verifier key ${name}: its key ID ${idHex} does not match the key`);
  return { name, id, key };
}

function safeEd25519(signature, message, key) {
  try {
    return ed25519.verify(signature, message, key);
  } catch {
    return false;
  }
}

/** Splits a signed note into its text and signature lines. */
export function parseNote(bytes) {
  const note = fromUtf8(bytes);
  if (note === null) throw new VerificationError('the checkpoint is not UTF-8');
  const split = note.indexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new VerificationError('the checkpoint is not a signed note (no blank line before signatures)');
  const text = note.slice(0, split + 1);
  const signatures = [];
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) throw new VerificationError(`malformed signature line ${JSON.stringify(line.slice(0, 80))}`);
    const blob = fromBase64(match[2]);
    if (blob.length < 5) throw new VerificationError(`signature line of ${match[1]} is too short`);
    signatures.push({ name: match[1], id: u32(blob), signature: blob.subarray(4), line });
  }
  if (signatures.length === 0) throw new VerificationError('the checkpoint has no signature');
  return { text, signatures };
}

/** The body of a checkpoint: origin, size, root hash, extension lines. */
export function parseCheckpointText(text) {
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new VerificationError('a checkpoint has at least three lines');
  const [origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new VerificationError(`checkpoint size ${JSON.stringify(sizeText)} is not a decimal number`);
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new VerificationError(`checkpoint size ${sizeText} is too large for this page`);
  let root;
  try {
    root = fromBase64(rootText);
  } catch {
    throw new VerificationError('checkpoint root is not base64');
  }
  if (root.length !== 32) throw new VerificationError('checkpoint root is not 32 bytes');
  return { origin, size, root, extensions: lines.slice(3) };
}

/**
 * Verifies a checkpoint under the log's key and lists its cosignatures,
 * each checked against the witness keys given. Throws VerificationError
 * when the log's signature is missing or bad, or a given witness's
 * cosignature is bad.
 */
export function verifyCheckpoint(bytes, logKey, witnessKeys = []) {
  const note = parseNote(bytes);
  const checkpoint = parseCheckpointText(note.text);
  if (logKey.name !== null && logKey.name !== checkpoint.origin) {
    throw new VerificationError(`the checkpoint's origin ${checkpoint.origin} is not the key's name ${logKey.name}`);
  }
  const message = utf8(note.text);
  const logName = logKey.name ?? checkpoint.origin;
  const fromLog = note.signatures.filter((s) => s.id === logKey.id && s.name === logName);
  if (fromLog.length === 0) {
    throw new VerificationError(`the checkpoint has no signature by the log's key ${logName} (key ID ${hex8(logKey.id)})`);
  }
  for (const s of fromLog) {
    if (!logKey.verify(message, s.signature)) {
      throw new VerificationError(`the log's signature on the checkpoint does not verify (key ${logName}, ID ${hex8(logKey.id)})`);
    }
  }
  const cosignatures = [];
  for (const s of note.signatures) {
    if (fromLog.includes(s)) continue;
    const witness = witnessKeys.find((w) => w.id === s.id && w.name === s.name);
    if (!witness) {
      cosignatures.push({ name: s.name, id: s.id, status: 'unknown' });
      continue;
    }
    const sig = s.signature;
    if (sig.length !== 72) throw new VerificationError(`the cosignature of witness ${s.name} is not 72 bytes`);
    let time = 0;
    for (let i = 0; i < 8; i++) time = time * 256 + sig[i];
    const signed = concat(utf8(`cosignature/v1\ntime ${time}\n`), message);
    if (!safeEd25519(sig.subarray(8), signed, witness.key)) {
      throw new VerificationError(`the cosignature of witness ${s.name} does not verify`);
    }
    cosignatures.push({ name: s.name, id: s.id, status: 'verified', time });
  }
  for (const w of witnessKeys) {
    if (!cosignatures.some((c) => c.status === 'verified' && c.name === w.name && c.id === w.id)) {
      cosignatures.push({ name: w.name, id: w.id, status: 'missing' });
    }
  }
  return { ...checkpoint, text: note.text, cosignatures, keyId: logKey.id, logName };
}

export const hex8 = (id) => id.toString(16).padStart(8, '0');
export const keyIdHex = (spkiDer) => toHex(sha256(spkiDer));
