// What this host's cores are like right now: a fixed floating-point loop on 1 and on N Node
// worker threads (the throughput ratio: does it give N cores' worth of time?), and two threads
// passing a value back and forth through shared memory (the round trip: how far apart are
// they?). On the development VM the second swings: ~100-150 ns, or ~400 ns when the hypervisor
// places the two vCPUs far apart, and then a two-thread pass runs about as long as a
// one-thread pass (docs/BENCHMARKS.md); thread ratios measured then say little about the program.
//   node bench/host_cores.mjs [N]
import { Worker } from 'node:worker_threads';

const spin = `
  const { parentPort } = require('node:worker_threads');
  parentPort.once('message', (ms) => {
    let x = 1.0, n = 0;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      for (let i = 0; i < 100000; i++) x = x * 1.0000001 + 1e-9;
      n++;
    }
    parentPort.postMessage(n + (x === 0 ? 1 : 0));
  });`;

async function throughput(threads, ms) {
  const workers = Array.from({ length: threads }, () => new Worker(spin, { eval: true }));
  const done = workers.map((w) => new Promise((ok) => w.once('message', ok)));
  workers.forEach((w) => w.postMessage(ms));
  const counts = await Promise.all(done);
  await Promise.all(workers.map((w) => w.terminate()));
  return counts.reduce((a, b) => a + b, 0);
}

/// The ratio of N threads' throughput to one thread's, each over `ms`.
export async function hostCores(n = 2, ms = 300) {
  const one = await throughput(1, ms);
  const all = await throughput(n, ms);
  return all / one;
}

const pong = `
  const { parentPort, workerData } = require('node:worker_threads');
  const [flag, rounds] = [new Int32Array(workerData.sab), workerData.rounds];
  Atomics.store(flag, 1, 1); // started
  for (let i = 0; i < rounds; i++) {
    while (Atomics.load(flag, 0) !== 2 * i + 1);
    Atomics.store(flag, 0, 2 * i + 2);
  }
  parentPort.postMessage('done');`;

/// Nanoseconds for one value to go to another thread and back through one shared cache line.
export async function roundTripNs(rounds = 200000) {
  const sab = new SharedArrayBuffer(64);
  const flag = new Int32Array(sab);
  const w = new Worker(pong, { eval: true, workerData: { sab, rounds } });
  const done = new Promise((ok) => w.once('message', ok));
  // Timed from when the worker runs, not from its start-up.
  while (Atomics.load(flag, 1) !== 1) await new Promise((ok) => setTimeout(ok, 1));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) {
    Atomics.store(flag, 0, 2 * i + 1);
    while (Atomics.load(flag, 0) !== 2 * i + 2);
  }
  const ns = Number(process.hrtime.bigint() - t0) / rounds;
  await done;
  await w.terminate();
  return ns;
}

/// One line on the host's state, for a benchmark's log.
export async function hostLine(n = 2) {
  return `host: ${n} threads ${(await hostCores(n)).toFixed(2)}x one thread's throughput; cache-line round trip between two threads ${(await roundTripNs()).toFixed(0)} ns`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await hostLine(Number(process.argv[2] || 2)));
}
