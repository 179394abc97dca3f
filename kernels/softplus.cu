// XHand's activation on CUDA in one pass: torch.nn.Softplus(beta, threshold) with torch's
// branch rule (y = x where beta x > threshold, else log1p(exp(beta x)) / beta), as
// `nn::softplus100`'s CPU kernel and the WGSL nets compute it. beta and threshold come from
// the Rust constants (xhand_simd::{SOFTPLUS_BETA, SOFTPLUS_THRESHOLD}) at launch.

extern "C" __global__ void softplus_f32(const float *x, float *y, unsigned int n, float beta,
                                        float threshold) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        float bx = beta * v;
        y[i] = bx > threshold ? v : log1pf(expf(bx)) / beta;
    }
}
