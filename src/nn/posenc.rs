//! XHand's positional encoding (`models/PostionalEncoding.py`, `PostionalEncoding(min_deg=0,
//! max_deg=1, scale=0.1)`): a scaled copy of the point plus sines of its projections on 21
//! icosahedron-type directions at frequencies 1 and 2.

/// Input scale applied before encoding (`scale=0.1`).
pub const PE_SCALE: f32 = 0.1;
/// Number of projection directions.
pub const PE_NUM_DIRS: usize = 21;
/// Frequencies `2^0, 2^1` (`min_deg=0`, `max_deg=1`).
pub const PE_FREQS: [f32; 2] = [1.0, 2.0];
/// Output width: 3 + 2 · 21 · 2 = 87.
pub const PE_DIM: usize = 3 + 2 * PE_NUM_DIRS * PE_FREQS.len();

/// The 21 unit directions of `PostionalEncoding.py` L59-81, one per row.
pub const PE_DIRS: [[f32; 3]; PE_NUM_DIRS] = [
    [0.8506508, 0.0, 0.5257311],
    [0.809017, 0.5, 0.309017],
    [0.5257311, 0.8506508, 0.0],
    [1.0, 0.0, 0.0],
    [0.809017, 0.5, -0.309017],
    [0.8506508, 0.0, -0.5257311],
    [0.309017, 0.809017, -0.5],
    [0.0, 0.5257311, -0.8506508],
    [0.5, 0.309017, -0.809017],
    [0.0, 1.0, 0.0],
    [-0.5257311, 0.8506508, 0.0],
    [-0.309017, 0.809017, -0.5],
    [0.0, 0.5257311, 0.8506508],
    [-0.309017, 0.809017, 0.5],
    [0.309017, 0.809017, 0.5],
    [0.5, 0.309017, 0.809017],
    [0.5, -0.309017, 0.809017],
    [0.0, 0.0, 1.0],
    [-0.5, 0.309017, 0.809017],
    [-0.809017, 0.5, 0.309017],
    [-0.809017, 0.5, -0.309017],
];

/// Encodes one point into `out` (87 values): `[s, sin(xb), sin(xb + π/2)]` with
/// `s = 0.1 p` and `xb[2j + f] = (s · d_j) · freq_f` (direction-major). The second half is
/// `sin(x + π/2)` as XHand writes it, not `cos`.
pub fn encode_into(p: [f32; 3], out: &mut [f32]) {
    debug_assert_eq!(out.len(), PE_DIM);
    let s = [p[0] * PE_SCALE, p[1] * PE_SCALE, p[2] * PE_SCALE];
    out[..3].copy_from_slice(&s);
    let half = PE_NUM_DIRS * PE_FREQS.len();
    for (j, d) in PE_DIRS.iter().enumerate() {
        let proj = s[0] * d[0] + s[1] * d[1] + s[2] * d[2];
        for (f, freq) in PE_FREQS.iter().enumerate() {
            let xb = proj * freq;
            let k = 2 * j + f;
            out[3 + k] = xb;
            out[3 + half + k] = xb + 0.5 * std::f32::consts::PI;
        }
    }
    // All 84 sines in one vectorised pass (the scalar `sin` was half the CPU renderer's
    // input time).
    xhand_simd::sin_in_place(&mut out[3..]);
}

/// Encodes one point.
pub fn encode(p: [f32; 3]) -> [f32; PE_DIM] {
    let mut out = [0.0; PE_DIM];
    encode_into(p, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_formula_with_std_sine() {
        for p in [
            [0.0, 0.0, 0.0],
            [0.03, -0.12, 0.4],
            [12.0, -30.0, 5.5],
            [-1.0, 1.0, 0.25],
        ] {
            let got = encode(p);
            let s = p.map(|v| v * PE_SCALE);
            assert_eq!(&got[..3], &s);
            let half = PE_NUM_DIRS * PE_FREQS.len();
            for (j, d) in PE_DIRS.iter().enumerate() {
                let proj = s[0] * d[0] + s[1] * d[1] + s[2] * d[2];
                for (f, freq) in PE_FREQS.iter().enumerate() {
                    let xb = proj * freq;
                    let k = 2 * j + f;
                    assert!((got[3 + k] - xb.sin()).abs() < 2e-7, "{p:?} {k}");
                    let shifted = (xb + 0.5 * std::f32::consts::PI).sin();
                    assert!((got[3 + half + k] - shifted).abs() < 2e-7, "{p:?} {k}");
                }
            }
        }
    }
}
