//! Instruction-set tiers: the one vector type the kernels are written
//! against ([`Tier`], sixteen `f32` lanes), its implementations per tier,
//! and the choice among them at run time ([`SimdTier`]).
//!
//! The kernels are generic over [`Tier`] and marked `#[inline(always)]`;
//! each tier's entry points (`forward`, `forward_sparse`) carry the tier's
//! `#[target_feature]` attribute, so the whole kernel is compiled once per
//! tier with that tier's instructions, and one binary runs on any x86-64
//! CPU (tract's and pulp's approach). [`SimdTier::detect`] picks the widest
//! tier the CPU has when a backend is created.
//!
//! | tier | vector | fused multiply-add | firing lanes to indices |
//! | --- | --- | --- | --- |
//! | [`SimdTier::Avx512`] | one `__m512` | `vfmadd` (512-bit) | `vpcompressd` |
//! | [`SimdTier::Avx2Fma`] | two `__m256` | `vfmadd` (256-bit) | a table of each byte's set bits |
//! | [`SimdTier::Portable`] | `[f32; 16]` | `f32::mul_add` per lane | the same table |
//!
//! Every tier performs the scalar reference's operations in its order with
//! the same roundings (a fused multiply-add is exactly rounded on every
//! tier: the portable one calls `f32::mul_add`, which is correct whether
//! the CPU has FMA or not), so all tiers agree bit for bit. On aarch64 the
//! portable tier is the baseline and compiles to NEON.

use super::Block;
use crate::error::{BackendError, Result};
use std::fmt;
use std::str::FromStr;

/// The environment variable that caps the SIMD tier: `avx512`, `avx2` or
/// `portable` (for example to compare tiers on one machine). A tier the CPU
/// lacks is refused with [`BackendError::Unavailable`].
pub const SIMD_TIER_ENV: &str = "CX_SIMD_TIER";

/// Sixteen `f32` lanes on one instruction-set tier. A value of an
/// implementing type is a token that exists only where the CPU supports the
/// tier (its constructor checks), so its methods may use the tier's
/// instructions.
pub trait Tier: Copy {
    /// Sixteen lanes.
    type V: Copy;
    /// A per-lane mask, as a comparison yields it.
    type M: Copy;
    /// Every lane 0.
    fn zero(self) -> Self::V;
    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// The lanes of an aligned block.
    fn load(self, block: &Block) -> Self::V;
    /// The lanes as a block.
    fn store(self, v: Self::V) -> Block;
    /// Writes the lanes into `block` (an aligned store, no copy).
    fn store_to(self, v: Self::V, block: &mut Block);
    /// `a + b` per lane.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b` per lane.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b` per lane.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` per lane, fused (one rounding).
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a > b` per lane (false when either is NaN).
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// The mask as bits, lane `i` at bit `i`.
    fn bits(self, m: Self::M) -> u32;
    /// `v` where the mask is set, 0 elsewhere.
    fn and(self, m: Self::M, v: Self::V) -> Self::V;
    /// `t` where the mask is set, `f` elsewhere.
    fn select(self, m: Self::M, t: Self::V, f: Self::V) -> Self::V;
    /// Appends `(base + lane) << ROW_SHIFT` for every set bit of the 16-bit
    /// `bits` to `spikes[count..]`, ascending, and returns the new count.
    /// `spikes` must hold at least `count + LANES` entries.
    fn push_fired(self, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize;
}

/// The SIMD tiers, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimdTier {
    /// AVX-512F: one 512-bit register per vector.
    Avx512,
    /// AVX2 and FMA: two 256-bit registers per vector.
    Avx2Fma,
    /// No vector extension assumed: sixteen lanes the compiler vectorises
    /// for the build's baseline (SSE2 on x86-64, NEON on aarch64).
    Portable,
}

impl SimdTier {
    /// Every tier, widest first.
    pub const ALL: [SimdTier; 3] = [SimdTier::Avx512, SimdTier::Avx2Fma, SimdTier::Portable];

    /// The widest tier this CPU supports.
    pub fn detect() -> Self {
        Self::ALL
            .into_iter()
            .find(|t| t.is_supported())
            .unwrap_or(Self::Portable)
    }

    /// [`SimdTier::detect`], capped by [`SIMD_TIER_ENV`] when it is set.
    /// Fails when the variable names no tier, or one this CPU lacks.
    pub fn from_env_or_detect() -> Result<Self> {
        match std::env::var(SIMD_TIER_ENV) {
            Ok(name) => {
                let tier: SimdTier = name.parse()?;
                tier.check_supported()?;
                Ok(tier)
            }
            Err(_) => Ok(Self::detect()),
        }
    }

    /// Whether this CPU can run the tier.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Avx512 => x86_has(&["avx512f"]),
            Self::Avx2Fma => x86_has(&["avx2", "fma"]),
            Self::Portable => true,
        }
    }

    /// [`BackendError::Unavailable`] unless this CPU can run the tier.
    pub fn check_supported(self) -> Result<()> {
        if self.is_supported() {
            return Ok(());
        }
        Err(BackendError::Unavailable {
            backend: format!("cpu-simd({self})"),
            reason: format!("this CPU lacks {}", self.features()),
        })
    }

    /// The tiers this CPU supports, widest first.
    pub fn supported() -> impl Iterator<Item = SimdTier> {
        Self::ALL.into_iter().filter(|t| t.is_supported())
    }

    /// The CPU features the tier needs.
    pub fn features(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512f",
            Self::Avx2Fma => "avx2 and fma",
            Self::Portable => "nothing beyond the build's baseline",
        }
    }

    /// The tier's name, as [`SIMD_TIER_ENV`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2Fma => "avx2",
            Self::Portable => "portable",
        }
    }
}

impl fmt::Display for SimdTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Avx512 => "avx512f",
            Self::Avx2Fma => "avx2+fma",
            Self::Portable => "portable",
        })
    }
}

impl FromStr for SimdTier {
    type Err = BackendError;

    fn from_str(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" => Ok(Self::Avx512),
            "avx2" | "avx2+fma" => Ok(Self::Avx2Fma),
            "portable" => Ok(Self::Portable),
            _ => Err(BackendError::UnknownSimdTier { name: name.into() }),
        }
    }
}

/// Whether this CPU has every one of `features` (x86-64 names); false on
/// other architectures.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn x86_has(features: &[&str]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        features.iter().all(|&f| match f {
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "fma" => std::is_x86_feature_detected!("fma"),
            other => unreachable!("feature {other} is not checked here"),
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
