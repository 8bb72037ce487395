// RFC 6962 / RFC 9162 Merkle tree hashing and inclusion proofs, with the
// proof's nodes read from c2sp.org/tlog-tiles tiles.

import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equal } from './bytes.js';

/** Tile height of c2sp.org/tlog-tiles. */
export const TILE_HEIGHT = 8;
export const HASH_SIZE = 32;

export const leafHash = (entry) => sha256(concat([0], entry));
export const nodeHash = (left, right) => sha256(concat([1], left, right));

/** The largest power of two strictly below n (n >= 2). */
export function splitPoint(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** log2(n) when n is a power of two, else null. */
export function exactLog2(n) {
  let level = 0;
  let k = 1;
  while (k < n) {
    k *= 2;
    level += 1;
  }
  return k === n ? level : null;
}

/** The N part of a tile path: three-digit groups, all but the last prefixed by x. */
export function tileIndexPath(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad tile index ${n}`);
  let digits = String(n);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups = digits.match(/.../g);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** `tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]` when level is 'entries'. */
export function tilePath(level, n, width, height = TILE_HEIGHT) {
  const full = 2 ** height;
  const base = `tile/${level}/${tileIndexPath(n)}`;
  return width < full ? `${base}.p/${width}` : base;
}

/**
 * The nodes of the inclusion proof of leaf m in a tree of n leaves
 * (RFC 9162 §2.1.3.1, PATH(m, D[n])), as leaf ranges [lo, hi), from the
 * leaf's sibling up to the root's other child.
 */
export function inclusionRanges(m, n) {
  if (!(m >= 0 && m < n)) throw new Error(`leaf ${m} is not in a tree of ${n}`);
  const ranges = [];
  const path = (lo, hi) => {
    if (hi - lo <= 1) return;
    const k = splitPoint(hi - lo);
    if (m < lo + k) {
      path(lo, lo + k);
      ranges.push([lo + k, hi]);
    } else {
      path(lo + k, hi);
      ranges.push([lo, lo + k]);
    }
  };
  path(0, n);
  return ranges;
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or null when
 * the proof has the wrong length for (m, n).
 */
export function rootFromInclusionProof(m, n, leaf, proof) {
  if (!(m >= 0 && m < n)) return null;
  let fn = m;
  let sn = n - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

export function verifyInclusion(m, n, leaf, proof, root) {
  const computed = rootFromInclusionProof(m, n, leaf, proof);
  return computed !== null && equal(computed, root);
}

/**
 * Reads the hashes of a tree of `size` leaves from its tiles.
 * `fetchTile(level, index, width)` returns the tile's bytes (at least
 * width hashes; a full tile may stand in for a partial one).
 */
export class TileTree {
  constructor(size, fetchTile, height = TILE_HEIGHT) {
    this.size = size;
    this.height = height;
    this.fetchTile = fetchTile;
    this.tiles = new Map();
  }

  /** The hashes of tile (level, index), as many as the tree has. */
  tile(level, index) {
    const perTile = 2 ** this.height;
    const stored = Math.floor(this.size / 2 ** (level * this.height));
    const width = Math.min(perTile, stored - index * perTile);
    if (width <= 0) throw new Error(`tile ${level}/${index} is beyond a tree of ${this.size}`);
    const key = `${level}/${index}`;
    if (!this.tiles.has(key)) {
      const promise = Promise.resolve(this.fetchTile(level, index, width)).then((bytes) => {
        if (bytes.length < width * HASH_SIZE || bytes.length % HASH_SIZE !== 0 || bytes.length > perTile * HASH_SIZE) {
          throw new TileError(`tile ${tilePath(level, index, width, this.height)} has ${bytes.length} bytes, not ${width} hashes`);
        }
        const hashes = [];
        for (let i = 0; i < width; i++) hashes.push(bytes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
        return hashes;
      });
      this.tiles.set(key, promise);
      promise.catch(() => this.tiles.delete(key));
    }
    return this.tiles.get(key);
  }

  /** The hash of the complete subtree of height `level` at position k. */
  async node(level, k) {
    if ((k + 1) * 2 ** level > this.size) throw new Error(`node ${level}/${k} is not complete in a tree of ${this.size}`);
    const tileLevel = Math.floor(level / this.height);
    const above = level - tileLevel * this.height;
    const span = 2 ** above;
    const first = k * span;
    const perTile = 2 ** this.height;
    const index = Math.floor(first / perTile);
    const hashes = (await this.tile(tileLevel, index)).slice(first - index * perTile, first - index * perTile + span);
    let row = hashes;
    while (row.length > 1) {
      const next = [];
      for (let i = 0; i < row.length; i += 2) next.push(nodeHash(row[i], row[i + 1]));
      row = next;
    }
    return row[0];
  }

  /** MTH(D[lo:hi]) (RFC 9162 §2.1.1), from the complete subtrees it is made of. */
  async rangeHash(lo, hi) {
    const n = hi - lo;
    if (n <= 0) throw new Error('empty range');
    const level = exactLog2(n);
    if (level !== null && lo % n === 0) return this.node(level, lo / n);
    const k = splitPoint(n);
    const [left, right] = await Promise.all([this.rangeHash(lo, lo + k), this.rangeHash(lo + k, hi)]);
    return nodeHash(left, right);
  }

  /** The inclusion proof of leaf m, its hashes read from the tiles. */
  inclusionProof(m) {
    return Promise.all(inclusionRanges(m, this.size).map(([lo, hi]) => this.rangeHash(lo, hi)));
  }

  /** The root of the whole tree, from the tiles. */
  root() {
    if (this.size === 0) return Promise.resolve(sha256(new Uint8Array(0)));
    return this.rangeHash(0, this.size);
  }
}

export class TileError extends Error {}
