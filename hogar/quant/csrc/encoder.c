/* The encoder (bert, nomic-bert) ops llama.cpp runs without a KV cache, bit for bit as its CPU backend (ggml-cpu,
 * x86-64 AVX-512 build, llamafile on, flash attention off) computes them for one sequence per llama_decode:
 *
 *   attention, per sequence and head (build_attn_mha with K and V in f32, straight from the projections):
 *     kq = mul_mat(k, q): q is a permuted view (not contiguous), so ggml takes ggml_vec_dot_f32 for every (query, key):
 *          four 16-lane FMA accumulators over 64-value steps, (s0+s2)+(s1+s3), _mm512_reduce_add_ps; the D % 64
 *          leftover in float as GCC compiled ggml's loop: the first (leftover & ~7) products rounded then added, the
 *          last (leftover % 8) fused;
 *     soft_max_ext(kq, mask 0, scale): w = kq*scale + 0; e = ggml_v_expf(w - max) over 16-value chunks, summed in
 *          double chunk by chunk (_mm512_reduce_add_ps), the leftover by glibc expf one by one; p = e * (float)(1/sum);
 *     kqv = mul_mat(cont(v^T), p): p is contiguous, so llamafile's tinyBLAS when n_tokens >= 2, D % 4 == 0 and
 *          n_tokens % 16 == 0 (16 lanes of FMAs over the keys, then _mm512_reduce_add_ps), else ggml_vec_dot_f32;
 *   mean pooling: mul_mat(cont(h^T), inp_mean) with one sequence: ggml_vec_dot_f32 of each embedding dimension with
 *     the column of 1.0f/n_tokens.
 *
 * Compiled with -ffp-contract=off: every FMA is an explicit fmaf / _mm512_fmadd_ps.  The loops run 16 outputs at a
 * time (columns c), each following its own scalar chain, so that the compiler can vectorize across outputs without
 * changing any rounding.  Called through ctypes (hogar/models/encoder_ops.py).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define EN_AVX512 1
#include <immintrin.h>
#endif

#include "f16.h"

/* _mm512_reduce_add_ps as GCC expands it: halves 8+8, 4+4, (0+2, 1+3), 0+1; for 16 columns at once:
 * v[l][c] = lane l of column c */
static inline void reduce16_cols(float v[16][16], float *out) {
    float a[8][16], b[4][16];
    for (int l = 0; l < 8; l++)
        for (int c = 0; c < 16; c++) a[l][c] = v[l + 8][c] + v[l][c];
    for (int l = 0; l < 4; l++)
        for (int c = 0; c < 16; c++) b[l][c] = a[l + 4][c] + a[l][c];
    for (int c = 0; c < 16; c++) out[c] = (b[0][c] + b[2][c]) + (b[1][c] + b[3][c]);
}

static inline float reduce16(const float *v) {
    float a[8], b[4];
    for (int i = 0; i < 8; i++) a[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) b[i] = a[i + 4] + a[i];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* out[q][c] = ggml_vec_dot_f32(n, x[q], column c of Y) for nq <= 4 vectors x[q] and columns c < nc <= 16,
 * Y[t * ld + c] (t < n); out[q] at out + q * ldo.  The vectors run together so that four independent addition chains
 * hide each other's latency. */
__attribute__((unused)) static void vec_dot_cols(const float *const *x, int nq, const float *Y, int64_t ld,
                                                 int64_t n, int nc, float *out, int64_t ldo) {
    const int64_t np = n & ~(int64_t)63;
    float r[4][16] = {{0}};
    if (np) {
        for (int q = 0; q < nq; q++) {
            float s[64][16];
            memset(s, 0, sizeof s);
            for (int64_t i = 0; i < np; i += 64)
                for (int t = 0; t < 64; t++) {
                    const float xv = x[q][i + t];
                    const float *y = Y + (i + t) * ld;
                    for (int c = 0; c < 16; c++) s[t][c] = fmaf(xv, c < nc ? y[c] : 0.0f, s[t][c]);
                }
            float v[16][16];
            for (int l = 0; l < 16; l++)
                for (int c = 0; c < 16; c++) v[l][c] = (s[l][c] + s[32 + l][c]) + (s[16 + l][c] + s[48 + l][c]);
            reduce16_cols(v, r[q]);
        }
    }
    const int64_t nu = np + ((n - np) & ~(int64_t)7);
    int64_t t = np;
    for (; t < nu; t++) {
        const float *y = Y + t * ld;
        float yc[16];
        for (int c = 0; c < 16; c++) yc[c] = c < nc ? y[c] : 0.0f;
        for (int q = 0; q < 4; q++) {
            const float xv = q < nq ? x[q][t] : 0.0f;
            for (int c = 0; c < 16; c++) {
                const float p = xv * yc[c];
                r[q][c] = r[q][c] + p;
            }
        }
    }
    for (; t < n; t++) {
        const float *y = Y + t * ld;
        float yc[16];
        for (int c = 0; c < 16; c++) yc[c] = c < nc ? y[c] : 0.0f;
        for (int q = 0; q < 4; q++) {
            const float xv = q < nq ? x[q][t] : 0.0f;
            for (int c = 0; c < 16; c++) r[q][c] = fmaf(xv, yc[c], r[q][c]);
        }
    }
    for (int q = 0; q < nq; q++) memcpy(out + q * ldo, r[q], (size_t)nc * sizeof(float));
}

/* out[c] = tinyBLAS<16> f32 dot of x and column c of Y (n a multiple of 16) */
__attribute__((unused)) static void tiny_dot_cols(const float *x, const float *Y, int64_t ld, int64_t n, int nc,
                                                  float *out) {
    float acc[16][16];
    memset(acc, 0, sizeof acc);
    for (int64_t i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) {
            const float xv = x[i + l];
            const float *y = Y + (i + l) * ld;
            for (int c = 0; c < nc; c++) acc[l][c] = fmaf(xv, y[c], acc[l][c]);
        }
    float r[16];
    reduce16_cols(acc, r);
    memcpy(out, r, (size_t)nc * sizeof(float));
}

#ifdef EN_AVX512
/* The same two dot products with AVX-512 registers, 16 columns per vector (lanes past nc masked off) */
static inline __m512 reduce_tree(const __m512 *v) { /* per column: reduce16 over the 16 vectors v[l] */
    __m512 a[8], b[4];
    for (int l = 0; l < 8; l++) a[l] = _mm512_add_ps(v[l + 8], v[l]);
    for (int l = 0; l < 4; l++) b[l] = _mm512_add_ps(a[l + 4], a[l]);
    return _mm512_add_ps(_mm512_add_ps(b[0], b[2]), _mm512_add_ps(b[1], b[3]));
}

static inline __m512 np_part(const float *x, const float *Y, int64_t ld, int64_t np, __mmask16 m) {
    __m512 v[16];
    for (int l = 0; l < 16; l++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < np; i += 64) {
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + l]), _mm512_maskz_loadu_ps(m, Y + (i + l) * ld), a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 16 + l]), _mm512_maskz_loadu_ps(m, Y + (i + 16 + l) * ld), a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 32 + l]), _mm512_maskz_loadu_ps(m, Y + (i + 32 + l) * ld), a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 48 + l]), _mm512_maskz_loadu_ps(m, Y + (i + 48 + l) * ld), a3);
        }
        v[l] = _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
    }
    return reduce_tree(v);
}

/* 4 vectors x[0..3] always computed (the caller repeats a valid one where it has fewer), nq <= 4 stored: four
 * independent chains held in registers */
static void vec_dot_cols_avx(const float *const *x, int nq, const float *Y, int64_t ld, int64_t n, int nc,
                             float *out, int64_t ldo) {
    const __mmask16 m = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
    const int64_t np = n & ~(int64_t)63;
    const float *x0 = x[0], *x1 = nq > 1 ? x[1] : x0, *x2 = nq > 2 ? x[2] : x0, *x3 = nq > 3 ? x[3] : x0;
    __m512 r0 = _mm512_setzero_ps(), r1 = r0, r2 = r0, r3 = r0;
    if (np) {
        r0 = np_part(x0, Y, ld, np, m);
        if (nq > 1) r1 = np_part(x1, Y, ld, np, m);
        if (nq > 2) r2 = np_part(x2, Y, ld, np, m);
        if (nq > 3) r3 = np_part(x3, Y, ld, np, m);
    }
    const int64_t nu = np + ((n - np) & ~(int64_t)7);
    int64_t t = np;
    for (; t < nu; t++) {
        const __m512 y = _mm512_maskz_loadu_ps(m, Y + t * ld);
        r0 = _mm512_add_ps(r0, _mm512_mul_ps(_mm512_set1_ps(x0[t]), y));
        r1 = _mm512_add_ps(r1, _mm512_mul_ps(_mm512_set1_ps(x1[t]), y));
        r2 = _mm512_add_ps(r2, _mm512_mul_ps(_mm512_set1_ps(x2[t]), y));
        r3 = _mm512_add_ps(r3, _mm512_mul_ps(_mm512_set1_ps(x3[t]), y));
    }
    for (; t < n; t++) {
        const __m512 y = _mm512_maskz_loadu_ps(m, Y + t * ld);
        r0 = _mm512_fmadd_ps(_mm512_set1_ps(x0[t]), y, r0);
        r1 = _mm512_fmadd_ps(_mm512_set1_ps(x1[t]), y, r1);
        r2 = _mm512_fmadd_ps(_mm512_set1_ps(x2[t]), y, r2);
        r3 = _mm512_fmadd_ps(_mm512_set1_ps(x3[t]), y, r3);
    }
    _mm512_mask_storeu_ps(out, m, r0);
    if (nq > 1) _mm512_mask_storeu_ps(out + ldo, m, r1);
    if (nq > 2) _mm512_mask_storeu_ps(out + 2 * ldo, m, r2);
    if (nq > 3) _mm512_mask_storeu_ps(out + 3 * ldo, m, r3);
}

static void tiny_dot_cols_avx(const float *x, const float *Y, int64_t ld, int64_t n, int nc, float *out) {
    const __mmask16 m = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
    __m512 acc[16];
    for (int l = 0; l < 16; l++) acc[l] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++)
            acc[l] = _mm512_fmadd_ps(_mm512_set1_ps(x[i + l]), _mm512_maskz_loadu_ps(m, Y + (i + l) * ld), acc[l]);
    _mm512_mask_storeu_ps(out, m, reduce_tree(acc));
}
#define vec_dot_cols vec_dot_cols_avx
#define tiny_dot_cols tiny_dot_cols_avx
#endif

/* ---- matmul with F16 weights -------------------------------------------------------------------------------- */

#ifdef EN_AVX512
#include "reduce16.h"

#define EN_RN 6
/* tinyBLAS's tile: 4 weight rows (f16, widened as loaded) x rn <= 6 activation rows; each output one 16-lane FMA
 * chain over K, then _mm512_reduce_add_ps */
static inline float gelu_f16(float v, const float *table);

/* ... and its epilogue: y = r (+ bias) (then GELU where table is given), the ggml_add and ggml_gelu that follow */
static inline void f16_tile(const uint16_t *w, int64_t K, const float *x, int rn, float *y, int64_t M,
                            const float *bias, const float *table) {
    __m512 c[4 * EN_RN];
    for (int i = 0; i < 4 * EN_RN; i++) c[i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
        const __m512 a0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + k)));
        const __m512 a1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + K + k)));
        const __m512 a2 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * K + k)));
        const __m512 a3 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 3 * K + k)));
        for (int j = 0; j < EN_RN; j++) {
            if (j >= rn) break;
            const __m512 b = _mm512_loadu_ps(x + j * K + k);
            c[4 * j] = _mm512_fmadd_ps(a0, b, c[4 * j]);
            c[4 * j + 1] = _mm512_fmadd_ps(a1, b, c[4 * j + 1]);
            c[4 * j + 2] = _mm512_fmadd_ps(a2, b, c[4 * j + 2]);
            c[4 * j + 3] = _mm512_fmadd_ps(a3, b, c[4 * j + 3]);
        }
    }
    float r[4 * EN_RN + 8];
    _mm512_storeu_ps(r, reduce16x16(c));
    _mm512_storeu_ps(r + 16, reduce16x16(c + 16));
    for (int j = 0; j < rn; j++)
        for (int q = 0; q < 4; q++) {
            float v = r[4 * j + q];
            if (bias) v = v + bias[q];
            y[j * M + q] = table ? gelu_f16(v, table) : v;
        }
}
#endif

/* Y[B, M] = X[B, K] @ W[M, K]^T for F16 weights, as llama.cpp computes it on the path tinyBLAS takes (B >= 2,
 * M % 4 == 0, K % 16 == 0: the caller checks): X rounded to f16 (RNE), then per output a 16-lane FMA chain over K
 * and _mm512_reduce_add_ps (the same arithmetic as hogar's fmatmul.c, blocked for the long batches of an encoder:
 * activation rows in blocks that stay in cache while all the weight rows pass); then + bias[m] where given, then
 * ggml_gelu where gelu_table is given. Returns 0; 1 without AVX-512, 2 when out of memory. */
int en_matmul_f16(const uint16_t *W, int64_t M, int64_t K, const float *X, int64_t B, float *Y, const float *bias,
                  const float *gelu_table, int nthreads) {
#ifdef EN_AVX512
    if (nthreads < 1) nthreads = 1;
    const int64_t NB = 24; /* activation rows per block: they stay in cache while all the weight rows pass */
    const int64_t nbb = (B + NB - 1) / NB;
    /* few blocks (short batches): split the weight rows too, so that every thread has work */
    const int64_t MC = nbb >= 2 * nthreads ? M : 64;
    const int64_t nmc = (M + MC - 1) / MC;
    int err = 0;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && B * M * K > (1 << 18))
    {
        /* the block's activations rounded to f16 (as llama.cpp converts src1 to vec_dot_type), widened back */
        float *xf = (float *)aligned_alloc(64, (size_t)((NB * K * 4 + 63) / 64 * 64));
        if (!xf) {
#pragma omp atomic write
            err = 2;
        }
#pragma omp for collapse(2) schedule(static)
        for (int64_t bb = 0; bb < nbb; bb++)
            for (int64_t mc = 0; mc < nmc; mc++) {
                if (!xf) continue;
                const int64_t b0 = bb * NB, b1 = b0 + NB < B ? b0 + NB : B;
                const int64_t m0 = mc * MC, m1 = m0 + MC < M ? m0 + MC : M;
                const int64_t n = (b1 - b0) * K;
                const float *src = X + b0 * K;
                int64_t j = 0;
                for (; j + 16 <= n; j += 16)
                    _mm512_store_ps(xf + j, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(src + j),
                                                                          _MM_FROUND_TO_NEAREST_INT)));
                for (; j < n; j++) xf[j] = h2f_bits(f2h(src[j]));
                for (int64_t m = m0; m < m1; m += 4)
                    for (int64_t b = b0; b < b1; b += EN_RN) {
                        const int rn = b1 - b < EN_RN ? (int)(b1 - b) : EN_RN;
                        f16_tile(W + m * K, K, xf + (b - b0) * K, rn, Y + b * M + m, M, bias ? bias + m : NULL,
                                 gelu_table);
                    }
            }
        free(xf);
    }
    return err;
#else
    (void)W, (void)M, (void)K, (void)X, (void)B, (void)Y, (void)bias, (void)gelu_table, (void)nthreads;
    return 1;
#endif
}

/* ---- LayerNorm --------------------------------------------------------------------------------------------- */

/* llama.cpp's build_norm(LLM_NORM) of (x + add_b) + res (the ggml_adds of a projection's bias and of the residual,
 * each where given): ggml_norm (ggml_vec_sum_f32: a double sum, then float; mean = sum / n in float;
 * ggml_vec_cvar_f32: y = x - mean, the squares summed in double by 16-value chunks (_mm512_reduce_add_ps), the
 * leftover one by one, variance = (float)(sum / n); y *= 1.0f/sqrtf(variance + eps)), then ggml_mul by w and ggml_add
 * of b where given. Rows of n; y may be x. */
static void norm_rows(const float *x, const float *add_b, const float *res, const float *w, const float *b,
                      float *y, int64_t r0, int nr, int64_t n, float eps);

void en_layer_norm(const float *x, const float *add_b, const float *res, const float *w, const float *b, float *y,
                   int64_t rows, int64_t n, float eps, int nthreads) {
    if (nthreads < 1) nthreads = 1;
    const int64_t groups = (rows + 7) / 8;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && rows * n > (1 << 15))
    for (int64_t g = 0; g < groups; g++) {
        const int nr = rows - 8 * g < 8 ? (int)(rows - 8 * g) : 8;
        norm_rows(x, add_b, res, w, b, y, 8 * g, nr, n, eps);
    }
}

/* nr <= 8 rows from r0, their sequential double sums interleaved (each row's own order, eight chains at once) */
static void norm_rows(const float *x, const float *add_b, const float *res, const float *w, const float *b,
                      float *y, int64_t r0, int nr, int64_t n, float eps) {
    const float *xr[8];
    for (int k = 0; k < 8; k++) {
        const int64_t r = r0 + (k < nr ? k : 0);
        xr[k] = x + r * n;
        if (add_b || res) {
            if (k >= nr) {
                xr[k] = xr[0];
                continue;
            }
            float *yr = y + r * n;
            for (int64_t i = 0; i < n; i++) {
                float v = xr[k][i];
                if (add_b) v = v + add_b[i];
                if (res) v = v + res[r * n + i];
                yr[i] = v;
            }
            xr[k] = yr;
        }
    }
    double s[8] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) s[k] += (double)xr[k][i];
    for (int k = 0; k < nr; k++) {
        const float *xk = xr[k];
        float *yr = y + (r0 + k) * n;
        const float mean = (float)s[k] / (float)n;
        double s2 = 0.0;
        int64_t i = 0;
        for (; i + 15 < n; i += 16) {
            float sq[16];
            for (int l = 0; l < 16; l++) {
                const float v = xk[i + l] - mean;
                yr[i + l] = v;
                sq[l] = v * v;
            }
            s2 += (double)reduce16(sq);
        }
        for (; i < n; i++) {
            float v = xk[i] - mean;
            yr[i] = v;
            v *= v;
            s2 += (double)v;
        }
        const float variance = (float)(s2 / (double)n);
        const float scale = 1.0f / sqrtf(variance + eps);
        for (i = 0; i < n; i++) yr[i] = yr[i] * scale;
        if (w)
            for (i = 0; i < n; i++) yr[i] = yr[i] * w[i];
        if (b)
            for (i = 0; i < n; i++) yr[i] = yr[i] + b[i];
    }
}

/* ---- GELU ------------------------------------------------------------------------------------------------ */

static inline float gelu_f16(float v, const float *table) { /* ggml_vec_gelu_f32 with GGML_GELU_FP16 */
    return v <= -10.0f ? 0.0f : v >= 10.0f ? v : table[f2h(v)];
}

/* y = ggml_gelu(x + b) (b: a bias per column, or NULL: ggml_add then ggml_vec_gelu_f32 with GGML_GELU_FP16):
 * 0 at or below -10, x at or above 10, else table[(f16)x] (ggml_table_gelu_f16 widened to f32). Rows of n. */
void en_bias_gelu(const float *x, const float *b, float *y, int64_t rows, int64_t n, const float *table,
                  int nthreads) {
    if (nthreads < 1) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && rows * n > (1 << 15))
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        int64_t i = 0;
#ifdef EN_AVX512
        const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
        for (; i + 16 <= n; i += 16) {
            __m512 v = _mm512_loadu_ps(xr + i);
            if (b) v = _mm512_add_ps(v, _mm512_loadu_ps(b + i));
            const __m512i idx = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
            __m512 g = _mm512_i32gather_ps(idx, table, 4);
            g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, hi, _CMP_GE_OQ), g, v);
            g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, lo, _CMP_LE_OQ), g, _mm512_setzero_ps());
            _mm512_storeu_ps(yr + i, g);
        }
#endif
        for (; i < n; i++) {
            const float v = b ? xr[i] + b[i] : xr[i];
            yr[i] = v <= -10.0f ? 0.0f : v >= 10.0f ? v : table[f2h(v)];
        }
    }
}

#include "ggml_expf.h"

#ifdef EN_AVX512
/* glibc's expf (2.28+, sysdeps/ieee754/flt-32/e_expf.c, its FMA build, which x86-64 CPUs with FMA run), 8 lanes in
 * double: z = x*N/ln2, k = round(z) by the 0x1.8p52 shift, r = fma(InvLn2N, x, -k), s = 2^(k/N) from a 32-entry
 * table, y = (fma(fma(C0, r, C1), r*r, fma(C2, r, 1))) * s, (float)y; 0 below -0x1.9fe368p6 (underflow).
 * Checked equal to glibc 2.36's expf for every float from -0 to -200 (the softmax only meets x <= 0). */
static const uint64_t EXPF_T[32] = {
0x3ff0000000000000ULL,0x3fefd9b0d3158574ULL,0x3fefb5586cf9890fULL,0x3fef9301d0125b51ULL,0x3fef72b83c7d517bULL,
0x3fef54873168b9aaULL,0x3fef387a6e756238ULL,0x3fef1e9df51fdee1ULL,0x3fef06fe0a31b715ULL,0x3feef1a7373aa9cbULL,
0x3feedea64c123422ULL,0x3feece086061892dULL,0x3feebfdad5362a27ULL,0x3feeb42b569d4f82ULL,0x3feeab07dd485429ULL,
0x3feea47eb03a5585ULL,0x3feea09e667f3bcdULL,0x3fee9f75e8ec5f74ULL,0x3feea11473eb0187ULL,0x3feea589994cce13ULL,
0x3feeace5422aa0dbULL,0x3feeb737b0cdc5e5ULL,0x3feec49182a3f090ULL,0x3feed503b23e255dULL,0x3feee89f995ad3adULL,
0x3feeff76f2fb5e47ULL,0x3fef199bdd85529cULL,0x3fef3720dcef9069ULL,0x3fef5818dcfba487ULL,0x3fef7c97337b9b5fULL,
0x3fefa4afa2a490daULL,0x3fefd0765b6e4540ULL};
#define NN 32.0
#define EXPF_N 32.0
static inline __m256 glibc_expf8(__m256 x) {
    const double C0 = 0x1.c6af84b912394p-5 / EXPF_N / EXPF_N / EXPF_N, C1 = 0x1.ebfce50fac4f3p-3 / EXPF_N / EXPF_N,
                 C2 = 0x1.62e42ff0c52d6p-1 / EXPF_N, INVLN2N = 0x1.71547652b82fep+0 * EXPF_N, SHIFT = 0x1.8p+52;
    const __m512d xd = _mm512_cvtps_pd(x);
    const __m512d z = _mm512_mul_pd(_mm512_set1_pd(INVLN2N), xd);
    __m512d kd = _mm512_add_pd(z, _mm512_set1_pd(SHIFT));
    const __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT));
    const __m512d r = _mm512_fmsub_pd(_mm512_set1_pd(INVLN2N), xd, kd);
    __m512i t = _mm512_i64gather_epi64(_mm512_and_si512(ki, _mm512_set1_epi64(31)), (const void *)EXPF_T, 8);
    t = _mm512_add_epi64(t, _mm512_slli_epi64(ki, 47));
    const __m512d zz = _mm512_fmadd_pd(_mm512_set1_pd(C0), r, _mm512_set1_pd(C1));
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(_mm512_set1_pd(C2), r, _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(zz, r2, y);
    y = _mm512_mul_pd(y, _mm512_castsi512_pd(t));
    const __mmask8 under = _mm256_cmp_ps_mask(x, _mm256_set1_ps(-0x1.9fe368p6f), _CMP_LT_OQ);
    return _mm256_mask_blend_ps(under, _mm512_cvtpd_ps(y), _mm256_setzero_ps());
}
#endif

/* y[i] = the softmax leftover's expf of x[i] (x <= 0): for tests */
void en_expf(const float *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef EN_AVX512
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, glibc_expf8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = expf(x[i]);
}

/* ggml_compute_forward_soft_max_f32 on one row of n logits (mask all zero, no ALiBi, no sinks), in place */
static void soft_max_row(float *w, int64_t n, float scale) {
    for (int64_t j = 0; j < n; j++) w[j] = w[j] * scale + 0.0f;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = mx > w[j] ? mx : w[j];
    double sum = 0.0;
    int64_t j = 0;
    for (; j + 15 < n; j += 16) {
        float e[16];
#ifdef EN_AVX512
        _mm512_storeu_ps(e, v_expf(_mm512_sub_ps(_mm512_loadu_ps(w + j), _mm512_set1_ps(mx))));
#else
        for (int l = 0; l < 16; l++) e[l] = expf_lane(w[j + l] - mx);
#endif
        memcpy(w + j, e, sizeof e);
        sum += (double)reduce16(e);
    }
#ifdef EN_AVX512
    if (j < n) { /* the leftover: glibc's expf, as ggml calls it, 8 lanes at a time */
        float e[16];
        const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps((__mmask16)((1u << (n - j)) - 1), w + j),
                                       _mm512_set1_ps(mx));
        _mm256_storeu_ps(e, glibc_expf8(_mm512_castps512_ps256(d)));
        _mm256_storeu_ps(e + 8, glibc_expf8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1))));
        for (int l = 0; j < n; j++, l++) {
            sum += (double)e[l];
            w[j] = e[l];
        }
    }
#endif
    for (; j < n; j++) {
        const float val = expf(w[j] - mx);
        sum += (double)val;
        w[j] = val;
    }
    const float inv = (float)(1.0 / sum);
    for (j = 0; j < n; j++) w[j] *= inv;
}

/* One head of one sequence: q, k, v [L rows of stride ld] (the head's D values at the start of each row),
 * out [L rows of stride ld]; scratch: D*Lp + L*Lp floats (Lp = L rounded up to 16). */
static void head_attention(const float *q, const float *k, const float *v, float *out, int64_t L, int64_t D,
                           int64_t ld, float scale, float *scratch) {
    const int64_t Lp = (L + 15) & ~(int64_t)15;
    float *kT = scratch, *p = scratch + D * Lp;
    for (int64_t d = 0; d < D; d++) {
        for (int64_t j = 0; j < L; j++) kT[d * Lp + j] = k[j * ld + d];
        for (int64_t j = L; j < Lp; j++) kT[d * Lp + j] = 0.0f;
    }
    for (int64_t i0 = 0; i0 < L; i0 += 4) {
        const int nq = L - i0 < 4 ? (int)(L - i0) : 4;
        const float *xs[4];
        for (int qi = 0; qi < nq; qi++) xs[qi] = q + (i0 + qi) * ld;
        for (int64_t j0 = 0; j0 < L; j0 += 16) {
            const int nc = L - j0 < 16 ? (int)(L - j0) : 16;
            vec_dot_cols(xs, nq, kT + j0, Lp, D, nc, p + i0 * Lp + j0, Lp);
        }
        for (int qi = 0; qi < nq; qi++) soft_max_row(p + (i0 + qi) * Lp, L, scale);
    }
    const int tiny = L >= 2 && D % 4 == 0 && L % 16 == 0;
    for (int64_t i0 = 0; i0 < L; i0 += 4) {
        const int nq = L - i0 < 4 ? (int)(L - i0) : 4;
        const float *xs[4];
        for (int qi = 0; qi < nq; qi++) xs[qi] = p + (i0 + qi) * Lp;
        for (int64_t d0 = 0; d0 < D; d0 += 16) {
            const int nc = D - d0 < 16 ? (int)(D - d0) : 16;
            if (tiny) {
                for (int qi = 0; qi < nq; qi++)
                    tiny_dot_cols(xs[qi], v + d0, ld, L, nc, out + (i0 + qi) * ld + d0);
            } else {
                vec_dot_cols(xs, nq, v + d0, ld, L, nc, out + i0 * ld + d0, ld);
            }
        }
    }
}

/* Attention of n_seq packed sequences: q, k, v, out [n_tokens, H * D] (rows of the projections, sequence after
 * sequence); seq_start[s], seq_len[s]. Every token attends to every token of its own sequence.
 * Returns 0, or 2 when out of memory. */
int en_attention(const float *q, const float *k, const float *v, float *out, const int64_t *seq_start,
                 const int64_t *seq_len, int64_t n_seq, int64_t H, int64_t D, float scale, int nthreads) {
    int64_t max_len = 0;
    for (int64_t s = 0; s < n_seq; s++) max_len = seq_len[s] > max_len ? seq_len[s] : max_len;
    const int64_t Lp = (max_len + 15) & ~(int64_t)15;
    const size_t scratch = (size_t)((D + max_len) * Lp) * sizeof(float);
    if (nthreads < 1) nthreads = 1;
    int err = 0;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        float *buf = (float *)malloc(scratch > 0 ? scratch : 1);
        if (!buf) {
#pragma omp atomic write
            err = 2;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t w = 0; w < n_seq * H; w++) {
            if (!buf) continue;
            const int64_t s = w / H, h = w % H;
            const int64_t off = seq_start[s] * H * D + h * D;
            head_attention(q + off, k + off, v + off, out + off, seq_len[s], D, H * D, scale, buf);
        }
        free(buf);
    }
    return err;
}

/* Mean pooling of n_seq packed sequences: x [n_tokens, E] -> out [n_seq, E], each dimension the ggml_vec_dot_f32 of
 * its column with 1.0f/len */
int en_mean_pool(const float *x, float *out, const int64_t *seq_start, const int64_t *seq_len, int64_t n_seq,
                 int64_t E, int nthreads) {
    int64_t max_len = 0;
    for (int64_t s = 0; s < n_seq; s++) max_len = seq_len[s] > max_len ? seq_len[s] : max_len;
    if (nthreads < 1) nthreads = 1;
    int err = 0;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && n_seq > 1)
    {
        float *mean = (float *)malloc((size_t)(max_len > 0 ? max_len : 1) * sizeof(float));
        if (!mean) {
#pragma omp atomic write
            err = 2;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t s = 0; s < n_seq; s++) {
            if (!mean) continue;
            const int64_t L = seq_len[s];
            const float div = 1.0f / (float)L;
            for (int64_t j = 0; j < L; j++) mean[j] = div;
            for (int64_t e0 = 0; e0 < E; e0 += 16) {
                const int nc = E - e0 < 16 ? (int)(E - e0) : 16;
                const float *xs[1] = {mean};
                vec_dot_cols(xs, 1, x + seq_start[s] * E + e0, E, L, nc, out + s * E + e0, E);
            }
        }
        free(mean);
    }
    return err;
}
