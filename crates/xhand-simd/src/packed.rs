//! Matrix products `x · W` for the fused CPU networks, by a register-tiled AVX-512 kernel
//! over weights packed once per layer in panels of 16 output columns, in one of two
//! arithmetics ([`Arith`]):
//! - **f32**: one FMA per 16 multiply-adds; the default path. `gemm` (candle's GEMM) is what
//!   runs without AVX-512; on this project's machine its AVX2 kernels reach ~50 GFLOP/s a
//!   core and its AVX-512 ones (the `x86-v4` feature) less, while these panels need no
//!   per-call packing of `x` (docs/performance.md).
//! - **bf16**: weights and inputs rounded to bfloat16 (to nearest, ties to even), products
//!   summed in f32; one `vdpbf16ps` does 32 multiply-adds. Opt-in: `--precision bf16`.
//!   Hand-written because `gemm` has no bf16 kernel (its f16 type is converted to f32).
//!
//! Where the CPU lacks the instructions ([`Arith::supported`]), [`matmul`] runs scalar loops
//! with the same rounding ([`matmul_reference`]): correct, slow, meant for tests.
//!
//! Layout: a "word" is 32 bits of `x`'s summed dimension `k`: one f32, or a bf16 pair (the
//! even index in the low half; an odd `k` padded with a zero). Packed weights are, for each
//! panel of 16 columns, for each word of `k`, 16 words.

/// Output columns a 512-bit accumulator holds: a panel's width.
const LANES: usize = 16;

/// The arithmetic of a packed product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    F32,
    Bf16,
}

impl Arith {
    /// Whether this CPU runs the AVX-512 kernel for `self`.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f")
                && (self == Self::F32 || std::is_x86_feature_detected!("avx512bf16"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// 32-bit words that hold `k` values.
    pub fn words(self, k: usize) -> usize {
        match self {
            Self::F32 => k,
            Self::Bf16 => k.div_ceil(2),
        }
    }

    /// `x · w` of one word each, in f32.
    fn word_product(self, x: u32, w: u32) -> f32 {
        match self {
            Self::F32 => f32::from_bits(x) * f32::from_bits(w),
            Self::Bf16 => {
                let half =
                    |v: u32, hi: bool| from_bf16(if hi { (v >> 16) as u16 } else { v as u16 });
                half(x, false) * half(w, false) + half(x, true) * half(w, true)
            }
        }
    }

    /// The word holding values `i` (and `i + 1` for bf16) of `at`, zero past `k`.
    fn word(self, at: impl Fn(usize) -> f32, i: usize) -> u32 {
        match self {
            Self::F32 => at(i).to_bits(),
            Self::Bf16 => pair(at(2 * i), at(2 * i + 1)),
        }
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even); NaN stays NaN.
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// The f32 a bfloat16 stands for (exact).
#[inline]
pub fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) as u32 | (to_bf16(hi) as u32) << 16
}

/// A `[k × n]` weight matrix (row-major, as `x · W` reads it) packed for the kernel in
/// `arith`: for each panel of 16 output columns, for each word of `k`, 16 words.
#[derive(Clone, Debug)]
pub struct PackedWeights {
    arith: Arith,
    k: usize,
    n: usize,
    data: Vec<u32>,
}

impl PackedWeights {
    /// Packs `w[k × n]` row-major (`w.len() >= k * n`).
    pub fn pack(w: &[f32], k: usize, n: usize, arith: Arith) -> Self {
        assert!(
            w.len() >= k * n,
            "weights hold {} values, not {k}x{n}",
            w.len()
        );
        let (words, panels) = (arith.words(k), n.div_ceil(LANES));
        let mut data = vec![0u32; panels * words * LANES];
        for col in 0..n {
            let at = |row: usize| if row < k { w[row * n + col] } else { 0.0 };
            let (panel, lane) = (col / LANES, col % LANES);
            for i in 0..words {
                data[(panel * words + i) * LANES + lane] = arith.word(at, i);
            }
        }
        Self { arith, k, n, data }
    }

    pub fn arith(&self) -> Arith {
        self.arith
    }

    /// Rows (the summed dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output columns.
    pub fn n(&self) -> usize {
        self.n
    }

    fn words(&self) -> usize {
        self.arith.words(self.k)
    }

    /// The packed word `i` of column `col`.
    fn at(&self, i: usize, col: usize) -> u32 {
        self.data[((col / LANES) * self.words() + i) * LANES + col % LANES]
    }
}

/// Converts `rows` rows of `k` values, `lda` apart in `x`, into bf16 pairs in `out`
/// (`rows × Arith::Bf16.words(k)`, resized as needed). AVX-512 BF16's converter where
/// supported (the same rounding; denormal inputs become zero there).
pub fn pack_rows(x: &[f32], rows: usize, k: usize, lda: usize, out: &mut Vec<u32>) {
    assert!(k <= lda && (rows == 0 || x.len() >= (rows - 1) * lda + k));
    let pairs = Arith::Bf16.words(k);
    out.resize(rows * pairs, 0);
    for (r, dst) in out.chunks_exact_mut(pairs).enumerate() {
        let row = &x[r * lda..r * lda + k];
        #[cfg(target_arch = "x86_64")]
        if Arith::Bf16.supported() {
            // SAFETY: the CPU has the features (checked); `dst` holds the row's pairs.
            unsafe { avx512::pack_row(row, dst) };
            continue;
        }
        let at = |i: usize| row.get(i).copied().unwrap_or(0.0);
        for (i, d) in dst.iter_mut().enumerate() {
            *d = Arith::Bf16.word(at, i);
        }
    }
}

/// `dst[rows × n] = x · W[..k]` (with `acc`, `dst += …`): `x` is `rows` rows of `k` values
/// `lda` apart, `k <= w.k()` (the first `k` rows of `W`; for bf16 and an odd `k` the pad's
/// partner row is multiplied by zero). `scratch` holds the bf16 rows between calls.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    rows: usize,
    x: &[f32],
    lda: usize,
    k: usize,
    w: &PackedWeights,
    dst: &mut [f32],
    acc: bool,
    scratch: &mut Vec<u32>,
) {
    assert!(k <= w.k && k <= lda && dst.len() >= rows * w.n);
    assert!(rows == 0 || x.len() >= (rows - 1) * lda + k);
    let words = w.arith.words(k);
    // `x` as words: the f32 bits where they are, or bf16 pairs made here.
    let (xw, stride): (&[u32], usize) = match w.arith {
        Arith::F32 => (bits(x), lda),
        Arith::Bf16 => {
            pack_rows(x, rows, k, lda, scratch);
            (&scratch[..], words)
        }
    };
    #[cfg(target_arch = "x86_64")]
    if w.arith.supported() {
        // SAFETY: the CPU has the features (checked); the slices hold what the sizes say
        // (asserted above and by `PackedWeights::pack`).
        unsafe {
            match w.arith {
                Arith::F32 => avx512::matmul_f32(rows, xw, stride, words, w, dst, acc),
                Arith::Bf16 => avx512::matmul_bf16(rows, xw, stride, words, w, dst, acc),
            }
        }
        return;
    }
    matmul_reference(rows, xw, stride, words, w, dst, acc);
}

/// The f32 values' bits, in place.
fn bits(x: &[f32]) -> &[u32] {
    // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is a u32.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<u32>(), x.len()) }
}

/// [`matmul`] by scalar loops over words already made: each word's product (a bf16
/// pair's two products added) added to the sum in f32.
pub fn matmul_reference(
    rows: usize,
    x: &[u32],
    stride: usize,
    words: usize,
    w: &PackedWeights,
    dst: &mut [f32],
    acc: bool,
) {
    let n = w.n;
    for r in 0..rows {
        for col in 0..n {
            let mut sum = if acc { dst[r * n + col] } else { 0.0 };
            for i in 0..words {
                sum += w.arith.word_product(x[r * stride + i], w.at(i, col));
            }
            dst[r * n + col] = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{LANES, PackedWeights};
    use std::arch::x86_64::*;

    /// Rows per register tile: 6 rows × 4 panels = 24 accumulators, plus 4 weight vectors
    /// and a broadcast, fit the 32 vector registers.
    const MR: usize = 6;
    const NR: usize = 4;

    /// The product in f32 FMAs.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul_f32(
        rows: usize,
        x: &[u32],
        stride: usize,
        words: usize,
        w: &PackedWeights,
        dst: &mut [f32],
        acc: bool,
    ) {
        // SAFETY: the caller's contract; this function has the features `tiles` needs.
        unsafe { tiles::<false>(rows, x, stride, words, w, dst, acc) }
    }

    /// The product in bf16 pair dot products.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn matmul_bf16(
        rows: usize,
        x: &[u32],
        stride: usize,
        words: usize,
        w: &PackedWeights,
        dst: &mut [f32],
        acc: bool,
    ) {
        // SAFETY: as for `matmul_f32`.
        unsafe { tiles::<true>(rows, x, stride, words, w, dst, acc) }
    }

    /// Every register tile of the product (inlined into a caller with the features).
    #[inline(always)]
    unsafe fn tiles<const BF16: bool>(
        rows: usize,
        x: &[u32],
        stride: usize,
        words: usize,
        w: &PackedWeights,
        dst: &mut [f32],
        acc: bool,
    ) {
        let panels = w.n.div_ceil(LANES);
        let at = Tile {
            x: x.as_ptr(),
            stride,
            words,
            w,
            dst: dst.as_mut_ptr(),
            acc,
        };
        let mut r = 0;
        while r < rows {
            let mr = (rows - r).min(MR);
            let mut b = 0;
            while b < panels {
                let nr = (panels - b).min(NR);
                // SAFETY: rows r..r+mr and panels b..b+nr are inside the matrices.
                unsafe {
                    match (mr, nr) {
                        (6, 4) => at.run::<6, 4, BF16>(r, b),
                        (6, 3) => at.run::<6, 3, BF16>(r, b),
                        (6, 2) => at.run::<6, 2, BF16>(r, b),
                        (6, _) => at.run::<6, 1, BF16>(r, b),
                        (m, 4) => at.tail_rows::<4, BF16>(m, r, b),
                        (m, 3) => at.tail_rows::<3, BF16>(m, r, b),
                        (m, 2) => at.tail_rows::<2, BF16>(m, r, b),
                        (m, _) => at.tail_rows::<1, BF16>(m, r, b),
                    }
                }
                b += nr;
            }
            r += mr;
        }
    }

    /// What every tile of one product shares.
    struct Tile<'a> {
        x: *const u32,
        stride: usize,
        words: usize,
        w: &'a PackedWeights,
        dst: *mut f32,
        acc: bool,
    }

    impl Tile<'_> {
        /// The last rows of a matrix whose row count is not a multiple of [`MR`].
        #[inline(always)]
        unsafe fn tail_rows<const N: usize, const BF16: bool>(&self, m: usize, r: usize, b: usize) {
            // SAFETY: as for `run`.
            unsafe {
                match m {
                    5 => self.run::<5, N, BF16>(r, b),
                    4 => self.run::<4, N, BF16>(r, b),
                    3 => self.run::<3, N, BF16>(r, b),
                    2 => self.run::<2, N, BF16>(r, b),
                    _ => self.run::<1, N, BF16>(r, b),
                }
            }
        }

        /// Rows `r..r+M`, panels `b..b+N`: sums over the first `words` words in registers,
        /// then one (masked, at the right edge) load-add-store.
        #[inline(always)]
        unsafe fn run<const M: usize, const N: usize, const BF16: bool>(&self, r: usize, b: usize) {
            let n = self.w.n;
            // `w` holds `w_words` a panel: at least the `words` used.
            let w_words = self.w.arith.words(self.w.k);
            let mask = |j: usize| -> __mmask16 {
                let valid = n - (b + j) * LANES;
                if valid >= LANES {
                    0xffff
                } else {
                    ((1u32 << valid) - 1) as __mmask16
                }
            };
            let wp = self.w.data.as_ptr();
            // SAFETY: every pointer below is inside its slice: rows < rows total, words <
            // words, columns masked to < n (the caller's ranges and `matmul`'s asserts).
            unsafe {
                let mut c = [[_mm512_setzero_ps(); N]; M];
                if self.acc {
                    for (i, ci) in c.iter_mut().enumerate() {
                        for (j, cij) in ci.iter_mut().enumerate() {
                            let at = self.dst.add((r + i) * n + (b + j) * LANES);
                            *cij = _mm512_maskz_loadu_ps(mask(j), at);
                        }
                    }
                }
                for s in 0..self.words {
                    let mut wv = [_mm512_setzero_si512(); N];
                    for (j, v) in wv.iter_mut().enumerate() {
                        let at = wp.add(((b + j) * w_words + s) * LANES);
                        *v = _mm512_loadu_si512(at as *const __m512i);
                    }
                    for (i, ci) in c.iter_mut().enumerate() {
                        let a = _mm512_set1_epi32(*self.x.add((r + i) * self.stride + s) as i32);
                        for (cij, v) in ci.iter_mut().zip(&wv) {
                            *cij = if BF16 {
                                _mm512_dpbf16_ps(
                                    *cij,
                                    std::mem::transmute::<__m512i, __m512bh>(a),
                                    std::mem::transmute::<__m512i, __m512bh>(*v),
                                )
                            } else {
                                _mm512_fmadd_ps(
                                    _mm512_castsi512_ps(a),
                                    _mm512_castsi512_ps(*v),
                                    *cij,
                                )
                            };
                        }
                    }
                }
                for (i, ci) in c.iter().enumerate() {
                    for (j, cij) in ci.iter().enumerate() {
                        let at = self.dst.add((r + i) * n + (b + j) * LANES);
                        _mm512_mask_storeu_ps(at, mask(j), *cij);
                    }
                }
            }
        }
    }

    /// One row of f32 to bf16 pairs, 32 values at a time (`dst` holds the row's pairs).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn pack_row(row: &[f32], dst: &mut [u32]) {
        let mut i = 0;
        while i < row.len() {
            let left = row.len() - i;
            let lo_mask = if left >= LANES {
                0xffff
            } else {
                ((1u32 << left) - 1) as __mmask16
            };
            let hi_left = left.saturating_sub(LANES).min(LANES);
            let hi_mask = ((1u32 << hi_left) - 1) as __mmask16;
            let out_pairs = left.min(2 * LANES).div_ceil(2);
            let out_mask = ((1u32 << out_pairs) - 1) as __mmask16;
            // SAFETY: the masks keep every load inside `row` and every store inside `dst`.
            unsafe {
                let lo = _mm512_maskz_loadu_ps(lo_mask, row.as_ptr().add(i));
                let hi = _mm512_maskz_loadu_ps(hi_mask, row.as_ptr().add(i + LANES.min(left)));
                // Values i..i+16 in the low half, i+16..i+32 in the high half: 16 pairs.
                let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(i / 2) as *mut i32, out_mask, packed);
            }
            i += 2 * LANES;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix in [-1, 1).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `x`'s rows as the words the reference reads.
    fn words_of(x: &[f32], rows: usize, k: usize, lda: usize, arith: Arith) -> (Vec<u32>, usize) {
        match arith {
            Arith::F32 => (x.iter().map(|v| v.to_bits()).collect(), lda),
            Arith::Bf16 => {
                let mut out = Vec::new();
                pack_rows(x, rows, k, lda, &mut out);
                (out, arith.words(k))
            }
        }
    }

    #[test]
    fn bf16_rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        for x in values(1000, 3) {
            let e = (from_bf16(to_bf16(x)) - x).abs();
            assert!(e <= x.abs() / 256.0, "{x}: error {e}");
        }
    }

    /// The kernel (AVX-512 where the CPU has it) against the scalar reference and against
    /// plain f32 sums, over sizes that are and are not multiples of its tiles, for both
    /// arithmetics, from strided rows.
    #[test]
    fn matmul_matches_reference_and_f32() {
        for arith in [Arith::F32, Arith::Bf16] {
            for (rows, k, n) in [
                (1, 1, 1),
                (7, 5, 3),
                (6, 64, 64),
                (128, 223, 64),
                (13, 287, 130),
                (128, 512, 512),
                (5, 48, 17),
            ] {
                let lda = k + 3;
                let x = values(rows * lda, (rows * 31 + k) as u32);
                let wt = values(k * n, (n * 7 + k) as u32);
                let w = PackedWeights::pack(&wt, k, n, arith);
                let (xw, stride) = words_of(&x, rows, k, lda, arith);
                let start = values(rows * n, 9);
                for acc in [false, true] {
                    let mut fast = start.clone();
                    matmul(rows, &x, lda, k, &w, &mut fast, acc, &mut Vec::new());
                    let mut slow = start.clone();
                    matmul_reference(rows, &xw, stride, arith.words(k), &w, &mut slow, acc);
                    let what = format!("{arith:?} {rows}x{k}x{n}");
                    for r in 0..rows {
                        for c in 0..n {
                            let exact = (0..k).map(|i| x[r * lda + i] * wt[i * n + c]).sum::<f32>()
                                + if acc { start[r * n + c] } else { 0.0 };
                            let (f, s) = (fast[r * n + c], slow[r * n + c]);
                            // Same inputs: only the order of f32 additions differs.
                            let order = 1e-5 * (k as f32).sqrt() + 1e-6;
                            assert!((f - s).abs() <= order, "{what}: {f} vs {s}");
                            // bf16 inputs: about 2^-8 relative error a product, random signs.
                            let bound = match arith {
                                Arith::F32 => order,
                                Arith::Bf16 => 0.01 * (k as f32).sqrt(),
                            };
                            assert!((f - exact).abs() <= bound, "{what}: {f} vs f32 {exact}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn odd_widths_pad_with_zero_and_strided_rows_are_read() {
        // Rows 3 apart, 2 used: the third column must not leak in.
        let x = [1.0, 2.0, 100.0, 3.0, 4.0, 100.0];
        let mut xp = Vec::new();
        pack_rows(&x, 2, 2, 3, &mut xp);
        assert_eq!(xp.len(), 2);
        pack_rows(&x, 2, 3, 3, &mut xp);
        assert_eq!(xp.len(), 4);
        assert_eq!(xp[1] >> 16, 0, "the pad of an odd row is zero");
        for arith in [Arith::F32, Arith::Bf16] {
            let w = PackedWeights::pack(&[1.0, 1.0, 1.0], 3, 1, arith);
            let mut out = [0.0; 2];
            matmul(2, &x, 3, 3, &w, &mut out, false, &mut xp);
            assert_eq!(out, [103.0, 107.0], "{arith:?}");
            matmul(2, &x, 3, 2, &w, &mut out, false, &mut xp);
            assert_eq!(out, [3.0, 7.0], "{arith:?}: the first 2 of 3 rows");
        }
    }

    #[test]
    fn the_first_k_rows_of_a_wider_matrix() {
        // As the renderer uses its first layer: 223 of 271 input rows (odd: for bf16 the
        // pad's partner, row 223, must not count).
        let (rows, k_all, k, n) = (9, 271, 223, 64);
        let wt = values(k_all * n, 5);
        let x = values(rows * k, 6);
        for arith in [Arith::F32, Arith::Bf16] {
            let (mut out, mut reference) = (vec![0.0; rows * n], vec![0.0; rows * n]);
            let w = PackedWeights::pack(&wt, k_all, n, arith);
            matmul(rows, &x, k, k, &w, &mut out, false, &mut Vec::new());
            let (xw, stride) = words_of(&x, rows, k, k, arith);
            let narrow = PackedWeights::pack(&wt[..k * n], k, n, arith);
            matmul_reference(
                rows,
                &xw,
                stride,
                arith.words(k),
                &narrow,
                &mut reference,
                false,
            );
            for (a, b) in out.iter().zip(&reference) {
                assert!((a - b).abs() < 1e-4, "{arith:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn packed_rows_round_like_the_scalar_conversion() {
        // Every length around the 32-value step, odd and even, from a strided source.
        for k in 1..=70 {
            let x = values(3 * (k + 5), k as u32);
            let mut out = Vec::new();
            pack_rows(&x, 3, k, k + 5, &mut out);
            let pairs = Arith::Bf16.words(k);
            assert_eq!(out.len(), 3 * pairs);
            for r in 0..3 {
                for p in 0..pairs {
                    let at = |i: usize| if i < k { x[r * (k + 5) + i] } else { 0.0 };
                    let want = pair(at(2 * p), at(2 * p + 1));
                    assert_eq!(out[r * pairs + p], want, "k {k}, row {r}, pair {p}");
                }
            }
        }
    }
}
