// The memory a tab costs: the summed resident memory (VmRSS) of every process of the Chromium
// that playwright launched (browser, renderer, its workers' renderer, GPU, utility), sampled
// from /proc. Shared pages are counted once per process, as a task manager's sum does.
import { readFileSync, readdirSync } from 'node:fs';
import { nextRun } from './runs.mjs';

function processes() {
  const all = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const ppid = Number(/PPid:\s+(\d+)/.exec(status)[1]);
      const rss = Number((/VmRSS:\s+(\d+)/.exec(status) || [0, 0])[1]) * 1024;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      all.push({ pid: Number(pid), ppid, rss, cmd });
    } catch {
      // gone between the listing and the read
    }
  }
  return all;
}

/// Summed RSS of the Chromium processes started with `marker` in their command line, and of
/// every process below them.
export function chromiumRss(marker) {
  const all = processes();
  const roots = new Set(all.filter((p) => p.cmd.includes(marker) && p.cmd.includes('chromium')).map((p) => p.pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (!roots.has(p.pid) && roots.has(p.ppid)) {
        roots.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => roots.has(p.pid)).reduce((s, p) => s + p.rss, 0);
}

/// A command-line switch Chromium ignores, to launch a browser with: its processes are then
/// found by it (the browser's) and by their parent (every other).
export const probeSwitch = `--convlens-memory-probe=${process.pid}-${Date.now()}`;

/// Opens `url` in a fresh page of `browser` (launched with `probeSwitch`), waits for the model to load and for one pass over `photo`, sampling memory
/// every 50 ms. The page is closed after.
export async function measureTabMemory(browser, url, photo, { timeout = 300000, file = 'model.onnx' } = {}) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const marker = probeSwitch;
  const before = chromiumRss(marker);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, chromiumRss(marker)); }, 50);
  try {
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForFunction((f) => {
      const line = document.querySelector('.model-line')?.innerText || '';
      return line.includes(f) && !document.querySelector('progress');
    }, file, { timeout });
    const loadMs = Date.now() - t0;
    const t1 = Date.now();
    await nextRun(page, () => page.locator('[data-testid=file-input]').setInputFiles(photo), timeout);
    const runMs = Date.now() - t1;
    const passMs = Number(await page.locator('[data-testid=run-ms]').innerText());
    const status = await page.locator('.model-line').innerText();
    const badge = await page.locator('[data-testid=backend-badge]').innerText();
    // The worker's wasm memory, which only grows: the most its heap held, read by the app.
    const heap = Number(await page.locator('[data-testid=worker-memory]').getAttribute('data-bytes'));
    peak = Math.max(peak, chromiumRss(marker));
    const after = chromiumRss(marker);
    return { before, peak, after, heap, loadMs, runMs, passMs, status, badge };
  } finally {
    clearInterval(sampler);
    await page.close();
  }
}
