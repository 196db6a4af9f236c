//! The AVX2+FMA tier: sixteen lanes as two 256-bit registers.
//!
//! `unsafe` is allowed here for the intrinsics: each method's block calls
//! AVX or FMA instructions, which is sound because an [`Avx2Fma`] token
//! exists only after [`Avx2Fma::detect`] found both features on this CPU;
//! the loads and stores also read and write through a [`Block`], which is
//! 64-byte aligned, so both halves are 32-byte aligned.
#![allow(unsafe_code)]

use super::portable::push_fired_table;
use super::tier::Tier;
use super::Block;
use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_and_ps, _mm256_blendv_ps, _mm256_cmp_ps, _mm256_fmadd_ps,
    _mm256_load_ps, _mm256_movemask_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_store_ps, _mm256_sub_ps, _CMP_GT_OQ,
};

/// The AVX2+FMA tier's token.
#[derive(Clone, Copy, Debug)]
pub struct Avx2Fma(());

impl Avx2Fma {
    /// The token, if this CPU has AVX2 and FMA.
    pub fn detect() -> Option<Self> {
        (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
            .then_some(Self(()))
    }
}

/// Applies a two-operand 256-bit operation to both halves.
macro_rules! halves {
    ($op:ident, $a:expr, $b:expr) => {
        // SAFETY: the token proves AVX (and FMA) at run time (module docs).
        unsafe { [$op($a[0], $b[0]), $op($a[1], $b[1])] }
    };
}

impl Tier for Avx2Fma {
    type V = [__m256; 2];
    type M = [__m256; 2];

    #[inline(always)]
    fn zero(self) -> Self::V {
        // SAFETY: the token proves AVX at run time (module docs).
        unsafe { [_mm256_setzero_ps(), _mm256_setzero_ps()] }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        // SAFETY: the token proves AVX at run time (module docs).
        unsafe { [_mm256_set1_ps(x), _mm256_set1_ps(x)] }
    }
    #[inline(always)]
    fn load(self, block: &Block) -> Self::V {
        let p = block.0.as_ptr();
        // SAFETY: AVX is proven by the token; `p` points at 16 readable
        // f32s aligned to 64 bytes, so `p` and `p + 8` are 32-byte aligned.
        unsafe { [_mm256_load_ps(p), _mm256_load_ps(p.add(8))] }
    }
    #[inline(always)]
    fn store(self, v: Self::V) -> Block {
        let mut block = Block::ZERO;
        let p = block.0.as_mut_ptr();
        // SAFETY: AVX is proven by the token; `p` points at 16 writable
        // f32s aligned to 64 bytes, so `p` and `p + 8` are 32-byte aligned.
        unsafe {
            _mm256_store_ps(p, v[0]);
            _mm256_store_ps(p.add(8), v[1]);
        }
        block
    }
    #[inline(always)]
    fn store_to(self, v: Self::V, block: &mut Block) {
        let p = block.0.as_mut_ptr();
        // SAFETY: AVX is proven by the token; `p` points at 16 writable
        // f32s aligned to 64 bytes, so `p` and `p + 8` are 32-byte aligned.
        unsafe {
            _mm256_store_ps(p, v[0]);
            _mm256_store_ps(p.add(8), v[1]);
        }
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        halves!(_mm256_add_ps, a, b)
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        halves!(_mm256_sub_ps, a, b)
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        halves!(_mm256_mul_ps, a, b)
    }
    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // SAFETY: the token proves FMA at run time (module docs).
        unsafe {
            [
                _mm256_fmadd_ps(a[0], b[0], c[0]),
                _mm256_fmadd_ps(a[1], b[1], c[1]),
            ]
        }
    }
    #[inline(always)]
    fn gt(self, a: Self::V, b: Self::V) -> Self::M {
        // SAFETY: the token proves AVX at run time (module docs).
        unsafe {
            [
                _mm256_cmp_ps::<_CMP_GT_OQ>(a[0], b[0]),
                _mm256_cmp_ps::<_CMP_GT_OQ>(a[1], b[1]),
            ]
        }
    }
    #[inline(always)]
    fn bits(self, m: Self::M) -> u32 {
        // SAFETY: the token proves AVX at run time (module docs).
        let (lo, hi) = unsafe { (_mm256_movemask_ps(m[0]), _mm256_movemask_ps(m[1])) };
        (lo as u32) | ((hi as u32) << 8)
    }
    #[inline(always)]
    fn and(self, m: Self::M, v: Self::V) -> Self::V {
        halves!(_mm256_and_ps, m, v)
    }
    #[inline(always)]
    fn select(self, m: Self::M, t: Self::V, f: Self::V) -> Self::V {
        // SAFETY: the token proves AVX at run time (module docs).
        unsafe {
            [
                _mm256_blendv_ps(f[0], t[0], m[0]),
                _mm256_blendv_ps(f[1], t[1], m[1]),
            ]
        }
    }
    #[inline(always)]
    fn push_fired(self, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
        push_fired_table(base, bits, spikes, count)
    }
}

super::run::tier_passes!(Avx2Fma, "avx2,fma");
