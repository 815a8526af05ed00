// Waiting for the app's passes, for the e2e checks and the benchmarks that drive the page.

/// Does `act` (a photo set, a toggle) and waits for the pass it starts to be shown: the model
/// line's run counter grows.
export async function nextRun(page, act, timeout = 120000) {
  const before = await page.evaluate(() => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0));
  await act();
  await page.waitForFunction((k) => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0) > k, before, { timeout });
}
