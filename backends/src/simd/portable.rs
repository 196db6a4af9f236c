//! The portable tier: sixteen `f32` lanes as an aligned array, each
//! operation a loop over the lanes that the compiler vectorises for the
//! build's baseline (SSE2 on x86-64, NEON on aarch64). The fused
//! multiply-add is `f32::mul_add` per lane: exactly rounded with or without
//! an FMA unit, so this tier agrees bit for bit with the others.

use super::kernels::ROW_SHIFT;
use super::tier::Tier;
use super::{Block, LANES};

/// The portable tier's token (every CPU has it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

#[inline(always)]
fn lanes(f: impl FnMut(usize) -> f32) -> Block {
    Block(std::array::from_fn(f))
}

impl Tier for Portable {
    type V = Block;
    type M = u32;

    #[inline(always)]
    fn zero(self) -> Block {
        Block::ZERO
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Block {
        Block([x; LANES])
    }
    #[inline(always)]
    fn load(self, block: &Block) -> Block {
        *block
    }
    #[inline(always)]
    fn store(self, v: Block) -> Block {
        v
    }
    #[inline(always)]
    fn store_to(self, v: Block, block: &mut Block) {
        *block = v;
    }
    #[inline(always)]
    fn add(self, a: Block, b: Block) -> Block {
        lanes(|i| a.0[i] + b.0[i])
    }
    #[inline(always)]
    fn sub(self, a: Block, b: Block) -> Block {
        lanes(|i| a.0[i] - b.0[i])
    }
    #[inline(always)]
    fn mul(self, a: Block, b: Block) -> Block {
        lanes(|i| a.0[i] * b.0[i])
    }
    #[inline(always)]
    fn mul_add(self, a: Block, b: Block, c: Block) -> Block {
        lanes(|i| a.0[i].mul_add(b.0[i], c.0[i]))
    }
    #[inline(always)]
    fn gt(self, a: Block, b: Block) -> u32 {
        (0..LANES).fold(0, |m, i| m | (u32::from(a.0[i] > b.0[i]) << i))
    }
    #[inline(always)]
    fn bits(self, m: u32) -> u32 {
        m
    }
    #[inline(always)]
    fn and(self, m: u32, v: Block) -> Block {
        lanes(|i| if m >> i & 1 == 1 { v.0[i] } else { 0.0 })
    }
    #[inline(always)]
    fn select(self, m: u32, t: Block, f: Block) -> Block {
        lanes(|i| if m >> i & 1 == 1 { t.0[i] } else { f.0[i] })
    }
    #[inline(always)]
    fn push_fired(self, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
        push_fired_table(base, bits, spikes, count)
    }
}

/// For each byte `m`, the positions of its set bits, ascending, padded with zeros.
const SET_BITS: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut bit, mut n) = (0, 0);
        while bit < 8 {
            if m & (1 << bit) != 0 {
                table[m][n] = bit as u8;
                n += 1;
            }
            bit += 1;
        }
        m += 1;
    }
    table
};

/// [`Tier::push_fired`] without a compress instruction: a table of each
/// byte's set bits, 8 candidates written per byte, the count advanced by
/// its popcount. Branch-free: a loop over the bits would mispredict its exit
/// once per vector, which costs more than the whole LIF update.
#[inline(always)]
pub fn push_fired_table(base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
    let mut count = count;
    for (half, byte) in [bits & 0xff, (bits >> 8) & 0xff].into_iter().enumerate() {
        let lanes = &SET_BITS[byte as usize];
        let offset = base + 8 * half as u32;
        let dst: &mut [u32; 8] = (&mut spikes[count..count + 8]).try_into().expect("8 lanes");
        for k in 0..8 {
            dst[k] = (offset + lanes[k] as u32) << ROW_SHIFT;
        }
        count += byte.count_ones() as usize;
    }
    count
}

super::run::tier_passes!(Portable);
