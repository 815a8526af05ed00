// ConvLens's service worker: a second visit works with the network off. Same-origin GETs go to
// the network first (so an update of the app is picked up on the next load) and are kept; when
// the network fails, the kept copy answers. Installing it keeps the app shell at once (the page,
// the hashed app and the worker), so the visit that registered it is enough. Weights downloaded
// from mirrors are kept by the app itself (Cache Storage, checked by sha256); files in models/
// over 64 MB (VGG16) are not kept twice.
// It also makes the page cross-origin isolated where the host cannot send COOP/COEP (GitHub
// Pages and the like): every same-origin response it passes on carries them, so the threaded
// worker may share its memory (index.html reloads once when it first takes control).
const SHELL = 'convlens-shell-v1';
const KEEP_AT_MOST = 64 << 20;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    const page = await fetch('./', { cache: 'no-cache' });
    const html = await page.clone().text();
    await cache.put('./', page);
    // What the page loads: Trunk's hashed app files, and the worker, which it names at run time.
    const assets = new Set([...html.matchAll(/["']([^"'\s]+\.(?:js|wasm|css))["']/g)].map((m) => m[1]));
    for (const a of ['worker_loader.js', 'worker.js', 'worker_bg.wasm', 'worker-mt_loader.js', 'worker-mt_helper.js', 'worker-mt.js', 'worker-mt_bg.wasm', 'worker-mt-relaxed_loader.js', 'worker-mt-relaxed_helper.js', 'worker-mt-relaxed.js', 'worker-mt-relaxed_bg.wasm', 'models/index.json', 'samples/chelsea.png']) assets.add(a);
    await Promise.all([...assets].map((url) => cache.add(url).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

function isolated(res) {
  if (!res || res.type === 'opaque' || res.status === 0) return res;
  const headers = new Headers(res.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    try {
      const res = await fetch(req);
      const size = Number(res.headers.get('content-length') || 0);
      if (res.ok && size <= KEEP_AT_MOST) await cache.put(req, res.clone());
      return isolated(res);
    } catch (err) {
      const kept = (await cache.match(req)) || (req.mode === 'navigate' ? await cache.match('./') : undefined);
      if (kept) return isolated(kept);
      throw err;
    }
  })());
});
