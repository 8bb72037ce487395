// Builds dist/ (index.html, explorer.js, explorer.css): the files the
// sequencer embeds and publishes under explorer/. The output is committed
// and must be reproducible byte for byte from package-lock.json
// (tests/tests/explorer.rs checks it), so nothing here depends on the
// time, the machine or the path.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';

const options = {
  bundle: true,
  minify: true,
  target: ['es2020'],
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
  absWorkingDir: import.meta.dirname,
};

await mkdir('dist', { recursive: true });
await build({ ...options, entryPoints: ['src/main.js'], outfile: 'dist/explorer.js', format: 'iife' });
await build({ ...options, entryPoints: ['src/style.css'], outfile: 'dist/explorer.css' });
await copyFile('src/index.html', 'dist/index.html');
