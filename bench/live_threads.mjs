// The live webcam's frame rate on 1 and on every thread: Chromium's fake camera showing a photo
// (made with ffmpeg), SqueezeNet and GoogLeNet, the pages' thread counts alternating over a few
// rounds. Live mode paints every map of the selected layer each frame on the page's main thread
// while the worker runs the next pass, so on a machine with few cores the second kernel thread
// competes with that painting; this says whether it pays.
//   trunk build --release && node bench/live_threads.mjs [ROUNDS] [SECONDS]   (defaults 3, 6)
//   DIST=dir another build; DIST_B=dir a second one, alternating with it: an A/B of live fps.
import { createServer } from 'node:http';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { hostLine } from './host_cores.mjs';
import { runsDone } from '../tests/e2e/runs.mjs';
import { fakeCameraArgs } from '../tests/e2e/camera.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const require = createRequire(join(root, 'tools/package.json'));
const { chromium } = require('playwright-core');
const shared = resolve(root, '..', 'shared');
const [rounds = 3, seconds = 6] = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.png': 'image/png', '.json': 'application/json' };
// DIST=dir serves another build; with DIST_B=dir too, both builds alternate in every round.
const serve = async (dir) => {
  const server = createServer(async (req, res) => {
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path.endsWith('/')) path += 'index.html';
    try {
      const body = await readFile(join(dir, path));
      res.writeHead(200, { 'content-type': types[extname(path)] || 'application/octet-stream', 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return [server, `http://127.0.0.1:${server.address().port}/`];
};
const builds = [['', ...(await serve(process.env.DIST || join(root, 'dist')))]];
if (process.env.DIST_B) builds.push(['B', ...(await serve(process.env.DIST_B))]);
if (builds.length > 1) builds[0][0] = 'A';
const base = builds[0][2];
const camera = fakeCameraArgs(join(shared, 'images/chelsea.png'), join(await mkdtemp(join(tmpdir(), 'convlens-live-')), 'cat.y4m'));
console.log(`before: ${await hostLine()}`);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', ...camera],
});
const cores = await (async () => { const p = await browser.newPage(); await p.goto(base); const n = await p.evaluate(() => navigator.hardwareConcurrency); await p.close(); return n; })();

// One page live for `seconds`: its fps, and where a frame's time went.
async function live(threads, onnx, at) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${at}?model=squeezenet&backend=cpu&threads=${threads}`);
  await page.waitForSelector('[data-testid=layer-list] button', { timeout: 120000 });
  if (onnx) {
    await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'models', onnx));
    await page.waitForFunction((n) => document.querySelector('.model-line')?.innerText.includes(n), onnx.replace('.onnx', ''), { timeout: 120000 });
  }
  await page.locator('[data-testid=camera-start]').click();
  await page.waitForFunction(() => parseFloat(document.querySelector('.fps')?.innerText || '0') > 0, null, { timeout: 60000 });
  // Count frames over the window from the run counter, not the page's smoothed fps.
  await page.waitForTimeout(1000);
  const [r0, t0] = [await runsDone(page), Date.now()];
  await page.waitForTimeout(seconds * 1000);
  const fps = ((await runsDone(page)) - r0) / ((Date.now() - t0) / 1000);
  const stages = await page.locator('[data-testid=live-stages]').innerText();
  await page.close();
  return { fps, stages };
}

const results = new Map();
for (let round = 1; round <= rounds; round++) {
  for (const [model, onnx] of [['SqueezeNet 1.1', null], ['GoogLeNet graph', 'googlenet-synthetic.onnx']]) {
    const order = builds.flatMap(([name, , at]) => [1, cores].map((t) => [name, at, t]));
    for (const [name, at, t] of round % 2 ? order : order.reverse()) {
      const r = await live(t, onnx, at);
      const key = `${model}${name ? ` build ${name}` : ''}, ${t} thread${t > 1 ? 's' : ''}`;
      results.set(key, [...(results.get(key) || []), r.fps]);
      console.log(`round ${round} ${key}: ${r.fps.toFixed(1)} fps (${r.stages})`);
    }
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (const [key, v] of results) console.log(`${key}: median ${median(v).toFixed(1)} fps over ${v.length} rounds (${v.map((x) => x.toFixed(1)).join(' ')})`);
console.log(`after: ${await hostLine()}`);
await browser.close();
for (const [, server] of builds) server.close();
