//! What one fork-join of the kernels' pool costs, with tasks too short to matter: a pass is
//! ~46 such forks (SqueezeNet) to ~150 (GoogLeNet), so their overhead is the floor of the
//! threads' speed-up on small layers.
//!
//! `cargo run --release -p convlens-core --example pool_fork_bench [THREADS] [JOBS] [TASK_NS]`
//! prints the time per job with THREADS (default 2) and on one thread, and the pool's counts.
use convlens_core::par;
use std::hint::black_box;
use std::time::Instant;

fn spin_for(ns: u64) {
    let t = Instant::now();
    while (t.elapsed().as_nanos() as u64) < ns {
        std::hint::spin_loop();
    }
}

fn run(threads: usize, jobs: usize, task_ns: u64) -> f64 {
    par::set_threads(threads);
    let tasks = 2 * threads;
    // Warm-up: helpers started and spinning.
    for _ in 0..1000 {
        par::for_each(tasks, &|i| {
            black_box(i);
        });
    }
    par::take_stats();
    let t = Instant::now();
    for _ in 0..jobs {
        par::for_each(tasks, &|i| {
            spin_for(task_ns);
            black_box(i);
        });
    }
    let per_job = t.elapsed().as_secs_f64() * 1e6 / jobs as f64;
    let s = par::take_stats();
    println!(
        "{threads} thread(s): {per_job:.2} us a job of {tasks} tasks of {task_ns} ns (helpers' share {:.3}, helper sleeps {}, caller waits {})",
        s.helper_share(),
        s.helper_sleeps,
        s.caller_sleeps
    );
    per_job
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("numbers: THREADS JOBS TASK_NS")).collect();
    let threads = args.first().copied().unwrap_or(2) as usize;
    let jobs = args.get(1).copied().unwrap_or(20000) as usize;
    let task_ns = args.get(2).copied().unwrap_or(2000);
    let one = run(1, jobs, task_ns);
    let many = run(threads, jobs, task_ns);
    // With no overhead, a job of 2*T tasks takes 2*task on T threads and 2*T*task on one.
    let ideal = 2.0 * task_ns as f64 / 1000.0;
    println!("overhead a job on {threads} threads: {:.2} us over the ideal {ideal:.2} us (one thread {one:.2} us)", many - ideal);
}
