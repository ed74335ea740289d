/* Matmuls with F32, F16 and BF16 weights, bit for bit as llama.cpp's CPU backend (ggml-cpu, x86-64 AVX-512 build,
 * llamafile on) computes them: Y[B, n_out] = X[B, n_in] @ W[n_out, n_in]^T, W row-major in its GGUF encoding.
 *
 * What ggml runs (ggml_compute_forward_mul_mat; no repacking, tiling or AMX path takes these types on x86):
 *   - the activations are first rounded to the weight's vec_dot_type: F16 (RNE, _mm512_cvtps_ph) for F16 weights,
 *     BF16 (GGML_FP32_TO_BF16: RNE, NaN made quiet) for BF16 weights, unchanged for F32;
 *   - B >= 2, n_out % 4 == 0 and n_in % KN == 0: llamafile's tinyBLAS.  Each output is one KN-value-wide
 *     accumulator chain over n_in in steps of KN, then _mm512_reduce_add_ps.  F32 and F16: KN = 16, acc =
 *     fma(w, x, acc) on f32 values.  BF16 where the CPU has AVX512_BF16: KN = 32, acc = _mm512_dpbf16_ps(acc, w, x)
 *     (lane l takes the pair 2l+1 then 2l, each an f32 FMA with denormals flushed); without it: KN = 16 FMAs on the
 *     bf16 values widened to f32;
 *   - otherwise (one row, or shapes tinyBLAS refuses) ggml_vec_dot_{f32,f16,bf16} per output:
 *       f32/f16: four 16-lane FMA accumulators over 64-value steps, (s0+s2)+(s1+s3), reduce; the n_in % 64 leftover
 *         products added after: f16 in double (float products); f32 in float, as GCC compiled ggml's loop: the
 *         first (leftover & ~7) products rounded then added, the last (leftover % 8) fused (fmaf);
 *       bf16 (AVX512_BF16): two dpbf16 accumulators over 64-value steps (values 0-31 and 32-63), each reduced and
 *         added in double, then the leftover in double; without AVX512_BF16: two 16-lane accumulators over 32-value
 *         steps, likewise.
 * How ggml splits the work among threads changes no result, so ours is free.
 *
 * Compiled with -ffp-contract=off: every FMA here is an explicit fmaf / _mm512_fmadd_ps.  The scalar code (used
 * without AVX-512, or when FM_SCALAR asks for it: the tests) computes the same roundings lane by lane.
 * Called through ctypes (hogar/quant/fkernels.py).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define FM_AVX512 1
#include <immintrin.h>
#endif
#if defined(FM_AVX512) && defined(__AVX512BF16__)
#define FM_AVX512BF16 1
#endif

#include "f16.h"

enum { FT_F32 = 0, FT_F16 = 1, FT_BF16 = 30 };
enum {
    FM_ROWS_ALONE = 1, /* every activation row on its own (ggml_vec_dot), whatever B */
    FM_SCALAR = 2,     /* the portable code even where AVX-512 is there (tests) */
    FM_BF16_PAIRS = 4, /* BF16: the AVX512_BF16 order (dpbf16 pairs) ... */
    FM_BF16_LANES = 8, /* ... or the AVX512F one (16 f32 lanes); neither: this build's CPU decides */
};

/* 1 where this build's default BF16 order is dpbf16's (the CPU has AVX512_BF16, or no AVX-512 at all: the scalar
 * code then follows the reference machine's order) */
int fm_bf16_pairs(void) {
#if defined(FM_AVX512) && !defined(FM_AVX512BF16)
    return 0;
#else
    return 1;
#endif
}

int fm_avx512(void) {
#ifdef FM_AVX512
    return 1;
#else
    return 0;
#endif
}

static inline float bf16_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

static inline uint16_t f32_bf16(float f) { /* GGML_FP32_TO_BF16 */
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* _mm512_reduce_add_ps as GCC expands it: halves 8+8, 4+4, (0+2, 1+3), 0+1 */
static inline float reduce16(const float *v) {
    float a[8], b[4];
    for (int i = 0; i < 8; i++) a[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) b[i] = a[i + 4] + a[i];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* one VDPBF16PS step of a lane: acc + a*b as an FMA with denormal inputs read as zero and a denormal result
 * flushed to zero (the product of two bf16 values is exact in f32) */
static inline float ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
static inline float dp_step(float acc, float a, float b) { return ftz(fmaf(ftz(a), ftz(b), ftz(acc))); }

/* ---- scalar dot products, one output each ------------------------------------------------------------------ */

/* tinyBLAS, KN = 16: w and x as f32 values */
static float dot_tiny16(const float *w, const float *x, int64_t n) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = fmaf(w[i + l], x[i + l], acc[l]);
    return reduce16(acc);
}

/* tinyBLAS, BF16 with AVX512_BF16 (KN = 32) */
static float dot_tiny_pairs(const uint16_t *w, const uint16_t *x, int64_t n) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 32)
        for (int l = 0; l < 16; l++) {
            acc[l] = dp_step(acc[l], bf16_f32(w[i + 2 * l + 1]), bf16_f32(x[i + 2 * l + 1]));
            acc[l] = dp_step(acc[l], bf16_f32(w[i + 2 * l]), bf16_f32(x[i + 2 * l]));
        }
    return reduce16(acc);
}

/* ggml_vec_dot_f32 / ggml_vec_dot_f16's vector part: four 16-lane accumulators over 64-value steps */
static float dot_vec64(const float *w, const float *x, int64_t np) {
    float s[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64)
        for (int a = 0; a < 4; a++)
            for (int l = 0; l < 16; l++) s[a][l] = fmaf(w[i + 16 * a + l], x[i + 16 * a + l], s[a][l]);
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (s[0][l] + s[2][l]) + (s[1][l] + s[3][l]);
    return reduce16(v);
}

/* ggml_vec_dot_f32's leftover, in float: rounded products then fused ones (see the top of the file) */
static float tail_f32(float sum, const float *w, const float *x, int64_t np, int64_t n) {
    const int64_t nu = np + ((n - np) & ~(int64_t)7);
    int64_t i = np;
    for (; i < nu; i++) {
        const float p = w[i] * x[i];
        sum = sum + p;
    }
    for (; i < n; i++) sum = fmaf(w[i], x[i], sum);
    return sum;
}

/* ggml_vec_dot_f16's leftover, in double (w, x: the f16 values as f32) */
static float tail_double(double sum, const float *w, const float *x, int64_t np, int64_t n) {
    for (int64_t i = np; i < n; i++) sum += (double)(w[i] * x[i]);
    return (float)sum;
}

/* ggml_vec_dot_bf16, AVX512_BF16 order */
static float dot_vec_pairs(const uint16_t *w, const uint16_t *x, int64_t n) {
    float c[2][16] = {{0}};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 16; l++) {
                const uint16_t *wp = w + i + 32 * h + 2 * l, *xp = x + i + 32 * h + 2 * l;
                c[h][l] = dp_step(c[h][l], bf16_f32(wp[1]), bf16_f32(xp[1]));
                c[h][l] = dp_step(c[h][l], bf16_f32(wp[0]), bf16_f32(xp[0]));
            }
    double sum = 0.0;
    sum += (double)reduce16(c[0]);
    sum += (double)reduce16(c[1]);
    for (; i < n; i++) sum += (double)(bf16_f32(w[i]) * bf16_f32(x[i]));
    return (float)sum;
}

/* ggml_vec_dot_bf16, AVX512F order (w, x: the bf16 values as f32) */
static float dot_vec_lanes(const float *w, const float *x, int64_t n) {
    float c[2][16] = {{0}};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 16; l++) c[h][l] = fmaf(w[i + 16 * h + l], x[i + 16 * h + l], c[h][l]);
    double sum = 0.0;
    sum += (double)reduce16(c[0]);
    sum += (double)reduce16(c[1]);
    for (; i < n; i++) sum += (double)(w[i] * x[i]);
    return (float)sum;
}

/* ---- AVX-512 ------------------------------------------------------------------------------------------------ */

#ifdef FM_AVX512
#include "reduce16.h"

static inline __m512 load_h(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 load_b(const uint16_t *p) { /* 16 bf16 values widened to f32 */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* tinyBLAS tile, KN = 16: 4 weight rows (f32, stride lw) x RN activation rows (stride lx) -> y[c * ly + r]
 * (RN <= 8, a constant where it is inlined) */
static inline __attribute__((always_inline)) void tile16(int RN, const float *w, int64_t lw, const float *x,
                                                          int64_t lx, int64_t n, float *y, int64_t ly) {
    __m512 c[32];
    for (int i = 0; i < 32; i++) c[i] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 a0 = _mm512_loadu_ps(w + i), a1 = _mm512_loadu_ps(w + lw + i);
        const __m512 a2 = _mm512_loadu_ps(w + 2 * lw + i), a3 = _mm512_loadu_ps(w + 3 * lw + i);
        for (int j = 0; j < RN; j++) {
            const __m512 b = _mm512_loadu_ps(x + j * lx + i);
            c[4 * j] = _mm512_fmadd_ps(a0, b, c[4 * j]);
            c[4 * j + 1] = _mm512_fmadd_ps(a1, b, c[4 * j + 1]);
            c[4 * j + 2] = _mm512_fmadd_ps(a2, b, c[4 * j + 2]);
            c[4 * j + 3] = _mm512_fmadd_ps(a3, b, c[4 * j + 3]);
        }
    }
    float r[32];
    _mm512_storeu_ps(r, reduce16x16(c));
    if (RN > 4) _mm512_storeu_ps(r + 16, reduce16x16(c + 16));
    for (int j = 0; j < RN; j++)
        for (int k = 0; k < 4; k++) y[j * ly + k] = r[4 * j + k];
}

/* all the activation rows [0, nb) against 4 weight rows: tiles of 6, then what is left */
static void tiles16(const float *w, int64_t lw, const float *x, int64_t lx, int64_t nb, int64_t n, float *y,
                    int64_t ly) {
    int64_t b = 0;
    for (; b + 6 <= nb; b += 6) tile16(6, w, lw, x + b * lx, lx, n, y + b * ly, ly);
    switch (nb - b) {
    case 5: tile16(5, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 4: tile16(4, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 3: tile16(3, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 2: tile16(2, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 1: tile16(1, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    default: break;
    }
}
#endif

#ifdef FM_AVX512BF16
static inline __m512bh load_bh(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512((const void *)p); }

/* tinyBLAS tile, BF16 pairs (KN = 32): 4 weight rows x RN activation rows (bf16), as tile16 */
static inline __attribute__((always_inline)) void tile_pairs(int RN, const uint16_t *w, int64_t lw,
                                                              const uint16_t *x, int64_t lx, int64_t n, float *y,
                                                              int64_t ly) {
    __m512 c[32];
    for (int i = 0; i < 32; i++) c[i] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 32) {
        const __m512bh a0 = load_bh(w + i), a1 = load_bh(w + lw + i), a2 = load_bh(w + 2 * lw + i),
                       a3 = load_bh(w + 3 * lw + i);
        for (int j = 0; j < RN; j++) {
            const __m512bh b = load_bh(x + j * lx + i);
            c[4 * j] = _mm512_dpbf16_ps(c[4 * j], a0, b);
            c[4 * j + 1] = _mm512_dpbf16_ps(c[4 * j + 1], a1, b);
            c[4 * j + 2] = _mm512_dpbf16_ps(c[4 * j + 2], a2, b);
            c[4 * j + 3] = _mm512_dpbf16_ps(c[4 * j + 3], a3, b);
        }
    }
    float r[32];
    _mm512_storeu_ps(r, reduce16x16(c));
    if (RN > 4) _mm512_storeu_ps(r + 16, reduce16x16(c + 16));
    for (int j = 0; j < RN; j++)
        for (int k = 0; k < 4; k++) y[j * ly + k] = r[4 * j + k];
}

static void tiles_pairs(const uint16_t *w, int64_t lw, const uint16_t *x, int64_t lx, int64_t nb, int64_t n,
                        float *y, int64_t ly) {
    int64_t b = 0;
    for (; b + 6 <= nb; b += 6) tile_pairs(6, w, lw, x + b * lx, lx, n, y + b * ly, ly);
    switch (nb - b) {
    case 5: tile_pairs(5, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 4: tile_pairs(4, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 3: tile_pairs(3, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 2: tile_pairs(2, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    case 1: tile_pairs(1, w, lw, x + b * lx, lx, n, y + b * ly, ly); break;
    default: break;
    }
}
#endif

static void *alloc64(size_t bytes) { /* 64-byte aligned: the vector loads never straddle cache lines */
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* ---- the matmul --------------------------------------------------------------------------------------------- */

typedef struct {
    int type, pairs, simd;
    const uint8_t *W;
    int64_t n_out, n; /* n = n_in */
    const float *xf;  /* activations as f32 values (F16: rounded through f16; BF16 lanes: through bf16) */
    const uint16_t *xb; /* BF16 pairs: the activations in bf16 */
} job;

/* weight row r as f32 values into dst (F16, BF16 widened exactly) */
static void widen_row(const job *J, int64_t r, float *dst) {
    const int64_t n = J->n;
    if (J->type == FT_F32) {
        memcpy(dst, (const float *)J->W + r * n, (size_t)n * sizeof(float));
    } else if (J->type == FT_F16) {
        const uint16_t *s = (const uint16_t *)J->W + r * n;
        int64_t i = 0;
#ifdef FM_AVX512
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_h(s + i));
#endif
        for (; i < n; i++) dst[i] = h2f_bits(s[i]);
    } else {
        const uint16_t *s = (const uint16_t *)J->W + r * n;
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_f32(s[i]);
    }
}

/* ggml_vec_dot for weight rows [r0, r1) against activation row b -> y (n_out values); wbuf: scratch for rows
 * widened to f32 (16 * n floats) */
static void vec_rows(const job *J, int64_t r0, int64_t r1, const float *xf, const uint16_t *xb, float *y,
                     float *wbuf) {
    const int64_t n = J->n, np = n - n % 64;
    if (J->type == FT_BF16 && J->pairs) {
        const uint16_t *W = (const uint16_t *)J->W;
#ifdef FM_AVX512BF16
        if (J->simd) {
            for (int64_t rb = r0; rb < r1; rb += 16) {
                const int nr = r1 - rb < 16 ? (int)(r1 - rb) : 16;
                __m512 c1[16], c2[16];
                for (int k = 0; k < 16; k++) c1[k] = c2[k] = _mm512_setzero_ps();
                for (int k = 0; k < nr; k++) {
                    const uint16_t *w = W + (rb + k) * n;
                    __m512 a = _mm512_setzero_ps(), b = a;
                    for (int64_t i = 0; i < np; i += 64) {
                        a = _mm512_dpbf16_ps(a, load_bh(w + i), load_bh(xb + i));
                        b = _mm512_dpbf16_ps(b, load_bh(w + i + 32), load_bh(xb + i + 32));
                    }
                    c1[k] = a, c2[k] = b;
                }
                float s1[16], s2[16];
                _mm512_storeu_ps(s1, reduce16x16(c1));
                _mm512_storeu_ps(s2, reduce16x16(c2));
                for (int k = 0; k < nr; k++) {
                    const uint16_t *w = W + (rb + k) * n;
                    double sum = 0.0;
                    sum += (double)s1[k];
                    sum += (double)s2[k];
                    for (int64_t i = np; i < n; i++) sum += (double)(bf16_f32(w[i]) * bf16_f32(xb[i]));
                    y[rb + k] = (float)sum;
                }
            }
            return;
        }
#endif
        for (int64_t r = r0; r < r1; r++) y[r] = dot_vec_pairs(W + r * n, xb, n);
        return;
    }
    if (J->type == FT_BF16) { /* AVX512F order */
#ifdef FM_AVX512
        if (J->simd) {
            const uint16_t *W = (const uint16_t *)J->W;
            const int64_t n32 = n - n % 32;
            for (int64_t rb = r0; rb < r1; rb += 16) {
                const int nr = r1 - rb < 16 ? (int)(r1 - rb) : 16;
                __m512 c1[16], c2[16];
                for (int k = 0; k < 16; k++) c1[k] = c2[k] = _mm512_setzero_ps();
                for (int k = 0; k < nr; k++) {
                    const uint16_t *w = W + (rb + k) * n;
                    __m512 a = _mm512_setzero_ps(), b = a;
                    for (int64_t i = 0; i < n32; i += 32) { /* bf16 products are exact: mul + add == fma */
                        a = _mm512_fmadd_ps(load_b(w + i), _mm512_loadu_ps(xf + i), a);
                        b = _mm512_fmadd_ps(load_b(w + i + 16), _mm512_loadu_ps(xf + i + 16), b);
                    }
                    c1[k] = a, c2[k] = b;
                }
                float s1[16], s2[16];
                _mm512_storeu_ps(s1, reduce16x16(c1));
                _mm512_storeu_ps(s2, reduce16x16(c2));
                for (int k = 0; k < nr; k++) {
                    const uint16_t *w = W + (rb + k) * n;
                    double sum = 0.0;
                    sum += (double)s1[k];
                    sum += (double)s2[k];
                    for (int64_t i = n32; i < n; i++) sum += (double)(bf16_f32(w[i]) * xf[i]);
                    y[rb + k] = (float)sum;
                }
            }
            return;
        }
#endif
        for (int64_t r = r0; r < r1; r++) {
            widen_row(J, r, wbuf);
            y[r] = dot_vec_lanes(wbuf, xf, n);
        }
        return;
    }
#ifdef FM_AVX512
    if (J->simd) {
        for (int64_t rb = r0; rb < r1; rb += 16) {
            const int nr = r1 - rb < 16 ? (int)(r1 - rb) : 16;
            __m512 v[16];
            for (int k = 0; k < 16; k++) v[k] = _mm512_setzero_ps();
            for (int k = 0; k < nr; k++) {
                __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
                if (J->type == FT_F16) {
                    const uint16_t *w = (const uint16_t *)J->W + (rb + k) * n;
                    for (int64_t i = 0; i < np; i += 64) {
                        s0 = _mm512_fmadd_ps(load_h(w + i), _mm512_loadu_ps(xf + i), s0);
                        s1 = _mm512_fmadd_ps(load_h(w + i + 16), _mm512_loadu_ps(xf + i + 16), s1);
                        s2 = _mm512_fmadd_ps(load_h(w + i + 32), _mm512_loadu_ps(xf + i + 32), s2);
                        s3 = _mm512_fmadd_ps(load_h(w + i + 48), _mm512_loadu_ps(xf + i + 48), s3);
                    }
                } else {
                    const float *w = (const float *)J->W + (rb + k) * n;
                    for (int64_t i = 0; i < np; i += 64) {
                        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(xf + i), s0);
                        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(xf + i + 16), s1);
                        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(xf + i + 32), s2);
                        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(xf + i + 48), s3);
                    }
                }
                v[k] = _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3));
            }
            float red[16];
            _mm512_storeu_ps(red, reduce16x16(v));
            for (int k = 0; k < nr; k++) {
                if (np == n) {
                    y[rb + k] = red[k];
                    continue;
                }
                const int64_t r = rb + k;
                if (J->type == FT_F16) {
                    const uint16_t *w = (const uint16_t *)J->W + r * n;
                    double sum = (double)red[k];
                    for (int64_t i = np; i < n; i++) sum += (double)(h2f_bits(w[i]) * xf[i]);
                    y[r] = (float)sum;
                } else {
                    y[r] = tail_f32(red[k], (const float *)J->W + r * n, xf, np, n);
                }
            }
        }
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++) {
        const float *w = J->type == FT_F32 ? (const float *)J->W + r * n : wbuf;
        if (J->type != FT_F32) widen_row(J, r, wbuf);
        const float s = dot_vec64(w, xf, np);
        y[r] = J->type == FT_F32 ? tail_f32(s, w, xf, np, n) : tail_double((double)s, w, xf, np, n);
    }
}

/* tinyBLAS for weight rows [r0, r1) (a multiple of 4 apart) against activation rows [b0, b1) -> Y */
static void tiny_rows(const job *J, int64_t r0, int64_t r1, int64_t b0, int64_t b1, float *Y, float *wbuf) {
    const int64_t n = J->n, n_out = J->n_out;
    for (int64_t rb = r0; rb < r1; rb += 4) {
        if (J->type == FT_BF16 && J->pairs) {
            const uint16_t *w = (const uint16_t *)J->W + rb * n;
#ifdef FM_AVX512BF16
            if (J->simd) {
                tiles_pairs(w, n, J->xb + b0 * n, n, b1 - b0, n, Y + b0 * n_out + rb, n_out);
                continue;
            }
#endif
            for (int64_t b = b0; b < b1; b++)
                for (int k = 0; k < 4; k++) Y[b * n_out + rb + k] = dot_tiny_pairs(w + k * n, J->xb + b * n, n);
            continue;
        }
        const float *w = wbuf;
        if (J->type == FT_F32) {
            w = (const float *)J->W + rb * n;
        } else {
            for (int k = 0; k < 4; k++) widen_row(J, rb + k, wbuf + k * n);
        }
#ifdef FM_AVX512
        if (J->simd) {
            tiles16(w, n, J->xf + b0 * n, n, b1 - b0, n, Y + b0 * n_out + rb, n_out);
            continue;
        }
#endif
        for (int64_t b = b0; b < b1; b++)
            for (int k = 0; k < 4; k++) Y[b * n_out + rb + k] = dot_tiny16(w + k * n, J->xf + b * n, n);
    }
}

/* Y[B, n_out] = X[B, n_in] @ W[n_out, n_in]^T for a W of ggml type `type` (0 F32, 1 F16, 30 BF16), as llama.cpp
 * computes it (see the top of the file); flags: FM_*.  Returns 0, 1 for bad arguments, 2 when out of memory. */
int fm_matmul(int type, const void *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
              int nthreads, int flags) {
    if ((type != FT_F32 && type != FT_F16 && type != FT_BF16) || n_out <= 0 || n_in <= 0 || B <= 0) return 1;
    job J = {type, 0, 0, (const uint8_t *)W, n_out, n_in, X, NULL};
    J.pairs = type == FT_BF16 && (flags & FM_BF16_PAIRS ? 1 : flags & FM_BF16_LANES ? 0 : fm_bf16_pairs());
#ifdef FM_AVX512
    J.simd = !(flags & FM_SCALAR);
#endif
    const int64_t kn = J.pairs ? 32 : 16;
    const int tiny = B >= 2 && !(flags & FM_ROWS_ALONE) && n_out % 4 == 0 && n_in % kn == 0;
    if (nthreads < 1) nthreads = 1;
    if (B * n_out * n_in < (1 << 16)) nthreads = 1;

    float *xf = NULL;
    uint16_t *xb = NULL;
    if (type == FT_F16 || (type == FT_BF16 && !J.pairs)) {
        xf = (float *)alloc64((size_t)(B * n_in) * sizeof(float));
        if (!xf) return 2;
        const int64_t N = B * n_in;
        int64_t i = 0;
        if (type == FT_F16) {
#ifdef FM_AVX512
            for (; i + 16 <= N; i += 16) {
                const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(X + i), _MM_FROUND_TO_NEAREST_INT);
                _mm512_storeu_ps(xf + i, _mm512_cvtph_ps(h));
            }
#endif
            for (; i < N; i++) xf[i] = h2f_bits(f2h(X[i]));
        } else {
            for (; i < N; i++) xf[i] = bf16_f32(f32_bf16(X[i]));
        }
        J.xf = xf;
    } else if (type == FT_BF16) {
        xb = (uint16_t *)alloc64((size_t)(B * n_in) * sizeof(uint16_t));
        if (!xb) return 2;
        for (int64_t i = 0; i < B * n_in; i++) xb[i] = f32_bf16(X[i]);
        J.xb = xb;
    }

    int err = 0;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        float *wbuf = type == FT_F32 ? NULL : (float *)alloc64((size_t)(16 * n_in) * sizeof(float));
        const int ok = type == FT_F32 || wbuf != NULL;
        if (!ok) {
#pragma omp atomic write
            err = 2;
        }
        if (tiny) {
            const int64_t BC = 64; /* activation rows per pass over the weights */
            const int64_t RC = 16; /* weight rows per work item */
            const int64_t nchunks = (n_out + RC - 1) / RC;
            for (int64_t b0 = 0; b0 < B; b0 += BC) {
                const int64_t b1 = b0 + BC < B ? b0 + BC : B;
#pragma omp for schedule(static)
                for (int64_t c = 0; c < nchunks; c++) {
                    if (!ok) continue;
                    const int64_t r0 = c * RC, r1 = r0 + RC < n_out ? r0 + RC : n_out;
                    tiny_rows(&J, r0, r1, b0, b1, Y, wbuf);
                }
            }
        } else {
            const int64_t RC = 64;
            const int64_t nchunks = (n_out + RC - 1) / RC;
#pragma omp for schedule(static)
            for (int64_t c = 0; c < nchunks; c++) {
                if (!ok) continue;
                const int64_t r0 = c * RC, r1 = r0 + RC < n_out ? r0 + RC : n_out;
                for (int64_t b = 0; b < B; b++)
                    vec_rows(&J, r0, r1, J.xf ? J.xf + b * n_in : NULL, J.xb ? J.xb + b * n_in : NULL,
                             Y + b * n_out, wbuf);
            }
        }
        free(wbuf);
    }
    free(xf);
    free(xb);
    return err;
}
