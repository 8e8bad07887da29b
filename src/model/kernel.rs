//! Batch scoring of a ReLU network in plain Rust, vectorized for the CPU it
//! runs on (AVX2 + FMA, chosen at run time by `pulp`).
//!
//! Why not libtorch: for a network this narrow (tens of units) a scoring
//! pass through libtorch is a few skinny matrix products per block, and
//! MKL's packing and dispatch cost more than the arithmetic. Here a block
//! of rows is turned column-major once, and every layer is a run of
//! broadcast fused multiply-adds over whole columns held in L1, with the
//! accumulators in registers. The result is deterministic (a fixed order of
//! operations per row, independent of the block a row falls in); it
//! differs from libtorch's in the last bits.

use pulp::{Arch, Simd, WithSimd};

/// Rows per block: one layer's activations for a block of the reference
/// network (20 units) take 10 KiB, so input and output stay in L1.
const BLOCK: usize = 128;

/// Accumulators kept in registers at once (of `S::F32_LANES` rows each):
/// a fused multiply-add takes about 5 cycles and two can start per cycle,
/// so fewer independent sums leave the units idle. `BLOCK / lanes` is a
/// multiple of this for 1, 4, 8 and 16 lanes.
const ACCUMULATORS: usize = 8;

/// One dense layer: `weight` is `[outputs][inputs]`, row-major.
pub struct DenseLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Dense layers with ReLU between them (none after the last).
pub struct ReluNet {
    pub layers: Vec<DenseLayer>,
}

impl ReluNet {
    /// Whether this CPU has the vector instructions the kernel is written
    /// for. Without them libtorch (MKL) is faster, and callers use it.
    pub fn is_fast_here() -> bool {
        !matches!(Arch::new(), Arch::Scalar)
    }

    /// The last layer's outputs for every row of `rows` (row-major,
    /// `width` = the first layer's inputs), row-major into `out`.
    pub fn logits(&self, rows: &[f32], width: usize, out: &mut [f32]) {
        assert_eq!(width, self.layers[0].inputs, "row width");
        let outputs = self.layers.last().map_or(0, |l| l.outputs);
        assert_eq!(out.len(), rows.len() / width * outputs, "output size");
        Arch::new().dispatch(Forward {
            net: self,
            rows,
            width,
            out,
        });
    }
}

struct Forward<'a> {
    net: &'a ReluNet,
    rows: &'a [f32],
    width: usize,
    out: &'a mut [f32],
}

impl WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Forward {
            net,
            rows,
            width,
            out,
        } = self;
        let vectors = BLOCK / S::F32_LANES;
        let widest = net
            .layers
            .iter()
            .map(|l| l.inputs.max(l.outputs))
            .max()
            .unwrap_or(0);
        let zero = simd.splat_f32s(0.0);
        // Column-major activations: unit `k`'s values for the block's rows
        // are vectors `k * vectors .. (k + 1) * vectors`.
        let mut a = vec![zero; widest * vectors];
        let mut b = vec![zero; widest * vectors];
        let outputs = net.layers.last().map_or(0, |l| l.outputs);
        let n = rows.len() / width;
        for start in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - start);
            let columns: &mut [f32] = pulp::bytemuck::cast_slice_mut(&mut a[..width * vectors]);
            for (i, row) in rows[start * width..(start + len) * width]
                .chunks_exact(width)
                .enumerate()
            {
                for (k, &v) in row.iter().enumerate() {
                    columns[k * BLOCK + i] = v;
                }
            }
            if len < BLOCK {
                for column in columns.chunks_exact_mut(BLOCK) {
                    column[len..].fill(0.0);
                }
            }
            let (mut input, mut output) = (&mut a, &mut b);
            for (l, layer) in net.layers.iter().enumerate() {
                let relu = l + 1 < net.layers.len();
                dense(simd, layer, relu, vectors, input, output);
                std::mem::swap(&mut input, &mut output);
            }
            let logits: &[f32] = pulp::bytemuck::cast_slice(&input[..outputs * vectors]);
            let block_out = &mut out[start * outputs..(start + len) * outputs];
            for (i, row) in block_out.chunks_exact_mut(outputs).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = logits[c * BLOCK + i];
                }
            }
        }
    }
}

/// `output[j] = bias[j] + sum_k weight[j][k] * input[k]`, then ReLU, for
/// every row of the block, `ACCUMULATORS` vectors of rows at a time.
#[inline(always)]
fn dense<S: Simd>(
    simd: S,
    layer: &DenseLayer,
    relu: bool,
    vectors: usize,
    input: &[S::f32s],
    output: &mut [S::f32s],
) {
    let zero = simd.splat_f32s(0.0);
    for j in 0..layer.outputs {
        let weights = &layer.weight[j * layer.inputs..(j + 1) * layer.inputs];
        let bias = simd.splat_f32s(layer.bias[j]);
        for v in (0..vectors).step_by(ACCUMULATORS) {
            let mut acc = [bias; ACCUMULATORS];
            for (k, &w) in weights.iter().enumerate() {
                let w = simd.splat_f32s(w);
                let x = &input[k * vectors + v..k * vectors + v + ACCUMULATORS];
                for (a, &x) in acc.iter_mut().zip(x) {
                    *a = simd.mul_add_e_f32s(w, x, *a);
                }
            }
            if relu {
                // max(0, NaN) is NaN here (the second operand wins), so a
                // broken model's NaN reaches the output instead of zero.
                for a in &mut acc {
                    *a = simd.max_f32s(zero, *a);
                }
            }
            output[j * vectors + v..j * vectors + v + ACCUMULATORS].copy_from_slice(&acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition, in f64, to compare against.
    fn reference(net: &ReluNet, row: &[f32]) -> Vec<f64> {
        let mut h: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        for (l, layer) in net.layers.iter().enumerate() {
            h = (0..layer.outputs)
                .map(|j| {
                    let z = layer.bias[j] as f64
                        + (0..layer.inputs)
                            .map(|k| layer.weight[j * layer.inputs + k] as f64 * h[k])
                            .sum::<f64>();
                    if l + 1 < net.layers.len() {
                        z.max(0.0)
                    } else {
                        z
                    }
                })
                .collect();
        }
        h
    }

    fn net(shape: &[usize], seed: u32) -> ReluNet {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        ReluNet {
            layers: shape
                .windows(2)
                .map(|w| DenseLayer {
                    inputs: w[0],
                    outputs: w[1],
                    weight: (0..w[0] * w[1]).map(|_| next()).collect(),
                    bias: (0..w[1]).map(|_| next()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn logits_match_the_definition_for_any_row_count_and_shape() {
        for shape in [&[20, 20, 10, 1][..], &[3, 7, 4], &[5, 2], &[33, 17, 9, 3]] {
            let net = net(shape, shape.len() as u32);
            let width = shape[0];
            let outputs = *shape.last().unwrap();
            // Row counts around the block size: partial blocks are padded.
            for n in [1, 127, 128, 129, 300] {
                let rows: Vec<f32> = (0..n * width)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                    .collect();
                let mut out = vec![0.0; n * outputs];
                net.logits(&rows, width, &mut out);
                for (row, got) in rows.chunks_exact(width).zip(out.chunks_exact(outputs)) {
                    for (g, want) in got.iter().zip(reference(&net, row)) {
                        assert!(
                            (*g as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{shape:?} n={n}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_scores_the_same_wherever_it_falls_in_a_block() {
        let net = net(&[20, 20, 10, 1], 7);
        let rows: Vec<f32> = (0..260 * 20).map(|i| (i % 13) as f32 * 0.1).collect();
        let mut all = vec![0.0; 260];
        net.logits(&rows, 20, &mut all);
        for start in [0, 1, 127, 128, 259] {
            let mut one = vec![0.0];
            net.logits(&rows[start * 20..(start + 1) * 20], 20, &mut one);
            assert_eq!(one[0].to_bits(), all[start].to_bits(), "row {start}");
        }
    }

    #[test]
    fn nan_weights_give_nan_logits_through_relu() {
        let mut net = net(&[4, 3, 1], 3);
        net.layers[0].weight.fill(f32::NAN);
        let mut out = vec![0.0; 2];
        net.logits(&[1.0; 8], 4, &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{out:?}");
    }
}
