// Trunk's post_build hook (Trunk.toml): a Content-Security-Policy for the page, as a <meta> in
// dist/index.html. Scripts: this origin's files and the inline ones Trunk and index.html put in
// the page, by their sha256 (computed here, so nothing inline can run that was not built);
// wasm compiled from this origin ('wasm-unsafe-eval'); no plugins, no <base>, no forms sent.
// Connections from the page: this origin, blob:/data: (photos and models the user opens) and
// the hosts a catalogue may name (any https host, and a lab's mirror on this machine); the
// worker fetches model files itself. CONVLENS_CSP_CONNECT adds origins (space-separated).
//   TRUNK_STAGING_DIR=dist node scripts/csp.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const dir = process.env.TRUNK_STAGING_DIR;
if (!dir) throw new Error('set TRUNK_STAGING_DIR (Trunk sets it for its hooks)');
const file = join(dir, 'index.html');
let html = readFileSync(file, 'utf8').replace(/\s*<meta http-equiv="Content-Security-Policy"[^>]*>/, '');
const hashes = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(
  (m) => `'sha256-${createHash('sha256').update(m[1], 'utf8').digest('base64')}'`,
);
const connect = ["'self'", 'blob:', 'data:', 'https:', 'http://127.0.0.1:*', 'http://localhost:*', ...(process.env.CONVLENS_CSP_CONNECT || '').split(/\s+/).filter(Boolean)];
const policy = [
  "default-src 'self'",
  `script-src 'self' 'wasm-unsafe-eval' ${hashes.join(' ')}`,
  "worker-src 'self' blob:",
  `connect-src ${connect.join(' ')}`,
  "img-src 'self' blob: data:",
  "media-src 'self' blob: mediastream:",
  // Yew sets style attributes (tile colours, patch positions).
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');
html = html.replace(/(<meta charset="utf-8"\s*\/?>)/, `$1\n    <meta http-equiv="Content-Security-Policy" content="${policy}" />`);
if (!html.includes('Content-Security-Policy')) throw new Error('index.html has no <meta charset> to put the policy after');
writeFileSync(file, html);
console.log(`csp.mjs: ${hashes.length} inline script(s) allowed by hash`);
