// c2sp.org/signed-note, c2sp.org/tlog-checkpoint and
// c2sp.org/tlog-cosignature: parsing, the log's key types (Ed25519
// `name+id+base64` keys, ECDSA P-256 PEM keys as Rekor v2 signs, and
// ML-DSA-44 `subtree/v1` keys, alone or beside one of the others), and
// witness cosignatures (Ed25519 `cosignature/v1` and ML-DSA-44).

import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { concat, equal, fromBase64, fromUtf8, toHex, utf8 } from './bytes.js';

export class VerificationError extends Error {}

const ED25519_TYPE = 0x01;
const COSIGNATURE_TYPE = 0x04;
const MLDSA44_TYPE = 0x06;
const MLDSA44_PUBLIC_KEY_LENGTH = 1312;
const MLDSA44_SIGNATURE_LENGTH = 2420;
/** Bytes of a `subtree/v1` signature line after the key ID: timestamp ‖ ML-DSA-44 signature. */
export const SUBTREE_V1_LENGTH = 8 + MLDSA44_SIGNATURE_LENGTH;
const SUBTREE_V1_LABEL = utf8('subtree/v1\n\0');
const KEY_TYPES = {
  [ED25519_TYPE]: { length: 32, what: 'Ed25519' },
  [COSIGNATURE_TYPE]: { length: 32, what: 'Ed25519 cosignature/v1' },
  [MLDSA44_TYPE]: { length: MLDSA44_PUBLIC_KEY_LENGTH, what: 'ML-DSA-44' },
};
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
 * Ed25519, `<name>+<8 hex>+<base64(0x06 ‖ key)>` for ML-DSA-44, or a PEM
 * `PUBLIC KEY` (SPKI) for ECDSA P-256.
 *
 * Each key has `verify(signed, signature)`, where `signed` is the
 * checkpoint ({message: the note text's bytes, origin, size, root}) and
 * `signature` the line's bytes after the key ID; it returns null when the
 * signature does not verify, else {time}: the signing time an ML-DSA-44
 * signature carries (POSIX seconds), null for the others.
 * `signsExtensions` says whether the key's signature covers the
 * checkpoint's extension lines (ML-DSA-44's does not).
 */
export function parseLogKey(text) {
  if (text.trim().startsWith('-----BEGIN PUBLIC KEY-----')) {
    text = text.trim();
    const body = text
      .replace('-----BEGIN PUBLIC KEY-----', '')
      .replace('-----END PUBLIC KEY-----', '')
      // A '+' of an unencoded query parameter arrives as a space.
      .replace(/ /g, '+')
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
      signsExtensions: true,
      verify: (signed, signature) => {
        try {
          return p256.verify(signature, signed.message, key.raw, { prehash: true, lowS: false, format: 'der' }) ? { time: null } : null;
        } catch {
          return null;
        }
      },
    };
  }
  let name, id, type, key;
  ({ text, name, id, type, key } = parseNoteKey(text, [ED25519_TYPE, MLDSA44_TYPE], 'a log key (Ed25519 0x01 or ML-DSA-44 0x06)'));
  if (type === MLDSA44_TYPE) {
    return { algorithm: 'ML-DSA-44', name, id, text, signsExtensions: false, verify: subtreeVerifier(name, key) };
  }
  return {
    algorithm: 'Ed25519',
    name,
    id,
    text,
    signsExtensions: true,
    verify: (signed, signature) => (signature.length === 64 && safeEd25519(signature, signed.message, key) ? { time: null } : null),
  };
}

/**
 * The log's keys, from one or more verifier key texts (a hybrid log's
 * classical key and its ML-DSA-44 key). Every key given must sign each
 * checkpoint.
 */
export function parseLogKeys(texts) {
  if (texts.length === 0) throw new Error('no log key given');
  const keys = texts.map(parseLogKey);
  for (let i = 0; i < keys.length; i++) {
    for (let j = 0; j < i; j++) {
      if (keys[i].id === keys[j].id && keys[i].name === keys[j].name) {
        throw new Error(`the log key ${keys[i].name ?? ''} (key ID ${hex8(keys[i].id)}) is given twice`);
      }
    }
  }
  return keys;
}

/**
 * A witness's verifier key: `<name>+<8 hex>+<base64(0x04 ‖ key)>` for an
 * Ed25519 `cosignature/v1` key, `<name>+<8 hex>+<base64(0x06 ‖ key)>` for
 * an ML-DSA-44 `subtree/v1` key. `verify` is as a log key's.
 */
export function parseWitnessKey(text) {
  let name, id, type, key;
  ({ text, name, id, type, key } = parseNoteKey(text, [COSIGNATURE_TYPE, MLDSA44_TYPE], 'a witness key (Ed25519 cosignature/v1 0x04 or ML-DSA-44 0x06)'));
  if (type === MLDSA44_TYPE) return { algorithm: 'ML-DSA-44', name, id, text, verify: subtreeVerifier(name, key) };
  return {
    algorithm: 'Ed25519',
    name,
    id,
    text,
    verify: (signed, signature) => {
      if (signature.length !== 72) return null;
      const time = timestampOf(signature);
      if (time === null) return null;
      const message = concat(utf8(`cosignature/v1\ntime ${time}\n`), signed.message);
      return safeEd25519(signature.subarray(8), message, key) ? { time: Number(time) } : null;
    },
  };
}

function parseNoteKey(text, types, what) {
  // Line breaks around the key (log.vkey ends in one) are not part of it.
  // A '+' of an unencoded query parameter arrives as a space, which no key
  // text holds, even at its end (the base64 may end in '+').
  text = text
    .replace(/^\s+/, '')
    .replace(/[\r\n\t]+$/, '')
    .replace(/ /g, '+');
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text);
  if (!match) throw new Error(`not a verifier key <name>+<id>+<key>: ${JSON.stringify(text.slice(0, 80))}`);
  const [, name, idHex, keyText] = match;
  const bytes = fromBase64(keyText);
  const type = bytes[0];
  if (!types.includes(type)) {
    throw new Error(`verifier key ${name}: its type byte 0x${hex2(type ?? 0)} is not ${what}`);
  }
  const key = bytes.subarray(1);
  if (key.length !== KEY_TYPES[type].length) {
    throw new Error(`verifier key ${name}: an ${KEY_TYPES[type].what} key is ${KEY_TYPES[type].length} bytes, not ${key.length}`);
  }
  const id = u32(keyHash(name, type, key));
  if (id !== parseInt(idHex, 16)) throw new Error(`verifier key ${name}: its key ID ${idHex} does not match the key`);
  return { text, name, id, type, key };
}

/**
 * The timestamp of a timestamped signature (its first 8 bytes, big-endian)
 * as a BigInt, or null when it exceeds 2^63 - 1.
 */
function timestampOf(signature) {
  if (signature[0] & 0x80) return null;
  let time = 0n;
  for (let i = 0; i < 8; i++) time = (time << 8n) | BigInt(signature[i]);
  return time;
}

/** A big-endian u64 of a safe integer. */
function u64(n) {
  const out = new Uint8Array(8);
  const high = Math.floor(n / 2 ** 32);
  const low = n % 2 ** 32;
  for (let i = 0; i < 4; i++) {
    out[3 - i] = (high / 2 ** (8 * i)) & 0xff;
    out[7 - i] = (low / 2 ** (8 * i)) & 0xff;
  }
  return out;
}

/**
 * The `subtree/v1` message an ML-DSA-44 signature of a checkpoint signs
 * (c2sp.org/tlog-cosignature): `"subtree/v1\n\0" ‖ u8 len ‖ cosigner name ‖
 * u64 timestamp ‖ u8 len ‖ origin ‖ u64 start (0) ‖ u64 end (the size) ‖
 * root`, the timestamp being the signature's first 8 bytes as they are.
 * Null when the name or the origin is not 1 to 255 bytes.
 */
export function subtreeMessage(cosigner, timestampBytes, origin, size, root) {
  const name = utf8(cosigner);
  const originBytes = utf8(origin);
  if (name.length < 1 || name.length > 255 || originBytes.length < 1 || originBytes.length > 255) return null;
  return concat(SUBTREE_V1_LABEL, [name.length], name, timestampBytes, [originBytes.length], originBytes, u64(0), u64(size), root);
}

/** Verifies ML-DSA-44 `subtree/v1` signatures of checkpoints by the key `name`. */
function subtreeVerifier(name, publicKey) {
  return (signed, signature) => {
    if (signature.length !== SUBTREE_V1_LENGTH) return null;
    const time = timestampOf(signature);
    if (time === null) return null;
    const message = subtreeMessage(name, signature.subarray(0, 8), signed.origin, signed.size, signed.root);
    if (message === null) return null;
    try {
      return ml_dsa44.verify(signature.subarray(8), message, publicKey) ? { time: Number(time) } : null;
    } catch {
      return null;
    }
  };
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
 * Verifies a checkpoint under the log's keys (one key, or a list: every key
 * given must have signed it) and lists its cosignatures, each checked
 * against the witness keys given. Throws VerificationError when a log key's
 * signature is missing or bad, when the checkpoint has extension lines that
 * none of the keys signs (ML-DSA-44 keys alone), or when a given witness's
 * cosignature is bad.
 */
export function verifyCheckpoint(bytes, logKeys, witnessKeys = []) {
  if (!Array.isArray(logKeys)) logKeys = [logKeys];
  if (logKeys.length === 0) throw new Error('no log key given');
  const note = parseNote(bytes);
  const checkpoint = parseCheckpointText(note.text);
  const signed = { message: utf8(note.text), origin: checkpoint.origin, size: checkpoint.size, root: checkpoint.root };
  const fromLog = new Set();
  const verifiedBy = [];
  for (const key of logKeys) {
    if (key.name !== null && key.name !== checkpoint.origin) {
      throw new VerificationError(`the checkpoint's origin ${checkpoint.origin} is not the key's name ${key.name}`);
    }
    const name = key.name ?? checkpoint.origin;
    const lines = note.signatures.filter((s) => s.id === key.id && s.name === name);
    if (lines.length === 0) {
      throw new VerificationError(`the checkpoint has no signature by the log's ${key.algorithm} key ${name} (key ID ${hex8(key.id)})`);
    }
    let time = null;
    for (const s of lines) {
      const result = key.verify(signed, s.signature);
      if (!result) {
        throw new VerificationError(`the log's ${key.algorithm} signature on the checkpoint does not verify (key ${name}, ID ${hex8(key.id)})`);
      }
      fromLog.add(s);
      time = result.time;
    }
    verifiedBy.push({ algorithm: key.algorithm, name, id: key.id, time });
  }
  if (checkpoint.extensions.length > 0 && !logKeys.some((key) => key.signsExtensions)) {
    throw new VerificationError(
      `the checkpoint has ${checkpoint.extensions.length} extension line(s), which an ML-DSA-44 signature does not cover, and no other key of the log was given: they are unauthenticated`,
    );
  }
  const cosignatures = [];
  for (const s of note.signatures) {
    if (fromLog.has(s)) continue;
    const witness = witnessKeys.find((w) => w.id === s.id && w.name === s.name);
    if (!witness) {
      // A line in the log's name by a key not given: a hybrid log's other key.
      const status = s.name === checkpoint.origin ? 'other-log-key' : 'unknown';
      cosignatures.push({ name: s.name, id: s.id, status, algorithm: guessAlgorithm(s.signature) });
      continue;
    }
    const result = witness.verify(signed, s.signature);
    if (!result) throw new VerificationError(`the ${witness.algorithm} cosignature of witness ${s.name} does not verify`);
    cosignatures.push({ name: s.name, id: s.id, status: 'verified', algorithm: witness.algorithm, time: result.time });
  }
  for (const w of witnessKeys) {
    if (!cosignatures.some((c) => c.status === 'verified' && c.name === w.name && c.id === w.id)) {
      cosignatures.push({ name: w.name, id: w.id, status: 'missing', algorithm: w.algorithm });
    }
  }
  return {
    ...checkpoint,
    text: note.text,
    cosignatures,
    verifiedBy,
    algorithms: verifiedBy.map((v) => v.algorithm),
    keyId: verifiedBy[0].id,
    logName: verifiedBy[0].name,
  };
}

/** What a signature line's length suggests it is (not verified). */
function guessAlgorithm(signature) {
  if (signature.length === SUBTREE_V1_LENGTH) return 'ML-DSA-44?';
  if (signature.length === 64 || signature.length === 72) return 'Ed25519?';
  return '';
}

const hex2 = (byte) => byte.toString(16).padStart(2, '0');
export const hex8 = (id) => id.toString(16).padStart(8, '0');
export const keyIdHex = (spkiDer) => toHex(sha256(spkiDer));
