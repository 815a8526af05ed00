// End to end in Debian's Chromium, driven by playwright-core: the built app (dist/) served
// on localhost, the real SqueezeNet weights, the zoo GoogLeNet graph, a fake webcam.
// Run by scripts/test.sh after `trunk build --release`. Screenshots go to artifacts/.
//   node tests/e2e/app.e2e.mjs
import { createServer } from 'node:http';
import { readFile, mkdir, writeFile, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const root = resolve(new URL('../..', import.meta.url).pathname);
const require = createRequire(join(root, 'tools/package.json'));
const { chromium } = require('playwright-core');
const dist = join(root, 'dist');
// The same app built with `--features crash-test` (a message that panics the worker), under /crash/.
const distCrash = join(root, 'dist-crash');
const shared = resolve(root, '..', 'shared');
const artifacts = join(root, 'artifacts');
await mkdir(artifacts, { recursive: true });

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.png': 'image/png', '.onnx': 'application/octet-stream', '.txt': 'text/plain' };
const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const [folder, rel] = path.startsWith('/crash/') ? [distCrash, path.slice('/crash'.length)] : [dist, path];
  const file = join(folder, rel.endsWith('/') ? rel + 'index.html' : rel);
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  } catch {
    res.writeHead(404).end('not found');
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const baseArgs = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
const results = {};
let failures = 0;

// E2E_ONLY=substring runs just the matching checks (for debugging one).
async function check(name, fn) {
  if (process.env.E2E_ONLY && !name.includes(process.env.E2E_ONLY)) return;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

// Chromium occasionally dies with SIGSEGV while starting on this VM (seen once in CI, before any
// page loaded): one more launch, so that is not reported as an app failure.
async function launch(args) {
  try {
    return await chromium.launch({ executablePath: '/usr/bin/chromium', args });
  } catch (e) {
    console.log(`chromium failed to start (${String(e).split('\n')[0]}); launching again`);
    return await chromium.launch({ executablePath: '/usr/bin/chromium', args });
  }
}

async function openApp(browser, query) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(base + query);
  page.jsErrors = errors;
  return page;
}

async function lastRunMs(page) {
  const text = await page.locator('.model-line').innerText();
  const m = text.match(/last run (\d+) ms/);
  return m ? Number(m[1]) : null;
}

async function waitForRun(page, timeout = 120000) {
  await page.waitForFunction(() => document.querySelector('.model-line')?.innerText.includes('last run'), null, { timeout });
}

// The native CLI's answer for the same photo and weights: the independent expectation.
const cli = join(root, 'target/release/convlens');
const nativeTop1 = JSON.parse(execFileSync(cli, ['classify', '--json', '--model', 'squeezenet', join(shared, 'images/chelsea.png')], {
  env: { ...process.env, CONVLENS_MODELS: join(shared, 'models'), CONVLENS_OFFLINE: '1' },
}).toString()).top[0].label;

const browser = await launch(baseArgs);

await check('SqueezeNet on chelsea.png gives the native top-1', async () => {
  const page = await openApp(browser, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button', { timeout: 60000 });
  await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/chelsea.png'));
  await waitForRun(page);
  await page.waitForSelector('[data-testid=top5] li');
  const first = await page.locator('[data-testid=top5] li .label').first().innerText();
  assert.equal(first, nativeTop1);
  const badge = await page.locator('[data-testid=backend-badge]').innerText();
  assert.match(badge, /CPU SIMD \(wasm simd128/);
  // Time per inference in this browser: median of a few runs of the same photo.
  const times = [];
  for (let i = 0; i < 5; i++) {
    await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/chelsea.png'));
    await page.waitForFunction(() => !document.querySelector('progress'), null, { timeout: 60000 });
    await waitForRun(page);
    times.push(await lastRunMs(page));
  }
  times.sort((a, b) => a - b);
  results.squeezenet_ms = times[2];
  await page.screenshot({ path: join(artifacts, 'squeezenet-chelsea.png'), fullPage: false });
  assert.deepEqual(page.jsErrors, []);
  await page.close();
});

// Photos the repository never held, made here from the shared ones at sizes and shapes up to
// 4000 px, JPEG and PNG: the app must answer as the CLI does (same decoder orientation, same
// resize filter, same crop), top-1 equal and top-5 probabilities within PHOTO_PROB_TOL.
const PHOTO_PROB_TOL = 1e-2;
await check('photos of many sizes and shapes: the app answers as the CLI does', async () => {
  const dir = join(artifacts, 'photos');
  await mkdir(dir, { recursive: true });
  const cases = [
    ['red_panda.jpg', 4000, 2667, 'jpg'], ['chelsea.png', 1200, 800, 'png'], ['coffee.png', 640, 427, 'jpg'],
    ['motorcycle_left.png', 900, 1400, 'png'], ['red_panda.jpg', 333, 500, 'jpg'], ['chelsea.png', 3000, 4000, 'jpg'],
    ['coffee.png', 150, 100, 'png'],
  ];
  const files = cases.map(([src, w, h, ext], i) => {
    const out = join(dir, `photo${i}_${w}x${h}.${ext}`);
    execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-i', join(shared, 'images', src), '-vf', `scale=${w}:${h}`, '-q:v', '3', out]);
    return out;
  });
  const native = execFileSync(cli, ['classify', '--json', '--model', 'squeezenet', ...files], {
    env: { ...process.env, CONVLENS_MODELS: join(shared, 'models'), CONVLENS_OFFLINE: '1' },
  }).toString().trim().split('\n').map((l) => JSON.parse(l));
  const page = await openApp(browser, '?model=squeezenet&backend=cpu');
  await page.waitForSelector('[data-testid=layer-list] button', { timeout: 60000 });
  await waitForRun(page); // the sample photo the app opens on
  const runs = () => page.evaluate(() => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0));
  let worst = 0;
  for (const [i, file] of files.entries()) {
    const before = await runs();
    await page.locator('[data-testid=file-input]').setInputFiles(file);
    await page.waitForFunction((k) => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0) > k, before, { timeout: 120000 });
    const app = await page.locator('[data-testid=top5] li').evaluateAll((lis) => lis.map((li) => [Number(li.dataset.class), Number(li.dataset.prob)]));
    const want = native[i].top.map((t) => [t.index, t.prob]);
    assert.equal(app[0][0], want[0][0], `${file}: app top-1 ${app[0][0]}, CLI ${want[0][0]} (${native[i].top[0].label})`);
    for (const [cls, p] of want) {
      const got = app.find(([c]) => c === cls);
      if (got) worst = Math.max(worst, Math.abs(got[1] - p));
      if (got) assert.ok(Math.abs(got[1] - p) <= PHOTO_PROB_TOL, `${file}: class ${cls} app ${got[1]} CLI ${p}`);
      else assert.ok(p <= PHOTO_PROB_TOL + app[app.length - 1][1], `${file}: CLI's class ${cls} (${p}) missing from the app's top-5`);
    }
  }
  console.log(`     ${files.length} photos, worst top-5 probability difference app vs CLI: ${worst.toExponential(2)}`);
  assert.deepEqual(page.jsErrors, []);
  await page.close();
});

// Two photos dropped 100 ms apart: the first's answer may show while the second runs, but dimmed
// (data-stale), never as the current one; then the second's answer, current.
await check('two photos dropped 100 ms apart: the second answers, nothing older is shown as current', async () => {
  const [a, b] = [join(shared, 'images/coffee.png'), join(shared, 'images/red_panda.jpg')];
  const [topA, topB] = execFileSync(cli, ['classify', '--json', '--model', 'squeezenet', a, b], {
    env: { ...process.env, CONVLENS_MODELS: join(shared, 'models'), CONVLENS_OFFLINE: '1' },
  }).toString().trim().split('\n').map((l) => JSON.parse(l).top[0].label);
  assert.notEqual(topA, topB);
  const page = await openApp(browser, '?model=squeezenet&backend=cpu');
  await page.waitForSelector('[data-testid=layer-list] button', { timeout: 60000 });
  await waitForRun(page);
  await page.locator('[data-testid=file-input]').setInputFiles(a);
  await page.waitForTimeout(100);
  await page.locator('[data-testid=file-input]').setInputFiles(b);
  // Watch the panel in the page until the second photo's answer is the current one.
  const seen = await page.evaluate(async ([topA, topB]) => {
    const states = [];
    const t0 = performance.now();
    while (performance.now() - t0 < 60000) {
      const panel = document.querySelector('.top5-panel');
      const label = panel?.querySelector('[data-testid=top5] li .label')?.innerText;
      const stale = panel?.dataset.stale;
      states.push([label, stale]);
      if (label === topB && stale === 'false') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    return states;
  }, [topA, topB]);
  const last = seen[seen.length - 1];
  assert.deepEqual(last, [topB, 'false'], `never settled on ${topB}: ${JSON.stringify(last)}`);
  const shownAsCurrent = seen.filter(([label, stale]) => label === topA && stale === 'false');
  assert.equal(shownAsCurrent.length, 0, `${topA} (the first photo) was shown as current`);
  assert.equal(await page.locator('progress').count(), 0, 'progress gone once the newest answered');
  assert.deepEqual(page.jsErrors, []);
  await page.close();
});

await check('selecting a layer shows one tile per channel', async () => {
  const page = await openApp(browser, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button');
  await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/coffee.png'));
  await waitForRun(page);
  const layer = page.locator('[data-testid=layer-list] button.layer').nth(3);
  const dims = await layer.locator('.dims').innerText(); // e.g. "128x55x55"
  const index = Number(await layer.getAttribute('data-layer'));
  await layer.click();
  const channels = Number(dims.split('x')[0]);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=feature-grid] canvas').length === n, channels, { timeout: 30000 });
  // Keyboard walks the layers.
  await page.locator('.app').press('ArrowDown');
  await page.waitForFunction((i) => document.querySelector('button.layer.selected')?.dataset.layer === String(i), index + 1);
  await page.locator('[data-testid=feature-grid] canvas').first().hover();
  assert.match(await page.locator('.hover-readout').innerText(), /channel \d+ at/);
  await page.screenshot({ path: join(artifacts, 'feature-grid.png') });
  await page.close();
});

await check('convs before their ReLU: the pre-activation is its own layer, with negative values', async () => {
  const page = await openApp(browser, '?model=squeezenet&backend=cpu');
  await page.waitForSelector('[data-testid=layer-list] button', { timeout: 60000 });
  await waitForRun(page);
  // The costs table lists every layer: its second column is the op.
  const ops = () => page.locator('table.costs tbody tr td:nth-child(2)').allInnerTexts();
  const fused = (await ops()).filter((o) => o.endsWith('+Relu')).length;
  assert.ok(fused >= 20, `${fused} fused convs`);
  const before = await page.evaluate(() => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0));
  await page.locator('[data-testid=split-relus]').check();
  await page.waitForFunction((k) => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0) > k, before, { timeout: 60000 });
  const split = await ops();
  assert.equal(split.filter((o) => o === 'Relu').length, fused);
  assert.ok(split.every((o) => !o.endsWith('+Relu')));
  // The first conv, before its ReLU: some channel goes below zero (after it, none can).
  await page.locator('table.costs tbody tr', { has: page.locator('td:nth-child(2)', { hasText: /^Conv$/ }) }).first().click();
  await page.waitForSelector('[data-testid=feature-grid] canvas');
  const mins = await page.locator('[data-testid=feature-grid] canvas').evaluateAll((cs) => cs.map((c) => Number(c.title.match(/mean [-\d.]+, ([-\d.]+)\.\./)[1])));
  assert.ok(Math.min(...mins) < 0, `pre-ReLU minima ${Math.min(...mins)}`);
  assert.deepEqual(page.jsErrors, []);
  await page.close();
});

await check('an Inception module of googlenet-synthetic.onnx shows four branches', async () => {
  const page = await openApp(browser, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button');
  await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'models/googlenet-synthetic.onnx'));
  await page.waitForFunction(() => document.querySelector('.model-line')?.innerText.includes('googlenet-synthetic'), null, { timeout: 120000 });
  await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/chelsea.png'));
  await waitForRun(page);
  results.googlenet_ms = await lastRunMs(page);
  await page.locator('.module-toggle', { hasText: 'inception_3a' }).click();
  await page.locator('[data-testid=layer-list] button.layer', { hasText: 'inception_3a/3x3' }).first().click();
  await page.waitForSelector('[data-testid=branch-view]');
  const labels = await page.locator('[data-testid=branch-view] .branch-title').allInnerTexts();
  assert.deepEqual(labels, ['1x1', '3x3 reduce->3x3', '5x5 reduce->5x5', 'pool->proj']);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=branch-view] canvas').length >= 4 * 16, null, { timeout: 30000 });
  await page.screenshot({ path: join(artifacts, 'inception-branches.png'), fullPage: true });
  await page.close();
});

await check('a corrupt .onnx file shows an error and the app keeps working', async () => {
  const page = await openApp(browser, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button');
  await page.locator('[data-testid=file-input]').setInputFiles({ name: 'broken.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from('\xff\xfe definitely not protobuf') });
  await page.waitForSelector('[data-testid=error]');
  assert.match(await page.locator('[data-testid=error]').innerText(), /not an ONNX model/);
  await page.screenshot({ path: join(artifacts, 'corrupt-onnx.png') });
  await page.close();
});

await check('the costs panel shows the seed lessons from the model', async () => {
  const page = await openApp(browser, '?model=vgg16');
  await page.locator('button', { hasText: 'Explore with untrained weights' }).click({ timeout: 30000 });
  await page.waitForSelector('.lesson', { timeout: 120000 });
  const lessons = (await page.locator('.lesson h3').allInnerTexts()).join('\n');
  assert.match(lessons, /fc6 holds 74\.3% of the parameters/);
  assert.match(lessons, /854\.2 MMACs/);
  assert.match(await page.locator('.model-line').innerText(), /UNTRAINED/);
  await page.screenshot({ path: join(artifacts, 'vgg16-untrained-costs.png'), fullPage: true });
  await page.close();
});
await check('a panic in the worker: the app says so, restarts the worker and keeps working', async () => {
  const page = await openApp(browser, 'crash/?model=squeezenet&backend=cpu&crash=1');
  await page.waitForFunction(() => document.querySelector('[data-testid=error]')?.innerText.includes('restarted'), null, { timeout: 60000 });
  const banner = await page.locator('[data-testid=error]').innerText();
  assert.match(banner, /inference worker crashed \(.*deliberate panic/);
  // The restarted worker loads the model again and answers for the sample photo.
  await waitForRun(page);
  await page.waitForSelector('[data-testid=top5] li');
  assert.equal(await page.locator('[data-testid=top5] li .label').first().innerText(), nativeTop1);
  await page.close();
});

await browser.close();

await check('WebGPU (SwiftShader here) is picked when available and gives the native top-1', async () => {
  const b = await launch([...baseArgs, '--enable-unsafe-webgpu', '--enable-features=Vulkan']);
  const page = await openApp(b, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button');
  // The worker asks for an adapter after the model loads; SwiftShader's GPU process can take a while.
  await page.waitForFunction(() => /WebGPU \(|unavailable|failed/.test(document.querySelector('[data-testid=backend-badge]')?.innerText || ''), null, { timeout: 120000 });
  const badge = await page.locator('[data-testid=backend-badge]').innerText();
  assert.match(badge, /^WebGPU \(/, `badge: ${badge}`);
  await page.locator('[data-testid=file-input]').setInputFiles(join(shared, 'images/chelsea.png'));
  // A pass that ran on the GPU (the first may have run on the CPU while WebGPU was being planned).
  await page.waitForFunction(() => !document.querySelector('progress') && document.querySelector('.model-line span[data-backend^="WebGPU"]'), null, { timeout: 180000 });
  await page.waitForSelector('[data-testid=top5] li');
  assert.equal(await page.locator('[data-testid=top5] li .label').first().innerText(), nativeTop1);
  results.webgpu_swiftshader_squeezenet_ms = await lastRunMs(page);
  // Per-layer GPU times reach the costs panel, with how they were taken.
  const clock = await page.locator('[data-testid=layer-clock]').innerText();
  assert.match(clock, /GPU timestamp queries|one submission per layer/, clock);
  const timedRows = await page.locator('table.costs td:last-child').evaluateAll((tds) => tds.filter((td) => /^\d/.test(td.innerText)).length);
  assert.ok(timedRows >= 20, `only ${timedRows} layers have a GPU time`);
  results.webgpu_layer_clock = clock;
  // Maps come back from the GPU buffers only when a layer is shown.
  const layer = page.locator('[data-testid=layer-list] button.layer').nth(1);
  const channels = Number((await layer.locator('.dims').innerText()).split('x')[0]);
  await layer.click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=feature-grid] canvas').length === n, channels, { timeout: 60000 });
  // Those tiles were coloured on the GPU, from the layer's buffer.
  await page.waitForFunction(() => document.querySelector('.colorbar .ramp')?.title === 'tiles coloured on the GPU', null, { timeout: 60000 });
  // The switch (and ?backend=cpu) forces the CPU and says so.
  await page.locator('[data-testid=backend-select]').selectOption('cpu');
  await page.waitForFunction(() => document.querySelector('[data-testid=backend-badge]')?.innerText.includes('CPU chosen'), null, { timeout: 60000 });
  assert.match(page.url(), /backend=cpu/);
  // f16 weights: used where the adapter has shader-f16, else f32 and the badge says why
  // (SwiftShader has none).
  await page.locator('[data-testid=backend-select]').selectOption('webgpu-f16');
  await page.waitForFunction(() => /f16 weights|no shader-f16/.test(document.querySelector('[data-testid=backend-badge]')?.innerText || ''), null, { timeout: 120000 });
  assert.match(page.url(), /backend=webgpu-f16/);
  await page.screenshot({ path: join(artifacts, 'webgpu.png') });
  await b.close();
});

await check('denied webcam: a clear message, the rest keeps working', async () => {
  const b = await launch([...baseArgs, '--deny-permission-prompts']);
  const page = await openApp(b, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button');
  await page.locator('[data-testid=camera-start]').click();
  await page.waitForSelector('[data-testid=error]');
  assert.match(await page.locator('[data-testid=error]').innerText(), /camera/i);
  await waitForRun(page); // the bundled sample still runs
  await b.close();
});

await check('live webcam (fake device showing a photo) runs frames and reports fps', async () => {
  const y4m = join(artifacts, 'cat.y4m');
  const args = [...baseArgs, '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
  try {
    execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', join(shared, 'images/chelsea.png'), '-t', '2', '-r', '10', '-vf', 'scale=640:480', '-pix_fmt', 'yuv420p', y4m]);
    args.push(`--use-file-for-fake-video-capture=${y4m}`);
  } catch { /* no ffmpeg: the synthetic pattern still exercises the path */ }
  const b = await launch(args);
  const page = await openApp(b, '?model=squeezenet');
  await page.waitForSelector('[data-testid=layer-list] button');
  await waitForRun(page);
  await page.locator('[data-testid=camera-start]').click();
  await page.waitForFunction(() => parseFloat(document.querySelector('.fps')?.innerText || '0') > 0, null, { timeout: 60000 });
  await page.waitForTimeout(3000);
  results.live_fps = parseFloat(await page.locator('.fps').innerText());
  await page.screenshot({ path: join(artifacts, 'webcam-live.png') });
  await b.close();
});

await check('live webcam on WebGPU: display-size tiles coloured on the GPU, no values copied back', async () => {
  const args = [...baseArgs, '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
  const y4m = join(artifacts, 'cat.y4m');
  if (existsSync(y4m)) args.push(`--use-file-for-fake-video-capture=${y4m}`);
  const b = await launch(args);
  const page = await openApp(b, '?model=squeezenet');
  await page.waitForFunction(() => /^WebGPU \(/.test(document.querySelector('[data-testid=backend-badge]')?.innerText || ''), null, { timeout: 120000 });
  // The first layer wider than its tiles (SqueezeNet's conv1: 64 channels of 111x111, ~55 px tiles).
  const dims = await page.locator('[data-testid=layer-list] button.layer .dims').allInnerTexts();
  const pick = dims.findIndex((d) => Number(d.split('x')[1]) > 100);
  const full = Number(dims[pick].split('x')[1]);
  await page.locator('[data-testid=layer-list] button.layer').nth(pick).click();
  await page.locator('[data-testid=camera-start]').click();
  await page.waitForFunction((full) => {
    const tile = document.querySelector('[data-testid=feature-grid] canvas');
    const ran = document.querySelector('.model-line span[data-backend^="WebGPU"]');
    return ran && tile && tile.width < full && document.querySelector('.colorbar .ramp')?.title === 'tiles coloured on the GPU';
  }, full, { timeout: 180000 }).catch(async (e) => {
    const state = await page.evaluate(() => ({
      badge: document.querySelector('[data-testid=backend-badge]')?.innerText,
      line: document.querySelector('.model-line')?.innerHTML,
      tile: document.querySelector('[data-testid=feature-grid] canvas')?.width,
      ramp: document.querySelector('.colorbar .ramp')?.title,
      error: document.querySelector('[data-testid=error]')?.innerText,
    }));
    throw new Error(`${e.message}\n${JSON.stringify(state)}\n${page.jsErrors.join('\n')}`);
  });
  const tileW = await page.locator('[data-testid=feature-grid] canvas').first().evaluate((c) => c.width);
  results.webgpu_live_tile_px = tileW;
  await page.locator('[data-testid=feature-grid] canvas').first().hover();
  assert.match(await page.locator('.hover-readout').innerText(), /live \(freeze to read values\)/);
  await page.screenshot({ path: join(artifacts, 'webgpu-live.png') });
  await b.close();
});

server.close();
await writeFile(join(artifacts, 'e2e-timings.json'), JSON.stringify(results, null, 2));
console.log('timings (Chromium, wasm SIMD, one worker thread):', JSON.stringify(results));
if (failures) {
  console.log(`${failures} end-to-end check(s) failed`);
  process.exit(1);
}
