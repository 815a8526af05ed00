// Waiting for the app's passes, for the e2e checks and the benchmarks that drive the page.

/// Passes the page has answered so far (the model line's run counter).
export const runsDone = (page) => page.evaluate(() => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0));

/// Waits until the page has answered `atLeast` passes. Checked on a timer, not on every
/// animation frame (Playwright's default): a rAF loop makes the page produce frames during the
/// pass it waits for, work a user's page does not do, on the cores the pass's threads want.
export async function waitForRuns(page, atLeast, timeout = 120000) {
  await page.waitForFunction((k) => Number(document.querySelector('.model-line span[data-run]')?.dataset.run || 0) >= k, atLeast, { timeout, polling: 20 });
}

/// Does `act` (a photo set, a toggle) and waits for the pass it starts to be shown: the model
/// line's run counter grows.
export async function nextRun(page, act, timeout = 120000) {
  const before = await runsDone(page);
  await act();
  await waitForRuns(page, before + 1, timeout);
}
