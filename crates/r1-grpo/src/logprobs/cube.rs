//! CubeCL kernels for the selective log-softmax (WGSL on wgpu, PTX on CUDA).
//!
//! - [`stats_kernel`]: one cube per row. Each unit walks the row with a stride of the cube size
//!   (coalesced reads) keeping an online `(max, sum exp, sum exp * x)`; a tree reduction in
//!   shared memory merges the units; unit 0 writes `(log p[target], log-sum-exp, entropy)`.
//!   One pass over the logits, nothing of size `vocab` written.
//! - [`stats_backward_kernel`]: element-wise `grad * inv_t * (onehot(target) - exp(x * inv_t - lse))`.
//!
//! Both are checked against the plain-op bodies of [`super::ext::LogProbBackend`] and against
//! [`r1_model::selective_log_softmax`] (`tests/fused_logprobs.rs`, on wgpu over Mesa's lavapipe
//! in CI).

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Shape, TensorMetadata};
use burn::tensor::DType;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use super::ext::LogProbBackend;

/// Units per cube of the row reduction (a power of two).
const UNITS: usize = 256;

#[cube(launch)]
fn stats_kernel<I: Int>(
    logits: &Tensor<f32>,
    targets: &Tensor<I>,
    out: &mut Tensor<f32>,
    inv_t: f32,
    #[comptime] units: usize,
    #[define(I)] _int: ElemType,
) {
    let row = CUBE_POS;
    let rows = logits.shape(0);
    if row >= rows {
        terminate!();
    }
    let vocab = logits.shape(1);
    let base = row * vocab;
    let unit = UNIT_POS as usize;

    // Online (max, sum exp(x - max), sum exp(x - max) * x) over this unit's columns.
    let mut m = f32::new(-3.0e38);
    let mut s = f32::new(0.0);
    let mut t = f32::new(0.0);
    let mut i = unit;
    while i < vocab {
        let x = logits[base + i] * inv_t;
        if x > m {
            let c = f32::exp(m - x);
            s = s * c + f32::new(1.0);
            t = t * c + x;
            m = x;
        } else {
            let e = f32::exp(x - m);
            if e > f32::new(0.0) {
                s += e;
                t += e * x;
            }
        }
        i += units;
    }

    let mut sm = Shared::<[f32]>::new_slice(units);
    let mut ss = Shared::<[f32]>::new_slice(units);
    let mut st = Shared::<[f32]>::new_slice(units);
    sm[unit] = m;
    ss[unit] = s;
    st[unit] = t;
    sync_cube();

    let mut stride = (units / 2).runtime();
    while stride > 0 {
        if unit < stride {
            let m1 = sm[unit];
            let m2 = sm[unit + stride];
            let mx = f32::max(m1, m2);
            let c1 = f32::exp(m1 - mx);
            let c2 = f32::exp(m2 - mx);
            sm[unit] = mx;
            ss[unit] = ss[unit] * c1 + ss[unit + stride] * c2;
            st[unit] = st[unit] * c1 + st[unit + stride] * c2;
        }
        sync_cube();
        stride /= 2;
    }

    if unit == 0 {
        let lse = sm[0] + f32::ln(ss[0]);
        let target = usize::cast_from(targets[row]);
        out[row * 3] = logits[base + target] * inv_t - lse;
        out[row * 3 + 1] = lse;
        out[row * 3 + 2] = lse - st[0] / ss[0];
    }
}

#[cube(launch)]
fn stats_backward_kernel<I: Int>(
    logits: &Tensor<f32>,
    targets: &Tensor<I>,
    lse: &Tensor<f32>,
    grad: &Tensor<f32>,
    out: &mut Tensor<f32>,
    inv_t: f32,
    #[define(I)] _int: ElemType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let vocab = logits.shape(1);
    let row = pos / vocab;
    let col = pos % vocab;
    let p = f32::exp(logits[pos] * inv_t - lse[row]);
    let hit = select(
        col == usize::cast_from(targets[row]),
        f32::new(1.0),
        f32::new(0.0),
    );
    out[pos] = grad[row] * inv_t * (hit - p);
}

fn f32_contiguous(t: CubeTensor) -> CubeTensor {
    assert_eq!(
        t.dtype,
        DType::F32,
        "the fused log-softmax kernels read f32 logits"
    );
    into_contiguous(t)
}

/// Element counts above this do not fit the kernels' index arithmetic on every runtime.
const MAX_ELEMENTS: usize = i32::MAX as usize;

impl LogProbBackend for CubeBackend {
    fn log_softmax_stats(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        inv_temperature: f32,
    ) -> FloatTensor<Self> {
        let logits = f32_contiguous(logits);
        let targets = into_contiguous(targets);
        let shape = logits.shape();
        let (rows, vocab) = (shape[0], shape[1]);
        assert!(
            rows * vocab <= MAX_ELEMENTS,
            "fused log-softmax: {rows} x {vocab} logits in one call; use smaller chunks"
        );
        let out = empty_device_contiguous_dtype(
            logits.client.clone(),
            logits.device.clone(),
            Shape::new([rows, 3]),
            DType::F32,
        );
        if rows == 0 {
            return out;
        }
        let client = logits.client.clone();
        let int = dtype_to_storage_type(targets.dtype);
        let cube_count = calculate_cube_count_elemwise(&client, rows, CubeDim::new_single());
        stats_kernel::launch(
            &client,
            cube_count,
            CubeDim::new_1d(UNITS as u32),
            logits.into_tensor_arg(),
            targets.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            inv_temperature,
            UNITS,
            int,
        );
        out
    }

    fn log_softmax_stats_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        inv_temperature: f32,
    ) -> FloatTensor<Self> {
        let logits = f32_contiguous(logits);
        let targets = into_contiguous(targets);
        let lse = f32_contiguous(lse);
        let grad = f32_contiguous(grad);
        let shape = logits.shape();
        let elements = shape.num_elements();
        assert!(
            elements <= MAX_ELEMENTS,
            "fused log-softmax backward: {elements} logits in one call; use smaller chunks"
        );
        let out = empty_device_contiguous_dtype(
            logits.client.clone(),
            logits.device.clone(),
            shape,
            DType::F32,
        );
        if elements == 0 {
            return out;
        }
        let client = logits.client.clone();
        let int = dtype_to_storage_type(targets.dtype);
        let cube_dim = CubeDim::new(&client, elements);
        let cube_count = calculate_cube_count_elemwise(&client, elements, cube_dim);
        stats_backward_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            logits.into_tensor_arg(),
            targets.into_tensor_arg(),
            lse.into_tensor_arg(),
            grad.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            inv_temperature,
            int,
        );
        out
    }
}
