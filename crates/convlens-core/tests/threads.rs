//! The kernel pool's promise: a pass on several threads is bit-identical to a pass on one.
//! Every layer of three real networks is compared, at thread counts that take each split
//! (GEMM by columns and by rows over one shared packed B, Winograd by tile batches and within
//! a batch, FC rows, pooling planes, LRN pixels).

use convlens_core::archs::{builtin, Weights};
use convlens_core::exec::{cpu_backend, run, CpuKind, Keep};
use convlens_core::graph::Graph;
use convlens_core::onnx;
use convlens_core::par;
use convlens_core::graph::Window;
use convlens_core::kernels::conv::PreparedConv;
use convlens_core::kernels::reference;
use convlens_core::tensor::rel_error;
use convlens_core::Tensor;
use std::sync::atomic::{AtomicUsize, Ordering};

fn input(g: &Graph) -> Tensor {
    let shape = g.shape(g.input).to_vec();
    let n: usize = shape.iter().product();
    Tensor::new(shape, (0..n).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * 2.0).collect()).unwrap()
}

fn every_layer(g: &Graph, kind: CpuKind) -> Vec<(String, Vec<f32>)> {
    let mut be = cpu_backend(kind, g).unwrap();
    let out = run(g, be.as_mut(), &input(g), &Keep::All, &mut |_, _| {}).unwrap();
    g.nodes.iter().map(|n| (n.name.clone(), out.values[&n.output].data.clone())).collect()
}

// One test function: the pool is global to this process, and these set its size.
#[test]
fn threaded_passes_are_bit_identical_to_one_thread() {
    sleeping_helpers_and_a_sleeping_caller_are_always_woken();
    for_each_runs_every_task_once_even_nested();
    helpers_held_awake_do_not_sleep();
    pool_counts_jobs_tasks_and_the_helpers_share();
    row_split_gemm_reads_one_packed_b();
    let models = convlens_testkit::shared_models();
    let file = |f: &str| onnx::import(&std::fs::read(models.join(f)).unwrap(), f).unwrap();
    let graphs = [
        ("SqueezeNet 1.1", file("squeezenet1.1.onnx")),
        ("GoogLeNet graph", file("googlenet-synthetic.onnx")),
        ("VGG16 (seeded)", builtin("vgg16", Weights::Seeded(7)).unwrap()),
    ];
    for (name, g) in &graphs {
        for kind in [CpuKind::Simd, CpuKind::Gemm] {
            par::set_threads(1);
            let one = every_layer(g, kind);
            // 2: Winograd splits big maps by tile batches; 3: small maps within a batch.
            for t in [2, 3] {
                par::set_threads(t);
                assert_eq!(par::threads(), t);
                let many = every_layer(g, kind);
                for ((layer, a), (_, b)) in one.iter().zip(&many) {
                    let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{name} ({kind:?}), {t} threads: layer {layer} differs from the one-thread pass");
                }
            }
        }
    }
}

fn for_each_runs_every_task_once_even_nested() {
    par::set_threads(3);
    let counts: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
    par::for_each(10, &|outer| {
        // A nested call runs inline on the task's thread.
        par::for_each(100, &|inner| {
            counts[outer * 100 + inner].fetch_add(1, Ordering::Relaxed);
        });
    });
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    let total = AtomicUsize::new(0);
    par::for_each(0, &|_| panic!("no task to run"));
    par::for_each(1, &|_| {
        total.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(total.load(Ordering::Relaxed), 1);
    // A task that panics: the others still run, the caller gets the panic, the pool lives on.
    let ran = AtomicUsize::new(0);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        par::for_each(64, &|i| {
            ran.fetch_add(1, Ordering::Relaxed);
            assert!(i != 40, "task 40 fails");
        })
    }));
    assert!(caught.is_err(), "the task's panic reaches the caller");
    assert_eq!(ran.load(Ordering::Relaxed), 64);
    let after = AtomicUsize::new(0);
    par::for_each(64, &|_| {
        after.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(after.load(Ordering::Relaxed), 64);
}

/// The pool's wake-ups are announced only to whoever is asleep (helpers between jobs, the caller
/// at a job's end): jobs after gaps longer than the helpers' spin, and helpers' blocks slower
/// than the caller's spin, in every mix. A missed wake-up of the caller hangs the job (the
/// watchdog fails the test); a missed helper's leaves its tasks to the caller, counted below.
fn sleeping_helpers_and_a_sleeping_caller_are_always_woken() {
    par::set_threads(2);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut helper_tasks = 0;
        for round in 0..400u64 {
            par::take_stats();
            let ran: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            par::for_each(4, &|i| {
                // The helper's block (tasks 2, 3) outlasts the caller's spin every third job.
                if i >= 2 && round % 3 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
                ran[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(ran.iter().all(|c| c.load(Ordering::Relaxed) == 1), "round {round}: a task ran other than once");
            helper_tasks += par::take_stats().helper_tasks;
            // A gap past the helpers' spin every fourth job, so they sleep and must be woken.
            if round % 4 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        tx.send(helper_tasks).unwrap();
    });
    let helper_tasks = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a job never ended: a wake-up was lost");
    // 400 jobs of 4 tasks: a helper that was never woken would run none.
    assert!(helper_tasks >= 100, "the helper ran {helper_tasks} of 1600 tasks");
}

/// `stay_awake`: a pause far past the helpers' spin, then a job; held, the helper never sleeps
/// (nor needs waking for the job); the same pause without the guard puts it to sleep.
fn helpers_held_awake_do_not_sleep() {
    par::set_threads(2);
    let pause_then_job = || {
        par::take_stats();
        std::thread::sleep(std::time::Duration::from_millis(50));
        par::for_each(8, &|_| std::thread::sleep(std::time::Duration::from_micros(200)));
        par::take_stats()
    };
    let held = {
        let _awake = par::stay_awake();
        pause_then_job()
    };
    assert_eq!(held.helper_sleeps, 0, "held awake: {held:?}");
    assert!(held.helper_tasks > 0, "the held helper took part: {held:?}");
    let free = pause_then_job();
    assert!(free.helper_sleeps >= 1, "not held, a 50 ms pause puts the helper to sleep: {free:?}");
}

/// `take_stats` counts what the pool did: every spread job and task once, the helpers' tasks
/// among them, and nothing for calls that ran inline.
fn pool_counts_jobs_tasks_and_the_helpers_share() {
    par::set_threads(2);
    par::take_stats();
    // Tasks slow enough that the helper, awake or not, takes some of them.
    let slow = |_| std::thread::sleep(std::time::Duration::from_millis(2));
    par::for_each(40, &slow);
    par::for_each(1, &|_| {}); // inline: not a job
    let s = par::take_stats();
    assert_eq!((s.jobs, s.tasks), (1, 40), "{s:?}");
    assert!(s.helper_tasks > 0 && s.helper_tasks < 40, "the helper's share of 40 slow tasks: {s:?}");
    assert!((s.helper_share() - s.helper_tasks as f64 / 40.0).abs() < 1e-12);
    // A helper idle for longer than its spin sleeps, and counts it (in either window: it may
    // have fallen asleep before the first take_stats).
    std::thread::sleep(std::time::Duration::from_millis(200));
    par::for_each(40, &slow);
    let s2 = par::take_stats();
    assert_eq!((s2.jobs, s2.tasks), (1, 40), "counts start again after take_stats: {s2:?}");
    assert!(s.helper_sleeps + s2.helper_sleeps >= 1, "{s:?} {s2:?}");
    par::set_threads(1);
    par::for_each(40, &|_| {});
    assert_eq!(par::take_stats(), par::PoolStats::default(), "one thread: every call inline");
}

/// A conv whose GEMM splits by columns and by rows and reads B packed once by all its tasks
/// (im2col, so never in place): 4 column chunks, the last 33 wide (a 1-column panel), and 2
/// row chunks of 8 panels, K = 135 in one depth block; then K = 405 over two. Bit for bit the
/// one-thread result, and the reference's.
fn row_split_gemm_reads_one_packed_b() {
    let mut seed = 7u32;
    let mut random = |shape: &[usize]| {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                (seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect();
        Tensor::new(shape.to_vec(), v).unwrap()
    };
    let window = Window { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] };
    for c in [15, 45] {
        let (x, w, b) = (random(&[1, c, 15, 15]), random(&[96, c, 3, 3]), random(&[96]));
        let conv = PreparedConv::new(&w, Some(&b), &window, 1, true).unwrap();
        par::set_threads(1);
        let one = conv.run(&x, &mut Vec::new()).unwrap();
        par::set_threads(2);
        let two = conv.run(&x, &mut Vec::new()).unwrap();
        assert!(one.data.iter().zip(&two.data).all(|(a, b)| a.to_bits() == b.to_bits()), "C = {c}: two threads differ from one");
        let want = reference::conv(&x, &w, Some(&b), &window, 1, true).unwrap();
        let err = rel_error(&two.data, &want.data);
        assert!(err < convlens_testkit::FAST_VS_REFERENCE_TOL, "C = {c}: relative error {err} against the reference");
    }
}
