// The log as the page reads it: the checkpoint verified under the log's
// key, then tiles, entry bundles and indexes, each entry proved included
// in the verified checkpoint before it is shown.

import { fromUtf8, toHex } from './bytes.js';
import { decodeEntry } from './entry.js';
import { VerificationError, parseLogKeys, parseWitnessKey, verifyCheckpoint } from './note.js';
import { TileError, TileTree, leafHash, rootFromInclusionProof, tilePath } from './tlog.js';
import { equal } from './bytes.js';

/** A failure to read something (as opposed to something that does not verify). */
export class FetchError extends Error {}

/** The page's options, from its URL: ?log=, ?vkey= (repeated), ?witness= (repeated). */
export function options(location) {
  const params = new URLSearchParams(location.search);
  let base = params.get('log') ?? new URL('..', location.href).href;
  if (!base.endsWith('/')) base += '/';
  return {
    base: new URL(base, location.href).href,
    vkeys: params.getAll('vkey').filter((v) => v.trim() !== ''),
    witnesses: params.getAll('witness').flatMap((w) => w.split(',')).filter((w) => w.trim() !== ''),
  };
}

export class Log {
  constructor({ base, vkeys = [], witnesses = [] }, fetcher = fetch.bind(globalThis)) {
    this.base = base;
    this.vkeyTexts = vkeys;
    this.witnessTexts = witnesses;
    this.fetcher = fetcher;
    this.bundles = new Map();
    this.checkpointPromise = null;
  }

  url(path) {
    return new URL(path, this.base).href;
  }

  /** GET a path of the log: bytes, or null on 404. */
  async get(path, init = {}) {
    let response;
    try {
      response = await this.fetcher(this.url(path), init);
    } catch (err) {
      throw new FetchError(`could not read ${path}: ${err.message}`);
    }
    if (response.status === 404) return null;
    if (!response.ok) throw new FetchError(`could not read ${path}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }

  async getText(path, init) {
    const bytes = await this.get(path, init);
    return bytes === null ? null : fromUtf8(bytes);
  }

  async getJson(path) {
    const text = await this.getText(path);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new FetchError(`${path} is not JSON`);
    }
  }

  /**
   * The log's keys: from ?vkey= (once per key: a hybrid log's classical
   * and ML-DSA-44 keys), else the log's own log.vkey object.
   */
  async keys() {
    if (this.vkeyTexts.length > 0) return { keys: parseLogKeys(this.vkeyTexts), source: 'pinned by ?vkey=' };
    const text = await this.getText('log.vkey', { cache: 'no-cache' });
    if (text === null) {
      throw new FetchError('the log serves no log.vkey and no ?vkey= was given: the checkpoint cannot be verified');
    }
    return { keys: parseLogKeys([text]), source: 'log.vkey served by the log itself (pin it with ?vkey= for an independent check)' };
  }

  /** The current checkpoint, verified (fetched once per page load). */
  checkpoint() {
    if (!this.checkpointPromise) {
      this.checkpointPromise = (async () => {
        const { keys, source } = await this.keys();
        const witnesses = this.witnessTexts.map(parseWitnessKey);
        const bytes = await this.get('checkpoint', { cache: 'no-cache' });
        if (bytes === null) throw new FetchError('the log has no checkpoint yet');
        const checkpoint = verifyCheckpoint(bytes, keys, witnesses);
        checkpoint.keySource = source;
        checkpoint.bytes = bytes;
        this.tree = new TileTree(checkpoint.size, (level, index, width) => this.tile(level, index, width));
        return checkpoint;
      })();
      this.checkpointPromise.catch(() => {
        this.checkpointPromise = null;
      });
    }
    return this.checkpointPromise;
  }

  /** A hash tile or entry bundle; a full one stands in for a partial one that is gone. */
  async tile(level, index, width) {
    const path = tilePath(level, index, width);
    let bytes = await this.get(path);
    if (bytes === null && width < 256) bytes = await this.get(tilePath(level, index, 256));
    if (bytes === null) throw new FetchError(`${path} does not exist`);
    return bytes;
  }

  /** The entries of bundle `index` (as many as the verified tree has). */
  async bundle(index) {
    const { size } = await this.checkpoint();
    const width = Math.min(256, size - index * 256);
    if (width <= 0) throw new Error(`bundle ${index} is beyond the tree`);
    if (!this.bundles.has(index)) {
      const promise = this.tile('entries', index, width).then((bytes) => parseBundle(bytes, width, index));
      this.bundles.set(index, promise);
      promise.catch(() => this.bundles.delete(index));
    }
    return this.bundles.get(index);
  }

  /**
   * Entry i: its bytes, leaf hash, inclusion proof (from the tiles) and the
   * proof checked against the verified checkpoint's root. Throws
   * VerificationError when the proof does not lead to the root.
   */
  async entry(i) {
    const checkpoint = await this.checkpoint();
    if (!Number.isSafeInteger(i) || i < 0 || i >= checkpoint.size) {
      throw new RangeError(`entry ${i} is not in the log (its size is ${checkpoint.size})`);
    }
    const bundle = await this.bundle(Math.floor(i / 256));
    const bytes = bundle[i % 256];
    const leaf = leafHash(bytes);
    let proof;
    try {
      proof = await this.tree.inclusionProof(i);
    } catch (err) {
      if (err instanceof TileError) throw new VerificationError(err.message);
      throw err;
    }
    const root = rootFromInclusionProof(i, checkpoint.size, leaf, proof);
    if (root === null || !equal(root, checkpoint.root)) {
      throw new VerificationError(
        `entry ${i} is not proved included: its leaf hash and the inclusion proof read from the tiles give root ${
          root ? toHex(root) : '(none)'
        }, but the signed checkpoint's root is ${toHex(checkpoint.root)}`,
      );
    }
    return { index: i, bytes, leaf, proof, decoded: decodeEntry(bytes), treeSize: checkpoint.size };
  }

  /** An index object (digest, key or namespace): its entry numbers, or [] when there is none. */
  async index(path) {
    const text = await this.getText(path, { cache: 'no-cache' });
    if (text === null) return [];
    if (!/^(?:(?:0|[1-9][0-9]*)\n)+$/.test(text)) throw new FetchError(`${path} is not a list of entry numbers`);
    const list = text.slice(0, -1).split('\n').map(Number);
    for (let k = 1; k < list.length; k++) {
      if (list[k] <= list[k - 1]) throw new FetchError(`${path} is not strictly ascending`);
    }
    return list;
  }
}

/** Splits an entry bundle: `width` entries, each a big-endian u16 length and its bytes. */
export function parseBundle(bytes, width, index) {
  const entries = [];
  let at = 0;
  while (at < bytes.length && entries.length < width) {
    if (at + 2 > bytes.length) throw new VerificationError(`entry bundle ${index} is truncated`);
    const length = bytes[at] * 256 + bytes[at + 1];
    if (at + 2 + length > bytes.length) throw new VerificationError(`entry bundle ${index} is truncated`);
    entries.push(bytes.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  if (entries.length < width) throw new VerificationError(`entry bundle ${index} has ${entries.length} entries, not ${width}`);
  return entries;
}
