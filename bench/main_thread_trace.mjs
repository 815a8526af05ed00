// Where the page's main thread spends a pass: a Chrome trace (CDP Tracing) over N passes of the
// CPU path, the renderer main thread's top-level events summed by name, per pass. On a machine
// with few cores this is the time the page takes from the worker's kernel threads.
//   trunk build --release && node bench/main_thread_trace.mjs [PASSES] [QUERY]
//   (QUERY default: ?model=squeezenet&backend=cpu&threads=2)
//   TRACE_TASKS=1: what the main thread ran inside each long worker task; TRACE_DETAIL=1: every
//   main-thread event overlapping the first four of them, in order, with its offset.
//   TRACE_THREADS=1: every thread's busy time inside them (compositor, GPU process, ...).
//   TRACE_INCLUSIVE=1: the app's Rust functions by inclusive sampled time (build the app with
//   data-keep-debug and data-wasm-opt="0" for names); DIST=dir serves another build;
//   TRACE_WARMUP=N passes before tracing (default 3); TRACE_CATEGORIES=v8,v8.wasm,... adds categories;
//   TRACE_LIVE=1 traces N frames of the live webcam (a fake camera showing the photo) instead.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { nextRun, runsDone, waitForRuns } from '../tests/e2e/runs.mjs';
import { fakeCameraArgs } from '../tests/e2e/camera.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const require = createRequire(join(root, 'tools/package.json'));
const { chromium } = require('playwright-core');
const shared = resolve(root, '..', 'shared');
const passes = Number(process.argv.find((a) => /^\d+$/.test(a)) || 10);
const query = process.argv.find((a) => a.startsWith('?')) || '?model=squeezenet&backend=cpu&threads=2';
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.png': 'image/png', '.json': 'application/json' };
const server = createServer(async (req, res) => {
  let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path.endsWith('/')) path += 'index.html';
  try {
    const body = await readFile(join(process.env.DIST || join(root, 'dist'), path));
    res.writeHead(200, { 'content-type': types[extname(path)] || 'application/octet-stream', 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;
// TRACE_LIVE=1: the live webcam instead of photos (Chromium's fake camera showing the photo,
// made with ffmpeg); PASSES frames are traced.
const liveMode = Boolean(process.env.TRACE_LIVE);
const cameraArgs = liveMode ? fakeCameraArgs(join(shared, 'images/chelsea.png'), join(tmpdir(), `convlens-trace-${process.pid}.y4m`)) : [];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', ...cameraArgs] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(base + query);
await page.waitForSelector('[data-testid=layer-list] button', { timeout: 120000 });
const photo = join(shared, 'images/chelsea.png');
for (let i = 0; i < Number(process.env.TRACE_WARMUP || 3); i++) await nextRun(page, () => page.locator('[data-testid=file-input]').setInputFiles(photo), 120000);
if (liveMode) {
  await page.locator('[data-testid=camera-start]').click();
  await page.waitForFunction(() => parseFloat(document.querySelector('.fps')?.innerText || '0') > 0, null, { timeout: 60000 });
  await page.waitForTimeout(2000);
}
const cdp = await page.context().newCDPSession(page);
const events = [];
cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
const done = new Promise((ok) => cdp.once('Tracing.tracingComplete', ok));
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
await cdp.send('Profiler.start');
await cdp.send('Tracing.start', { categories: ['devtools.timeline,disabled-by-default-devtools.timeline,toplevel', process.env.TRACE_CATEGORIES].filter(Boolean).join(','), transferMode: 'ReportEvents' });
const ms = [];
if (liveMode) {
  await waitForRuns(page, (await runsDone(page)) + passes);
  ms.push(Number(await page.locator('[data-testid=run-ms]').innerText()));
  console.log(`live: ${await page.locator('.fps').innerText()} · ${await page.locator('[data-testid=live-stages]').innerText()}`);
} else {
  for (let i = 0; i < passes; i++) {
    await nextRun(page, () => page.locator('[data-testid=file-input]').setInputFiles(photo), 120000);
    await page.waitForTimeout(100);
    ms.push(Number(await page.locator('[data-testid=run-ms]').innerText()));
  }
}
await cdp.send('Tracing.end');
await done;
const { profile } = await cdp.send('Profiler.stop');
const main = events.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain' && events.some((x) => x.pid === e.pid && x.name === 'ParseHTML'))
  || events.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
const top = events.filter((e) => e.pid === main.pid && e.tid === main.tid && e.ph === 'X' && e.dur);
// Self time by event name (an event's span less its children's), and the busy time (top-level
// spans), from the nesting of complete events on that thread.
top.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
const sums = new Map();
const stack = [];
let busy = 0;
const name = (e) => (e.name === 'FunctionCall' || e.name === 'EventDispatch' || e.name === 'TimerFire') && e.args?.data?.type ? `${e.name} ${e.args.data.type}` : e.name;
const close = (upTo) => {
  while (stack.length && stack[stack.length - 1].end <= upTo) {
    const f = stack.pop();
    sums.set(f.key, (sums.get(f.key) || 0) + f.self);
  }
};
for (const e of top) {
  close(e.ts);
  if (stack.length) stack[stack.length - 1].self -= e.dur;
  else busy += e.dur;
  stack.push({ key: name(e), end: e.ts + e.dur, self: e.dur });
}
close(Infinity);
// The passes themselves: the worker thread whose long tasks (over 5 ms) add up to the most,
// and how much of the main thread's work falls inside them (there it takes a core from the
// kernels' threads; outside, it only delays the next pass).
const workers = events.filter((e) => e.name === 'thread_name' && e.pid === main.pid && /Worker/.test(e.args?.name || ''));
// Outermost events only: a task's nested calls would count its time twice.
const outermost = (evs) => {
  const out = [];
  let end = -Infinity;
  for (const e of [...evs].sort((a, b) => a.ts - b.ts || b.dur - a.dur)) {
    if (e.ts >= end) {
      out.push(e);
      end = e.ts + e.dur;
    }
  }
  return out;
};
const longTasks = (w) => outermost(events.filter((e) => e.pid === w.pid && e.tid === w.tid && e.ph === 'X' && e.dur)).filter((e) => e.dur > 5000);
const sum = (v) => v.reduce((a, e) => a + e.dur, 0);
const passThread = workers.map((w) => longTasks(w)).sort((a, b) => sum(b) - sum(a))[0] || [];
const windows = passThread.map((e) => [e.ts, e.ts + e.dur]);
let during = 0;
for (const e of outermost(top)) for (const [a, b] of windows) during += Math.max(0, Math.min(b, e.ts + e.dur) - Math.max(a, e.ts));
ms.sort((a, b) => a - b);
console.log(`${query}: ${passes} passes, run-ms median ${ms[ms.length >> 1]}; the page's main thread busy ${(busy / 1000 / passes).toFixed(1)} ms a pass, ${(during / 1000 / passes).toFixed(1)} ms of it while the worker's pass ran (${windows.length} long worker tasks, ${(sum(passThread) / 1000 / Math.max(1, windows.length)).toFixed(1)} ms each):`);
for (const [k, v] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${k.padEnd(40)} ${(v / 1000 / passes).toFixed(1)} ms`);
if (process.env.TRACE_TASKS) {
  // Each long worker task and what the main thread ran inside it (outermost events by name).
  for (const [a, b] of windows) {
    // Self time of the main thread's events that start inside the task, by name.
    const inside = new Map();
    const st = [];
    const pop = (upTo) => {
      while (st.length && st[st.length - 1].end <= upTo) {
        const f = st.pop();
        if (f.ts >= a && f.ts < b) inside.set(f.key, (inside.get(f.key) || 0) + f.self);
      }
    };
    for (const e of top) {
      pop(e.ts);
      if (st.length) st[st.length - 1].self -= e.dur;
      const key = e.name === 'FunctionCall' ? `FunctionCall ${e.args?.data?.functionName || ''}` : name(e);
      st.push({ key, ts: e.ts, end: e.ts + e.dur, self: e.dur });
    }
    pop(Infinity);
    console.log(`  worker task at ${((a - windows[0][0]) / 1000).toFixed(0)} ms, ${((b - a) / 1000).toFixed(1)} ms: main ${[...inside].sort((x, y) => y[1] - x[1]).slice(0, 6).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', ')}`);
  }
}
if (process.env.TRACE_THREADS) {
  // Every thread of every process, busy inside the worker's long tasks (top-level spans only):
  // on two cores, what else takes them from the kernels besides the page's main thread.
  const names = new Map(events.filter((e) => e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args?.name]));
  const byThread = new Map();
  for (const e of events) if (e.ph === 'X' && e.dur) (byThread.get(`${e.pid}:${e.tid}`) || byThread.set(`${e.pid}:${e.tid}`, []).get(`${e.pid}:${e.tid}`)).push(e);
  // A pass is two long tasks: the Run (preprocess and forward), then the maps (tiles).
  const rows = [];
  for (const [key, evs] of byThread) {
    const inside = [0, 0];
    // What it ran inside the Run tasks, by the outermost event's name.
    const what = new Map();
    for (const e of outermost(evs)) {
      windows.forEach(([a, b], i) => (inside[i % 2] += Math.max(0, Math.min(b, e.ts + e.dur) - Math.max(a, e.ts))));
    }
    // Named by what runs inside the scheduler's wrappers (nested spans count in each).
    for (const e of evs) {
      if (/RunTask$|^EpollEvent$/.test(e.name)) continue;
      windows.forEach(([a, b], i) => {
        const t = Math.max(0, Math.min(b, e.ts + e.dur) - Math.max(a, e.ts));
        if (i % 2 === 0 && t) what.set(e.name, (what.get(e.name) || 0) + t);
      });
    }
    rows.push([`${names.get(key) || '?'} (${key})`, inside, what]);
  }
  console.log('busy inside the worker tasks, by thread (ms a pass): in the Run tasks, in the maps tasks; the Run tasks\' part by event inside the scheduler\'s tasks');
  for (const [k, v, what] of rows.sort((a, b) => b[1][0] - a[1][0]).slice(0, 14)) {
    const top3 = [...what].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([n, t]) => `${n} ${(t / 1000 / passes).toFixed(2)}`).join(', ');
    console.log(`  ${k.padEnd(50)} ${(v[0] / 1000 / passes).toFixed(2)} ${(v[1] / 1000 / passes).toFixed(2)}  ${top3}`);
  }
}
if (process.env.TRACE_DETAIL) {
  // Every main-thread event (any depth) that overlaps the first few passes, in order.
  for (const [a, b] of windows.slice(0, 4)) {
    console.log(`  -- worker task ${((b - a) / 1000).toFixed(1)} ms`);
    for (const e of top.filter((e) => e.ts + e.dur > a && e.ts < b && e.dur > 100)) {
      const d = e.args?.data || {};
      console.log(`    +${((e.ts - a) / 1000).toFixed(2)} ${(e.dur / 1000).toFixed(2)} ms ${e.name} ${d.functionName || d.type || d.url?.split('/').pop() || ''} ${d.scriptName?.split('/').pop() || ''}`);
    }
  }
}
// The JS and wasm behind FunctionCall: sampled self time by function.
const selfUs = new Map();
const dt = new Map();
profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) || 0) + (profile.timeDeltas[i + 1] || 0)));
for (const n of profile.nodes) {
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() : ''}`;
  if (['(idle)', '(program)', '(root)'].includes(f.functionName)) continue;
  selfUs.set(key, (selfUs.get(key) || 0) + (dt.get(n.id) || 0));
}
console.log('sampled JS/wasm self time a pass:');
for (const [k, v] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${k.slice(0, 70).padEnd(70)} ${(v / 1000 / passes).toFixed(2)} ms`);
if (process.env.TRACE_INCLUSIVE) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const incl = new Map();
  for (const n of profile.nodes) {
    const self = dt.get(n.id) || 0;
    const seen = new Set();
    for (let id = n.id; self && id !== undefined; id = parent.get(id)) {
      const key = byId.get(id).callFrame.functionName.replace(/::h[0-9a-f]{16}$/, '').slice(0, 110);
      if (!seen.has(key)) incl.set(key, (incl.get(key) || 0) + self);
      seen.add(key);
    }
  }
  console.log('inclusive sampled time a pass, the app and Yew:');
  for (const [k, v] of [...incl].filter(([k]) => /convlens|yew::html::component::lifecycle|^real$|gloo/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${k.padEnd(110)} ${(v / 1000 / passes).toFixed(2)} ms`);
}
await browser.close();
server.close();
