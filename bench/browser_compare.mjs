// ConvLens (wasm SIMD on 1 and on every thread; and its WebGPU backend) vs onnxruntime-web (wasm
// on the same thread counts; and its WebGPU EP) on the same models, in the same headless
// Chromium, in one run, every page cross-origin isolated (COOP/COEP) so both may use threads.
// Each CPU pairing runs twice, alternating, so drift on a noisy machine shows.
//   trunk build --release && node bench/browser_compare.mjs [RUNS] [--cpu]   (--cpu: no WebGPU rows)
//   --gpu: only the WebGPU rows, ConvLens and onnxruntime-web alternating in two rounds.
//   --layers: instead, ConvLens alone on 1 and on every thread, each layer's median time from the
//   costs panel side by side (which layers gain from threads in the page, which do not).
//   --scaling: instead, ConvLens alone on 1 and on every thread, the pages' passes interleaved;
//   with DIST_B=dir, that build too (on a second origin), in the same interleaving: an A/B of the
//   speed-up. With --simd, the same for this build's two kernel builds on one origin: plain SIMD128
//   (?simd=plain) against relaxed SIMD (the default where the browser has it).
// Needs tools/node_modules/onnxruntime-web (npm install onnxruntime-web@1 in tools/).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { nextRun } from '../tests/e2e/runs.mjs';
import { hostLine } from './host_cores.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const require = createRequire(join(root, 'tools/package.json'));
const { chromium } = require('playwright-core');
const shared = resolve(root, '..', 'shared');
const runs = Number(process.argv.find((a) => /^\d+$/.test(a)) || 5);
const cpuOnly = process.argv.includes('--cpu');
const gpuOnly = process.argv.includes('--gpu');
const perLayer = process.argv.includes('--layers');
const simdAB = process.argv.includes('--simd');
const scaling = simdAB || process.argv.includes('--scaling');
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.png': 'image/png', '.json': 'application/json' };
const mounts = [
  ['/ortweb/ort/', join(root, 'tools/node_modules/onnxruntime-web/dist/')],
  ['/ortweb/models/', join(root, 'dist/models/')],
  ['/ortweb/', join(root, 'bench/ort-web/')],
  ['/', process.env.DIST || join(root, 'dist/')],
];
const serve = (mounts) => createServer(async (req, res) => {
  let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path.endsWith('/')) path += 'index.html';
  const [prefix, dir] = mounts.find(([p]) => path.startsWith(p));
  const file = join(dir, path.slice(prefix.length));
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream', ...isolation });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
// The host's state before and after: on a shared VM it decides whether 2 threads can scale.
console.log(`before: ${await hostLine()}`);
const listen = async (server) => {
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${server.address().port}/`;
};
const server = serve(mounts);
const base = await listen(server);
// A second build for --scaling's A/B, on its own origin (the builds' paths are absolute).
const serverB = process.env.DIST_B ? serve([['/', process.env.DIST_B]]) : null;
const baseB = serverB ? await listen(serverB) : null;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu', '--enable-features=Vulkan'],
});

const cores = await (async () => { const p = await browser.newPage(); await p.goto(base); const n = await p.evaluate(() => navigator.hardwareConcurrency); await p.close(); return n; })();
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];

async function ortWeb(model, ep, threads = 1, n = runs) {
  const page = await browser.newPage();
  await page.goto(`${base}ortweb/?model=models/${model}&ep=${ep}&runs=${n}&threads=${threads}`);
  await page.waitForSelector('#out[data-done]', { timeout: 600000 });
  const r = JSON.parse(await page.locator('#out').innerText());
  await page.close();
  return r;
}

// A ConvLens page at `url`, with `onnx` (from ../shared/models) dropped in if given; and its
// first load: page, wasm, worker, model fetch and import, until the layer list shows.
async function openConvlens(url, onnx) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('[data-testid=layer-list] button', { timeout: 120000 });
  const first_load_ms = Date.now() - t0;
  if (onnx) {
    await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'models', onnx));
    await page.waitForFunction((n) => document.querySelector('.model-line')?.innerText.includes(n), onnx.replace('.onnx', ''), { timeout: 120000 });
  }
  return { page, first_load_ms };
}

// `gpu`: wait until the worker has planned the model on WebGPU, and report its slowest layers
// as the costs panel shows them (timestamp queries).
async function convlens(query, onnx, gpu = false, n = runs, at = base) {
  const { page, first_load_ms } = await openConvlens(at + query, onnx);
  if (gpu) {
    await page.waitForFunction(() => /^WebGPU \(|unavailable|failed/.test(document.querySelector('[data-testid=backend-badge]')?.innerText || ''), null, { timeout: 300000 });
    const badge = await page.locator('[data-testid=backend-badge]').innerText();
    if (!badge.startsWith('WebGPU')) throw new Error(`no WebGPU: ${badge}`);
    // A pass that ran on the GPU (the first may have run on the CPU while it was being planned).
    await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/chelsea.png'));
    await page.waitForSelector('.model-line span[data-backend^="WebGPU"]', { timeout: 600000 });
  }
  const times = [];
  const layerTimes = new Map();
  // Each pass's time outside its layers (the pass less the sum of its layers' times).
  const outside = [];
  for (let i = 0; i <= n; i++) {
    // This image's pass, not the one before it.
    await nextRun(page, () => page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/chelsea.png')), 600000);
    await page.waitForTimeout(50);
    if (i > 0) times.push(Number(await page.locator('[data-testid=run-ms]').innerText())); // the first run warms up
    if (i > 0 && perLayer) {
      const rows = await page.locator('table.costs tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.cells[0].innerText, Number(tr.cells[tr.cells.length - 1].innerText) || 0]));
      for (const [l, ms] of rows) layerTimes.set(l, [...(layerTimes.get(l) || []), ms]);
      outside.push(times[times.length - 1] - rows.reduce((a, [, ms]) => a + ms, 0));
    }
  }
  const threads = await page.locator('[data-testid=threads]').innerText();
  let slowest;
  if (gpu) {
    const rows = await page.locator('table.costs tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.cells[0].innerText, Number(tr.cells[tr.cells.length - 1].innerText) || 0]));
    slowest = rows.sort((a, b) => b[1] - a[1]).slice(0, 5).map(([l, ms]) => `${l} ${ms} ms`).join(', ');
  }
  await page.close();
  times.sort((a, b) => a - b);
  const layers = perLayer ? new Map([...layerTimes].map(([l, v]) => [l, median(v)])) : undefined;
  return { median_ms: times[times.length >> 1], min_ms: times[0], runs: n, threads, first_load_ms, ...(slowest ? { slowest } : {}), ...(layers ? { layers, outside_ms: median(outside) } : {}) };
}

if (scaling) {
  // Every page stays open and their passes interleave (1 thread, N threads, for each build, again
  // and again), so each ratio compares passes a few hundred ms apart: this host's load drifts
  // by 2x within minutes, which page-after-page medians cannot separate from a change.
  const builds = simdAB ? [['plain SIMD128', base, '&simd=plain'], ['relaxed SIMD', base, '']] : baseB ? [['A', base, ''], ['B', baseB, '']] : [['', base, '']];
  const photo = join(shared, 'images/chelsea.png');
  const pass = async (page) => {
    await nextRun(page, () => page.locator('[data-testid=file-input]').setInputFiles(photo), 600000);
    // The pool's threads go back to sleep before the next page's pass starts (PAUSE_MS: longer,
    // so the page has painted the last pass's maps before the next one starts).
    await page.waitForTimeout(Number(process.env.PAUSE_MS || 50));
    // The pass's time, and what the kernel pool's counters say of it (the run time's tooltip;
    // NaN from a build without them).
    return page.locator('span[data-run]').evaluate((e) => ({
      ms: Number(e.querySelector('[data-testid=run-ms]').innerText),
      share: Number(e.dataset.helperShare),
      sleeps: Number(e.dataset.helperSleeps),
      waits: Number(e.dataset.callerSleeps),
    }));
  };
  for (const [model, query, onnx] of [['squeezenet1.1.onnx', '?model=squeezenet', null], ['googlenet-synthetic.onnx', '?model=squeezenet', 'googlenet-synthetic.onnx']]) {
    const pages = [];
    for (const [name, at, extra] of builds) {
      for (const t of [1, cores]) {
        const { page } = await openConvlens(`${at}${query}&backend=cpu&threads=${t}${extra}`, onnx);
        // Warm-up: one pass, or WARMUP (V8 tiers hot wasm functions up to its optimizing
        // compiler on background threads over a page's first tens of passes, taking a core).
        for (let w = 0; w < Number(process.env.WARMUP || 1); w++) await pass(page);
        pages.push({ name, t, page, passes: [] });
      }
    }
    for (let i = 0; i < runs; i++) for (const p of i % 2 ? [...pages].reverse() : pages) p.passes.push(await pass(p.page));
    for (const [name] of builds) {
      const [one, all] = [pages.find((p) => p.name === name && p.t === 1), pages.find((p) => p.name === name && p.t === cores)];
      const [ms1, msN] = [one.passes.map((p) => p.ms), all.passes.map((p) => p.ms)];
      const pairs = ms1.map((m, i) => m / msN[i]);
      console.log(`${model}${name ? ` build ${name}` : ''} (${await one.page.locator('[data-testid=simd]').innerText().catch(() => '?')}): 1 thread ${median(ms1)} ms, ${cores} threads ${median(msN)} ms (medians of ${runs}, interleaved): 1 -> ${cores} threads ${(median(ms1) / median(msN)).toFixed(2)}x; median of the ${runs} pairs' ratios ${median(pairs).toFixed(2)}x`);
      // Whether the slow threaded passes are the ones whose helpers got little done or slept.
      if (all.passes.some((p) => !Number.isNaN(p.share))) {
        const sorted = [...all.passes].sort((a, b) => a.ms - b.ms);
        const [fast, slow] = [sorted.slice(0, sorted.length >> 1), sorted.slice(sorted.length >> 1)];
        const mean = (v, k) => (v.reduce((a, p) => a + p[k], 0) / v.length).toFixed(k === 'share' ? 3 : 1);
        console.log(`  ${cores} threads, the quicker half of the passes (${fast[0].ms}-${fast[fast.length - 1].ms} ms): helpers' share ${mean(fast, 'share')}, helper sleeps ${mean(fast, 'sleeps')}, caller waits ${mean(fast, 'waits')} a pass; the slower half (${slow[0].ms}-${slow[slow.length - 1].ms} ms): ${mean(slow, 'share')}, ${mean(slow, 'sleeps')}, ${mean(slow, 'waits')}`);
      }
    }
    for (const p of pages) await p.page.close();
  }
  console.log(`after: ${await hostLine()}`);
  await browser.close();
  server.close();
  serverB?.close();
  process.exit(0);
}
if (perLayer) {
  for (const [model, query, onnx] of [['squeezenet1.1.onnx', '?model=squeezenet', null], ['googlenet-synthetic.onnx', '?model=squeezenet', 'googlenet-synthetic.onnx']]) {
    const one = await convlens(`${query}&backend=cpu&threads=1`, onnx);
    const all = await convlens(`${query}&backend=cpu&threads=${cores}`, onnx);
    console.log(`${model}: pass ${one.median_ms} ms on 1 thread, ${all.median_ms} ms on ${cores} (${(one.median_ms / all.median_ms).toFixed(2)}x); layers over 0.2 ms, median of ${runs}:`);
    let [s1, sN] = [0, 0];
    for (const [l, t1] of one.layers) {
      const tN = all.layers.get(l) ?? 0;
      s1 += t1;
      sN += tN;
      if (t1 >= 0.2) console.log(`  ${l.padEnd(36)} ${t1.toFixed(2).padStart(7)} ${tN.toFixed(2).padStart(7)}  ${tN > 0 ? (t1 / tN).toFixed(2) : '-'}x`);
    }
    console.log(`  ${'sum of layers'.padEnd(36)} ${s1.toFixed(2).padStart(7)} ${sN.toFixed(2).padStart(7)}  ${(s1 / sN).toFixed(2)}x`);
    // Time no layer holds (between layers: the worker's own work, waiting for helpers), per pass.
    console.log(`  ${'outside the layers, median a pass'.padEnd(36)} ${one.outside_ms.toFixed(2).padStart(7)} ${all.outside_ms.toFixed(2).padStart(7)}`);
  }
  console.log(`after: ${await hostLine()}`);
  await browser.close();
  server.close();
  process.exit(0);
}
const rows = [];
for (const [model, query, onnx] of [['squeezenet1.1.onnx', '?model=squeezenet', null], ['googlenet-synthetic.onnx', '?model=squeezenet', 'googlenet-synthetic.onnx']]) {
  for (const round of gpuOnly ? [] : [1, 2]) {
    for (const t of [...new Set([1, cores])]) {
      rows.push({ model, round, engine: `ConvLens wasm SIMD (${t} thread${t > 1 ? 's' : ''})`, ...(await convlens(`${query}&backend=cpu&threads=${t}`, onnx)) });
      rows.push({ model, round, engine: `onnxruntime-web wasm (${t} thread${t > 1 ? 's' : ''})`, ...(await ortWeb(model, 'wasm', t)) });
    }
  }
  if (cpuOnly) continue;
  // SwiftShader runs WebGPU on the CPU: seconds per pass, so fewer runs.
  for (const round of gpuOnly ? [1, 2] : [1]) {
    rows.push({ model, round, engine: 'ConvLens WebGPU (wgpu)', ...(await convlens(`${query}&backend=webgpu`, onnx, true, Math.min(runs, 3))) });
    rows.push({ model, round, engine: 'onnxruntime-web webgpu', ...(await ortWeb(model, 'webgpu', 1, Math.min(runs, 3))) });
  }
}
console.log(`Chromium ${browser.version()}, ${cores} cores, ${runs} runs each after one warm-up`);
console.log(`after: ${await hostLine()}`);
for (const r of rows) console.log(JSON.stringify(r));
// The issue's ratios, per model and round: ConvLens over onnxruntime-web at each thread count,
// and ConvLens's own 1 -> N thread speed-up (medians; minima in brackets).
const pick = (model, round, engine) => rows.find((r) => r.model.endsWith(model) && r.round === round && r.engine.startsWith(engine));
for (const model of [...new Set(rows.map((r) => r.model.replace(/^models\//, '')))]) {
  for (const round of [...new Set(rows.filter((r) => r.model.endsWith(model)).map((r) => r.round))]) {
    const parts = [];
    for (const t of [...new Set([1, cores])]) {
      const [ours, ort] = [pick(model, round, `ConvLens wasm SIMD (${t} thread`), pick(model, round, `onnxruntime-web wasm (${t} thread`)];
      if (ours && ort) parts.push(`${t} thread${t > 1 ? 's' : ''}: ${(ours.median_ms / ort.median_ms).toFixed(2)}x onnxruntime-web`);
    }
    const [one, all] = [pick(model, round, 'ConvLens wasm SIMD (1 thread'), pick(model, round, `ConvLens wasm SIMD (${cores} threads`)];
    if (one && all && cores > 1) parts.push(`ConvLens 1 -> ${cores} threads ${(one.median_ms / all.median_ms).toFixed(2)}x (${(one.min_ms / all.min_ms).toFixed(2)}x)`);
    const [gpu, ortGpu] = [pick(model, round, 'ConvLens WebGPU'), pick(model, round, 'onnxruntime-web webgpu')];
    if (gpu && ortGpu) parts.push(`WebGPU ${(gpu.median_ms / ortGpu.median_ms).toFixed(2)}x onnxruntime-web's EP`);
    if (parts.length) console.log(`${model}, round ${round}: ${parts.join('; ')}`);
  }
}
await browser.close();
server.close();
