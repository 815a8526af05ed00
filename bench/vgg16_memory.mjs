// VGG16 in a browser tab: the summed RSS of Chromium's processes (page, worker, GPU, browser)
// sampled while a 553 MB VGG16 (tests/reference/make_refs.py's seeded one, the zoo's layout)
// loads through ?weights= and classifies one photo on the CPU path. Prints the baseline, the
// peak, the peak over the weight bytes, and the load and pass times.
//   node bench/vgg16_memory.mjs [MODEL.onnx] [--threads N] [--backend cpu|cpu-f16]
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { measureTabMemory, probeSwitch } from '../tests/e2e/memory.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const require = createRequire(join(root, 'tools/package.json'));
const { chromium } = require('playwright-core');
const args = process.argv.slice(2);
const threads = args.includes('--threads') ? args[args.indexOf('--threads') + 1] : '1';
const backend = args.includes('--backend') ? args[args.indexOf('--backend') + 1] : 'cpu';
const model = args.find((a) => a.endsWith('.onnx')) || join(root, 'target/refs/vgg16-seeded.onnx');
const photo = resolve(root, '../shared/images/chelsea.png');

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const file = path === '/big/model.onnx' ? model : join(root, 'dist', path.endsWith('/') ? path + 'index.html' : path);
  try {
    const st = await stat(file);
    res.writeHead(200, {
      'content-type': types[file.slice(file.lastIndexOf('.'))] || 'application/octet-stream',
      'content-length': st.size,
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    createReadStream(file).pipe(res);
  } catch {
    res.writeHead(404).end('not found');
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', probeSwitch],
});
const bytes = (await stat(model)).size;
const m = await measureTabMemory(browser, `${base}?model=vgg16&backend=${backend}&threads=${threads}&weights=big/model.onnx`, photo);
const mb = (b) => (b / 1e6).toFixed(0);
console.log(`weights ${mb(bytes)} MB; Chromium summed RSS: before ${mb(m.before)} MB, peak ${mb(m.peak)} MB (${(m.peak / bytes).toFixed(2)}x the weights; ${((m.peak - m.before) / bytes).toFixed(2)}x above the empty browser), after ${mb(m.after)} MB`);
console.log(`${m.badge}\nload ${(m.loadMs / 1000).toFixed(1)} s, first pass shown ${(m.runMs / 1000).toFixed(1)} s after load, run-ms ${m.passMs}`);
await browser.close();
server.close();
