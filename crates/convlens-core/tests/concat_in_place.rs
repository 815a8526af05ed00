//! Convs that write straight into their concat's buffer (every Fire and Inception module's
//! last convs) give bit for bit the outputs of a pass that concatenates copies, and a value
//! someone asked to keep is still there on its own. The same passes check reshapes and
//! dropouts that take their dying input's buffer instead of copying it (SqueezeNet's dropout
//! and flatten, GoogLeNet's): a pass keeping every value copies, one keeping the concats only
//! moves, and their outputs must match bit for bit.

use convlens_core::exec::{cpu_backend, run, CpuKind, Keep, RunOutput};
use convlens_core::graph::{Graph, Op};
use convlens_core::onnx;
use convlens_core::Tensor;

fn input(g: &Graph) -> Tensor {
    let shape = g.shape(g.input).to_vec();
    let n: usize = shape.iter().product();
    Tensor::new(shape, (0..n).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * 2.0).collect()).unwrap()
}

fn pass(g: &Graph, kind: CpuKind, keep: Keep) -> RunOutput {
    let mut be = cpu_backend(kind, g).unwrap();
    run(g, be.as_mut(), &input(g), &keep, &mut |_, _| {}).unwrap()
}

fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    a.shape == b.shape && a.data.iter().zip(&b.data).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn concats_written_in_place_match_copied_ones_bit_for_bit() {
    let models = convlens_testkit::shared_models();
    let file = |f: &str| onnx::import(&std::fs::read(models.join(f)).unwrap(), f).unwrap();
    for (name, g, concats) in [("SqueezeNet 1.1", file("squeezenet1.1.onnx"), 8), ("GoogLeNet graph", file("googlenet-synthetic.onnx"), 9)] {
        let concat_nodes: Vec<usize> = (0..g.nodes.len()).filter(|&i| matches!(g.nodes[i].op, Op::Concat { .. })).collect();
        assert_eq!(concat_nodes.len(), concats, "{name}");
        let concat_outs: Vec<usize> = concat_nodes.iter().map(|&i| g.nodes[i].output).collect();
        for kind in [CpuKind::Simd, CpuKind::Gemm] {
            // Every value kept: nothing is written in place, each concat copies.
            let all = pass(&g, kind, Keep::All);
            assert_eq!(all.concats_in_place, 0, "{name} {kind:?}");
            // The concats' outputs kept, their inputs not: every concat is written in place.
            let fused = pass(&g, kind, Keep::These(concat_outs.clone()));
            assert_eq!(fused.concats_in_place, concats, "{name} {kind:?}");
            for &v in concat_outs.iter().chain(&g.outputs) {
                assert!(same_bits(&fused.values[&v], &all.values[&v]), "{name} {kind:?}: '{}' differs", g.values[v].name);
            }
            // One input of the first concat kept (the explorer shows it): that concat copies,
            // the others do not, and the kept value is the one a copying pass computes.
            let first = &g.nodes[concat_nodes[0]];
            let shown = first.inputs[0];
            let one_kept = pass(&g, kind, Keep::These(vec![shown, first.output]));
            assert_eq!(one_kept.concats_in_place, concats - 1, "{name} {kind:?}");
            assert!(same_bits(&one_kept.values[&shown], &all.values[&shown]), "{name} {kind:?}");
            assert!(same_bits(&one_kept.values[&first.output], &all.values[&first.output]), "{name} {kind:?}");
        }
        // The scalar reference writes nothing in place.
        assert_eq!(pass(&g, CpuKind::Reference, Keep::Outputs).concats_in_place, 0, "{name}");
    }
}
