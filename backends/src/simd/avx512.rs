//! The AVX-512 tier: sixteen lanes as one 512-bit register, comparisons
//! into mask registers, and `vpcompressd` to turn a firing mask into spike
//! indices.
//!
//! `unsafe` is allowed here for the intrinsics: each method's block calls
//! AVX-512F instructions, which is sound because an [`Avx512`] token exists
//! only after [`Avx512::detect`] found AVX-512F on this CPU; loads and
//! stores go through a [`Block`], which is 64-byte aligned.
#![allow(unsafe_code)]

use super::kernels::ROW_SHIFT;
use super::tier::Tier;
use super::{Block, LANES};
use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_add_epi32, _mm512_add_ps, _mm512_cmp_ps_mask,
    _mm512_fmadd_ps, _mm512_load_ps, _mm512_mask_blend_ps, _mm512_maskz_compress_epi32,
    _mm512_maskz_mov_ps, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_set_epi32,
    _mm512_setzero_ps, _mm512_slli_epi32, _mm512_store_epi32, _mm512_store_ps, _mm512_sub_ps,
    _CMP_GT_OQ,
};

/// The AVX-512 tier's token.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    /// The token, if this CPU has AVX-512F.
    pub fn detect() -> Option<Self> {
        std::is_x86_feature_detected!("avx512f").then_some(Self(()))
    }
}

impl Tier for Avx512 {
    type V = __m512;
    type M = __mmask16;

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, block: &Block) -> __m512 {
        // SAFETY: AVX-512F is proven by the token; the block is 16 readable
        // f32s aligned to 64 bytes.
        unsafe { _mm512_load_ps(block.0.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, v: __m512) -> Block {
        let mut block = Block::ZERO;
        // SAFETY: AVX-512F is proven by the token; the block is 16 writable
        // f32s aligned to 64 bytes.
        unsafe { _mm512_store_ps(block.0.as_mut_ptr(), v) };
        block
    }
    #[inline(always)]
    fn store_to(self, v: __m512, block: &mut Block) {
        // SAFETY: AVX-512F is proven by the token; the block is 16 writable
        // f32s aligned to 64 bytes.
        unsafe { _mm512_store_ps(block.0.as_mut_ptr(), v) };
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn gt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn bits(self, m: __mmask16) -> u32 {
        u32::from(m)
    }
    #[inline(always)]
    fn and(self, m: __mmask16, v: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_maskz_mov_ps(m, v) }
    }
    #[inline(always)]
    fn select(self, m: __mmask16, t: __m512, f: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F at run time (module docs).
        unsafe { _mm512_mask_blend_ps(m, f, t) }
    }
    #[inline(always)]
    fn push_fired(self, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
        let dst: &mut [u32; LANES] = (&mut spikes[count..count + LANES])
            .try_into()
            .expect("spike buffers hold LANES entries of slack");
        // SAFETY: the token proves AVX-512F at run time (module docs), all
        // `compress_lanes` needs.
        let packed = unsafe { compress_lanes(base, bits as u16) };
        dst.copy_from_slice(&packed.0);
        count + bits.count_ones() as usize
    }
}

/// 16 lane values, 64-byte aligned, for the compress result.
#[repr(C, align(64))]
struct Lanes([u32; LANES]);

/// `(base + lane) << ROW_SHIFT` for the set lanes of `bits`, packed to the
/// front (`vpcompressd`); the other entries are zero.
///
/// # Safety
/// The CPU must have AVX-512F.
#[inline(always)]
unsafe fn compress_lanes(base: u32, bits: u16) -> Lanes {
    let mut out = Lanes([0; LANES]);
    // SAFETY: the caller guarantees AVX-512F; `out` is 16 writable u32s
    // aligned to 64 bytes, as `_mm512_store_epi32` needs.
    unsafe {
        let iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let neurons: __m512i = _mm512_add_epi32(iota, _mm512_set1_epi32(base as i32));
        let offsets = _mm512_slli_epi32::<ROW_SHIFT>(neurons);
        let packed = _mm512_maskz_compress_epi32(bits, offsets);
        _mm512_store_epi32(out.0.as_mut_ptr().cast(), packed);
    }
    out
}

super::run::tier_passes!(Avx512, "avx512f");
