/* llama.cpp's CPU arithmetic (ggml-cpu, x86-64 AVX-512 build, flash attention off, f16 KV cache) for every op of a
 * forward pass except the quantized matmuls, bit for bit: the C counterpart of hogar/models/ggml_math.py, whose
 * docstrings say what each op reproduces (the same rules are repeated here briefly).
 *
 * Compiled with -ffp-contract=off: every fused multiply-add is an explicit fmaf / _mm512_fmadd_ps, exactly where
 * ggml (as GCC compiles it) has one, and nothing else is fused.  AVX-512 intrinsics mirror ggml's where it uses them
 * (ggml_v_expf, _mm512_reduce_add_ps); the scalar fallbacks compute the same roundings lane by lane.
 * Called through ctypes (hogar/quant/kernels.py).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define GO_AVX512 1
#endif
#if defined(GO_AVX512) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "f16.h"

static inline int nthreads_for(int nth, int64_t work, int64_t min_per_thread) {
    if (nth < 1) nth = 1;
    int64_t m = work / (min_per_thread > 0 ? min_per_thread : 1);
    if (m < 1) m = 1;
    return (int)(m < nth ? m : nth);
}

#include "ggml_expf.h"

/* y[i] = v_expf(x[i]) (n a multiple of 16 for the vector path; any tail lane by lane): for tests */
void go_v_expf(const float *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef GO_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, v_expf(_mm512_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = expf_lane(x[i]);
}

/* _mm512_reduce_add_ps as GCC expands it: halves 8+8, 4+4, (0+2, 1+3), 0+1 */
static inline float reduce16(const float *v) {
    float a[8], b[4];
    for (int i = 0; i < 8; i++) a[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) b[i] = a[i + 4] + a[i];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* ---- rms_norm ---------------------------------------------------------------------------------------------- */

/* ggml_rms_norm then ggml_mul by w (w may be NULL): sum += (double)(x*x); mean = (float)(sum/n);
 * scale = 1.0f/sqrtf(mean + eps); y = (x*scale)*w.  Rows of n contiguous floats; y may be x. */
void go_rms_norm(const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps, int nth) {
    nth = nthreads_for(nth, rows * n, 1 << 15);
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)(xr[i] * xr[i]);
        const float mean = (float)(sum / (double)n);
        const float scale = 1.0f / sqrtf(mean + eps);
        if (w) {
            for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] * scale) * w[i];
        } else {
            for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * scale;
        }
    }
}

/* ---- gated activations ------------------------------------------------------------------------------------- */

/* ggml_vec_swiglu_f32: y = silu(g) * u, silu(x) = x / (1 + v_expf(0 - x)) in 16-lane blocks (rows of n values);
 * a tail of n % 16 values per row uses ggml_silu_f32 (glibc expf), as ggml's scalar loop does. */
void go_swiglu(const float *g, const float *u, float *y, int64_t rows, int64_t n, int nth) {
    nth = nthreads_for(nth, rows * n, 1 << 14);
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * n, *ur = u + r * n;
        float *yr = y + r * n;
        int64_t i = 0;
#ifdef GO_AVX512
        for (; i + 16 <= n; i += 16) {
            const __m512 x = _mm512_loadu_ps(gr + i);
            const __m512 e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
            const __m512 s = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
            _mm512_storeu_ps(yr + i, _mm512_mul_ps(s, _mm512_loadu_ps(ur + i)));
        }
#else
        for (const int64_t nb = n - n % 16; i < nb; i++) yr[i] = gr[i] / (1.0f + expf_lane(0.0f - gr[i])) * ur[i];
#endif
        for (; i < n; i++) yr[i] = gr[i] / (1.0f + expf(-gr[i])) * ur[i];
    }
}

/* ggml_table_gelu_f16: table[h] = f16(0.5f*x*(1.0f + tanhf(SQRT_2_OVER_PI*x*(1.0f + GELU_COEF_A*x*x)))), x = f16 h,
 * with GCC's contraction of 1.0f + (GELU_COEF_A*x)*x into an FMA.  Stored as float32. */
void go_gelu_table(float *table) {
    const float a = 0.044715f, c = 0.79788456080286535587989211986876f;
    for (int h = 0; h < 65536; h++) {
        const float x = h2f_bits((uint16_t)h);
        const float th = tanhf((c * x) * fmaf(a * x, x, 1.0f));
        table[h] = h2f_bits(f2h((0.5f * x) * (1.0f + th)));
    }
}

/* ggml_vec_geglu_f32 (GGML_GELU_FP16): x <= -10 -> 0; x >= 10 -> x*u; else table[f16(x)] * u */
void go_geglu(const float *g, const float *u, float *y, int64_t n, const float *table, int nth) {
    nth = nthreads_for(nth, n, 1 << 15);
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        if (x <= -10.0f) y[i] = 0.0f;
        else if (x >= 10.0f) y[i] = x * u[i];
        else y[i] = table[f2h(x)] * u[i];
    }
}

/* ggml_tanh (unary op on f32): y = tanhf(x) per element, glibc's tanhf.  y may be x. */
void go_tanh(const float *x, float *y, int64_t n, int nth) {
    nth = nthreads_for(nth, n, 1 << 14);
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

/* ---- rope -------------------------------------------------------------------------------------------------- */

/* ggml_rope_cache_init for positions p0 .. p1-1 (ext_factor 0, attn_factor 1): theta = (float)p; for each pair i:
 * cos/sin[p - p0][i] = cosf/sinf(freq_scale * (theta / ff[i])) (ff: the model's rope_freqs, or none; freq_scale
 * skipped when use_fs is 0); theta *= theta_scale. */
void go_rope_cache(int64_t p0, int64_t p1, int64_t n_half, float theta_scale, float freq_scale, int use_fs,
                   const float *ff, float *cos_out, float *sin_out) {
    for (int64_t p = p0; p < p1; p++) {
        float theta = (float)p;
        for (int64_t i = 0; i < n_half; i++) {
            const float te = ff ? theta / ff[i] : theta;
            const float t = use_fs ? freq_scale * te : te;
            cos_out[(p - p0) * n_half + i] = cosf(t);
            sin_out[(p - p0) * n_half + i] = sinf(t);
            theta = theta * theta_scale;
        }
    }
}

/* rotate_pairs: x [rows, H, D] (rows = tokens), cos/sin [rows, n_half]; mode 0 = NORM (adjacent pairs), 1 = NEOX
 * (x_i, x_{i+n_half}); y0 = fmaf(x0, c, -(x1*s)), y1 = fmaf(x0, s, x1*c); dims past 2*n_half copied. y may be x. */
void go_rope(const float *x, float *y, int64_t rows, int64_t H, int64_t D, const float *cs, const float *sn,
             int64_t n_half, int mode, int nth) {
    nth = nthreads_for(nth, rows * H * D, 1 << 15);
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *c = cs + r * n_half, *s = sn + r * n_half;
        for (int64_t h = 0; h < H; h++) {
            const float *xr = x + (r * H + h) * D;
            float *yr = y + (r * H + h) * D;
            const int64_t off = mode == 0 ? 1 : n_half;
            for (int64_t i = 0; i < n_half; i++) {
                const int64_t i0 = mode == 0 ? 2 * i : i;
                const float x0 = xr[i0], x1 = xr[i0 + off];
                const float o0 = fmaf(x0, c[i], -(x1 * s[i]));
                const float o1 = fmaf(x0, s[i], x1 * c[i]);
                yr[i0] = o0;
                yr[i0 + off] = o1;
            }
            for (int64_t i = 2 * n_half; i < D; i++) yr[i] = xr[i];
        }
    }
}

/* ---- attention --------------------------------------------------------------------------------------------- */

#ifdef GO_AVX512
/* out[k] = reduce16(v[k]) for 16 lane vectors v[0..15] (v[k] = 16 floats), each sum in _mm512_reduce_add_ps's
 * order: the same pairwise additions, done for 16 rows at once. */
static inline __m512 reduce16x16(const __m512 *v) {
    __m512 s[8], t[4], u[2];
    for (int k = 0; k < 8; k++) { /* a[i] = x[i] + x[i+8]: rows 2k (lanes 0-7), 2k+1 (lanes 8-15) */
        const __m512 lo = _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44);
        const __m512 hi = _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE);
        s[k] = _mm512_add_ps(lo, hi);
    }
    for (int k = 0; k < 4; k++) { /* b[i] = a[i] + a[i+4]: block j holds row 4k+j */
        const __m512 lo = _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0x88);
        const __m512 hi = _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0xDD);
        t[k] = _mm512_add_ps(lo, hi);
    }
    for (int k = 0; k < 2; k++) { /* (b0+b2), (b1+b3) */
        const __m512 lo = _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi = _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2));
        u[k] = _mm512_add_ps(lo, hi);
    }
    const __m512 lo = _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 hi = _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512 r = _mm512_add_ps(lo, hi); /* lane 4k+j holds row 4j+k */
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, r);
}
#endif

/* test hook: out[k] = reduce16(v + 16k) for k < 16 */
void go_reduce16x16(const float *v, float *out) {
#ifdef GO_AVX512
    __m512 x[16];
    for (int k = 0; k < 16; k++) x[k] = _mm512_loadu_ps(v + 16 * k);
    _mm512_storeu_ps(out, reduce16x16(x));
#else
    for (int k = 0; k < 16; k++) out[k] = reduce16(v + 16 * k);
#endif
}

/* kq[j] for keys j in [j0, j1) (rows of kf, stride ks floats) against query q (D floats, f16 values), with
 * ggml_vec_dot_f16's order (vec = 1: four 16-lane FMA accumulators over 64-value steps, (s0+s2)+(s1+s3), reduce,
 * then the D % 64 leftover products added in double) or tinyBLAS's (vec = 0: one 16-lane accumulator, D % 16 == 0).
 * vis (may be NULL) marks the visible keys; hidden ones get -inf. */
static void kq_row(const float *q, const float *kf, int64_t ks, int64_t D, int64_t j0, int64_t j1, const uint8_t *vis,
                   int vec, float *kq) {
    const int64_t n64 = D - D % 64;
    float lanes[16][16];
    int64_t jb = j0;
    while (jb < j1) {
        const int64_t je = jb + 16 <= j1 ? jb + 16 : j1;
        int nl = 0;
#ifdef GO_AVX512
        if (!vec) /* tinyBLAS order: one 16-lane FMA chain per key; four keys at a time keep four chains in flight */
            for (; jb + nl + 4 <= je; nl += 4) {
                const int64_t j = jb + nl;
                if (vis && !(vis[j] && vis[j + 1] && vis[j + 2] && vis[j + 3])) break;
                const float *k0 = kf + j * ks;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int64_t i = 0; i < D; i += 16) {
                    const __m512 qv = _mm512_loadu_ps(q + i);
                    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(k0 + i), qv, a0);
                    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(k0 + ks + i), qv, a1);
                    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(k0 + 2 * ks + i), qv, a2);
                    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(k0 + 3 * ks + i), qv, a3);
                }
                _mm512_storeu_ps(lanes[nl], a0);
                _mm512_storeu_ps(lanes[nl + 1], a1);
                _mm512_storeu_ps(lanes[nl + 2], a2);
                _mm512_storeu_ps(lanes[nl + 3], a3);
            }
#endif
        for (int64_t j = jb + nl; j < je; j++, nl++) {
            float *acc = lanes[nl];
            if (vis && !vis[j]) { memset(acc, 0, 64); continue; }
            const float *k = kf + j * ks;
            if (vec) {
                float s[4][16];
                memset(s, 0, sizeof s);
                for (int64_t i = 0; i < n64; i += 64)
                    for (int a = 0; a < 4; a++)
                        for (int l = 0; l < 16; l++) s[a][l] = fmaf(k[i + 16 * a + l], q[i + 16 * a + l], s[a][l]);
                for (int l = 0; l < 16; l++) acc[l] = (s[0][l] + s[2][l]) + (s[1][l] + s[3][l]);
            } else {
#ifdef GO_AVX512
                __m512 a = _mm512_setzero_ps();
                for (int64_t i = 0; i < D; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(k + i), _mm512_loadu_ps(q + i), a);
                _mm512_storeu_ps(acc, a);
#else
                for (int l = 0; l < 16; l++) acc[l] = 0.0f;
                for (int64_t i = 0; i < D; i += 16)
                    for (int l = 0; l < 16; l++) acc[l] = fmaf(k[i + l], q[i + l], acc[l]);
#endif
            }
        }
        float red[16];
#ifdef GO_AVX512
        if (nl == 16) {
            __m512 v[16];
            for (int k = 0; k < 16; k++) v[k] = _mm512_loadu_ps(lanes[k]);
            _mm512_storeu_ps(red, reduce16x16(v));
        } else
#endif
            for (int k = 0; k < nl; k++) red[k] = reduce16(lanes[k]);
        for (int64_t j = jb; j < je; j++) {
            if (vis && !vis[j]) { kq[j] = -INFINITY; continue; }
            float r = red[j - jb];
            if (vec && n64 < D) {
                const float *k = kf + j * ks;
                double sum = (double)r;
                for (int64_t i = n64; i < D; i++) sum += (double)(k[i] * q[i]);
                r = (float)sum;
            }
            kq[j] = r;
        }
        jb = je;
    }
}

#ifdef GO_AVX512
/* kq_row for one query (vec_dot_f16 order) reading f16 keys in place: key j at k + j*ks (halves); D % 16 == 0;
 * hidden keys (vis[j] == 0) get -inf; the D % 64 leftover is added in double as in kq_row. */
static void kq_row_f16(const float *q, const uint16_t *k, int64_t ks, int64_t D, int64_t j0, int64_t j1,
                       const uint8_t *vis, float *kq) {
    const int64_t n64 = D - D % 64;
    __m512 lanes[16];
    int64_t jb = j0;
    while (jb < j1) {
        const int64_t je = jb + 16 <= j1 ? jb + 16 : j1;
        int nl = 0;
        for (int64_t j = jb; j < je; j++, nl++) {
            const uint16_t *kr = k + j * ks;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            if (!vis || vis[j])
                for (int64_t i = 0; i < n64; i += 64) {
                    s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + i))),
                                         _mm512_loadu_ps(q + i), s0);
                    s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + i + 16))),
                                         _mm512_loadu_ps(q + i + 16), s1);
                    s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + i + 32))),
                                         _mm512_loadu_ps(q + i + 32), s2);
                    s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + i + 48))),
                                         _mm512_loadu_ps(q + i + 48), s3);
                }
            lanes[nl] = _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3));
        }
        float red[16];
        if (nl == 16) {
            _mm512_storeu_ps(red, reduce16x16(lanes));
        } else {
            for (int i = 0; i < nl; i++) {
                float tmp[16];
                _mm512_storeu_ps(tmp, lanes[i]);
                red[i] = reduce16(tmp);
            }
        }
        for (int64_t j = jb; j < je; j++) {
            if (vis && !vis[j]) { kq[j] = -INFINITY; continue; }
            float r = red[j - jb];
            if (n64 < D) {
                const uint16_t *kr = k + j * ks;
                double sum = (double)r;
                for (int64_t i = n64; i < D; i++) sum += (double)(h2f_bits(kr[i]) * q[i]);
                r = (float)sum;
            }
            kq[j] = r;
        }
        jb = je;
    }
}
#endif


#ifdef GO_AVX512
/* kq_row's tinyBLAS order (one 16-lane FMA chain per (query, key) over D, reduce16) for nq <= 4 queries at once:
 * kq[qi * Sp + j] for keys j in [j0, j1) of kf (stride ks); each key load serves every query. */
static void kq_block(const float *q, int64_t D, int nq, const float *kf, int64_t ks, int64_t j0, int64_t j1,
                     float *kq, int64_t Sp) {
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        __m512 a[16];
        for (int x = 0; x < 16; x++) a[x] = _mm512_setzero_ps();
        for (int64_t i = 0; i < D; i += 16) {
            __m512 kv[4];
            for (int kk = 0; kk < 4; kk++) kv[kk] = _mm512_loadu_ps(kf + (j + kk) * ks + i);
            for (int qi = 0; qi < nq; qi++) {
                const __m512 qv = _mm512_loadu_ps(q + qi * D + i);
                for (int kk = 0; kk < 4; kk++) a[4 * qi + kk] = _mm512_fmadd_ps(kv[kk], qv, a[4 * qi + kk]);
            }
        }
        float r[16];
        _mm512_storeu_ps(r, reduce16x16(a));
        for (int qi = 0; qi < nq; qi++)
            for (int kk = 0; kk < 4; kk++) kq[qi * Sp + j + kk] = r[4 * qi + kk];
    }
    for (; j < j1; j++)
        for (int qi = 0; qi < nq; qi++) {
            __m512 a = _mm512_setzero_ps();
            for (int64_t i = 0; i < D; i += 16)
                a = _mm512_fmadd_ps(_mm512_loadu_ps(kf + j * ks + i), _mm512_loadu_ps(q + qi * D + i), a);
            float v[16];
            _mm512_storeu_ps(v, a);
            kq[qi * Sp + j] = reduce16(v);
        }
}
#endif

#ifdef GO_AVX512
/* pv_tiny16 for nq <= 4 queries at once, reading V transposed (vT [Dv][Sp]) so that each 16-key load of one value
 * dimension serves all the queries: the accumulator of (query, d) holds lane l = key j mod 16 (tinyBLAS's
 * accumulator rows), summed over the key chunks in order, then reduced as pv_tiny16 does: (l, l+8), (l, l+4),
 * (0+2) + (1+3).  p[qi] is the query's f32 probabilities, exact zeros outside its chunk range, chunks c0..c1. */
static inline float reduce_tiny16(__m512 a) {
    const __m256 r1 = _mm256_add_ps(_mm512_extractf32x8_ps(a, 1), _mm512_castps512_ps256(a));
    const __m128 r2 = _mm_add_ps(_mm256_extractf128_ps(r1, 1), _mm256_castps256_ps128(r1));
    const __m128 t = _mm_add_ps(r2, _mm_movehl_ps(r2, r2)); /* (r0 + r2, r1 + r3) */
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

static void pv_block(const float *vT, int64_t Sp, int64_t Dv, const float *const *p, int nq, int64_t c0, int64_t c1,
                     float *const *o) {
    for (int64_t d0 = 0; d0 < Dv; d0 += 4) {
        __m512 a[4][4];
        for (int qi = 0; qi < 4; qi++)
            for (int dd = 0; dd < 4; dd++) a[qi][dd] = _mm512_setzero_ps();
        for (int64_t j = c0; j < c1; j += 16) {
            __m512 v[4];
            for (int dd = 0; dd < 4; dd++) v[dd] = _mm512_loadu_ps(vT + (d0 + dd) * Sp + j);
            for (int qi = 0; qi < nq; qi++) {
                const __m512 pj = _mm512_loadu_ps(p[qi] + j);
                for (int dd = 0; dd < 4; dd++) a[qi][dd] = _mm512_fmadd_ps(v[dd], pj, a[qi][dd]);
            }
        }
        for (int qi = 0; qi < nq; qi++)
            for (int dd = 0; dd < 4 && d0 + dd < Dv; dd++) o[qi][d0 + dd] = reduce_tiny16(a[qi][dd]);
    }
}
#endif

/* llama.cpp's attention without flash attention (see ggml_math.attention):
 *   kq = mul_mat(K, f16(q)); p = soft_max_ext(kq, mask, kq_scale); out = mul_mat(V^T, f16(p)),
 * with tinyBLAS's lane order when T >= 2 (and D, Sp fit it), ggml_vec_dot_f16's when T == 1.
 * q [B, T, H, D] f32; k [B, *, Hkv, D] and v [B, *, Hkv, Dv] f16: key j (0 <= j < n_keys, position key_start + j)
 * of batch row b at k + b*k_bs + j*k_ss (+ h*D); mask [B, T, n_keys] (1 = visible) or NULL; out [B, T, H*Dv].
 * Keys sit at virtual index front + j, front = key_start % 64, in Sp = a multiple of 64 slots (the rest hidden), so
 * that the lane and chunk positions are ggml's (key cell = position).  Hidden keys contribute exact zeros, which
 * never change an FMA accumulator that starts at +0, so they are skipped.
 * With k_new / v_new ([B, n_new, Hkv, D|Dv] f32, or NULL), first writes them (rounded to f16, as ggml_cpy does) at
 * keys new_at .. new_at+n_new-1: the KV-cache update.
 * softcap > 0 (gemma2) soft-caps the logits before the softmax as build_attn does: kq = tanhf(kq * (1.0f/softcap))
 * * softcap (ggml_scale, ggml_tanh, ggml_scale).  Returns 0, or -1 if out of memory. */
int go_attention(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t Dv, const float *q,
                 uint16_t *k, int64_t k_bs, int64_t k_ss, uint16_t *v, int64_t v_bs, int64_t v_ss,
                 int64_t key_start, int64_t n_keys, const uint8_t *mask, float kq_scale, float softcap, float *out,
                 int nth,
                 const float *k_new, const float *v_new, int64_t new_at, int64_t n_new) {
    if (k_new && v_new)
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < n_new; j++) {
                uint16_t *kd = k + b * k_bs + (new_at + j) * k_ss, *vd = v + b * v_bs + (new_at + j) * v_ss;
                const float *ks = k_new + (b * n_new + j) * Hkv * D, *vs = v_new + (b * n_new + j) * Hkv * Dv;
                for (int64_t i = 0; i < Hkv * D; i++) kd[i] = f2h(ks[i]);
                for (int64_t i = 0; i < Hkv * Dv; i++) vd[i] = f2h(vs[i]);
            }
    const int64_t front = key_start % 64;
    const int64_t Sp = (front + n_keys + 63) / 64 * 64;
    const int64_t rep = H / Hkv;
    const int tiny_kq = T >= 2 && D % 16 == 0;      /* M = Sp is a multiple of 4 */
    const int tiny_pv = T >= 2 && Dv % 4 == 0;      /* K = Sp is a multiple of 16 */
#ifdef GO_AVX512
    const int direct = T == 1 && D % 16 == 0 && Dv % 16 == 0; /* decode: read the f16 cache in place */
#else
    const int direct = 0;
#endif
    /* otherwise keys and values as f32: kf [B, Hkv, Sp, D], vf [B, Hkv, Sp, Dv] (only the n_keys real ones) */
    float *kf = direct ? NULL : malloc(sizeof(float) * (size_t)(B * Hkv * Sp * (D + Dv)));
    if (!direct && !kf) return -1;
    float *vf = direct ? NULL : kf + B * Hkv * Sp * D;
#ifdef GO_AVX512
    const int blocked = !direct && tiny_kq && tiny_pv && Dv % 16 == 0; /* 4 queries at a time, V transposed */
#else
    const int blocked = 0;
#endif
    enum { QB = 4 };
    const int64_t qb = blocked ? QB : 1, nblk = (T + qb - 1) / qb;
    const int64_t items = B * H * nblk;
    nth = nthreads_for(nth, items * (n_keys * (D + Dv) + 1), 1 << 16);
    int fail = 0;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
#pragma omp for schedule(static) collapse(2)
        for (int64_t b = 0; b < (direct ? 0 : B); b++)
            for (int64_t j = 0; j < n_keys; j++)
                for (int64_t h = 0; h < Hkv; h++) {
                    const uint16_t *kr = k + b * k_bs + j * k_ss + h * D;
                    const uint16_t *vr = v + b * v_bs + j * v_ss + h * Dv;
                    float *kd = kf + ((b * Hkv + h) * Sp + front + j) * D;
                    for (int64_t i = 0; i < D; i++) kd[i] = h2f_bits(kr[i]);
                    if (blocked) {
                        float *vd = vf + (b * Hkv + h) * Dv * Sp + front + j;
                        for (int64_t i = 0; i < Dv; i++) vd[i * Sp] = h2f_bits(vr[i]);
                    } else {
                        float *vd = vf + ((b * Hkv + h) * Sp + front + j) * Dv;
                        for (int64_t i = 0; i < Dv; i++) vd[i] = h2f_bits(vr[i]);
                    }
                }
        if (!direct) { /* padding slots hold zero values (pv_tiny16 multiplies them by p = 0) */
#pragma omp for schedule(static)
            for (int64_t bh = 0; bh < B * Hkv; bh++) {
                if (blocked) {
                    for (int64_t i = 0; i < Dv; i++) {
                        float *row = vf + (bh * Dv + i) * Sp;
                        memset(row, 0, sizeof(float) * (size_t)front);
                        memset(row + front + n_keys, 0, sizeof(float) * (size_t)(Sp - front - n_keys));
                    }
                    continue;
                }
                memset(vf + bh * Sp * Dv, 0, sizeof(float) * (size_t)(front * Dv));
                memset(vf + (bh * Sp + front + n_keys) * Dv, 0, sizeof(float) * (size_t)((Sp - front - n_keys) * Dv));
            }
        }
        const int64_t nacc = tiny_pv ? 16 : 64;
        float *qh = malloc(sizeof(float) * (size_t)(qb * D + qb * Sp + nacc * Dv + 16));
        uint16_t *p16 = malloc(sizeof(uint16_t) * (size_t)Sp);
        if (!qh || !p16) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp barrier
        if (!fail) {
            float *kq_all = qh + qb * D, *acc = kq_all + qb * Sp;
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < items; it++) {
              const int64_t b = it / (H * nblk), h = (it / nblk) % H, t0 = (it % nblk) * qb, hk = h / rep;
              const int64_t t1 = t0 + qb < T ? t0 + qb : T;
              const float *pq[QB];
              float *oq[QB];
              int64_t bc0 = Sp, bc1 = 0, lo_q[QB], hi_q[QB];
              const float *kb = direct ? NULL : kf + (b * Hkv + hk) * Sp * D;
              for (int64_t t = t0; t < t1; t++) { /* f16-rounded queries; visible key range of each */
                float *qt = qh + (t - t0) * D;
                const float *qr = q + ((b * T + t) * H + h) * D;
                for (int64_t i = 0; i < D; i++) qt[i] = h2f_bits(f2h(qr[i]));
                const uint8_t *vis = mask ? mask + (b * T + t) * n_keys - front : NULL;
                int64_t lo = front, hi = front + n_keys;
                if (vis) {
                    while (lo < hi && !vis[lo]) lo++;
                    while (hi > lo && !vis[hi - 1]) hi--;
                }
                lo_q[t - t0] = lo;
                hi_q[t - t0] = hi;
              }
#ifdef GO_AVX512
              if (blocked) {
                  int64_t L = Sp, Hh = 0;
                  for (int64_t x = 0; x < t1 - t0; x++) {
                      if (lo_q[x] < L) L = lo_q[x];
                      if (hi_q[x] > Hh) Hh = hi_q[x];
                  }
                  if (L < Hh) kq_block(qh, D, (int)(t1 - t0), kb, D, L, Hh, kq_all, Sp);
              }
#endif
              for (int64_t t = t0; t < t1; t++) {
                float *kq = kq_all + (t - t0) * Sp, *qt = qh + (t - t0) * D;
                const uint8_t *vis = mask ? mask + (b * T + t) * n_keys - front : NULL;
                /* kq over the real keys, hidden/padding slots -inf */
                const int64_t lo = lo_q[t - t0], hi = hi_q[t - t0];
                for (int64_t j = 0; j < lo; j++) kq[j] = -INFINITY;
                for (int64_t j = hi; j < Sp; j++) kq[j] = -INFINITY;
#ifdef GO_AVX512
                if (blocked) {
                    if (vis)
                        for (int64_t j = lo; j < hi; j++)
                            if (!vis[j]) kq[j] = -INFINITY;
                } else if (direct)
                    kq_row_f16(qt, k + b * k_bs + hk * D - front * k_ss, k_ss, D, lo, hi, vis, kq);
                else
#endif
                    kq_row(qt, kb, D, D, lo, hi, vis, !tiny_kq, kq);
                if (softcap > 0.0f) {
                    const float inv = 1.0f / softcap;
                    for (int64_t j = lo; j < hi; j++)
                        if (kq[j] != -INFINITY) kq[j] = tanhf(kq[j] * inv) * softcap;
                }
                /* soft_max_ext: wp = kq*scale (hidden -inf); e = v_expf(wp - max); sum (double) of the 16-lane
                 * reductions; p = e * (float)(1.0/sum) */
#ifdef GO_AVX512
                /* only the 16-key chunks holding keys lo .. hi-1: every other chunk is all hidden, e = p = 0 */
                const int64_t c0 = lo & ~(int64_t)15, c1 = (hi + 15) & ~(int64_t)15;
                const __m512 ninf = _mm512_set1_ps(-INFINITY), vsc = _mm512_set1_ps(kq_scale);
                __m512 vmx = ninf;
                for (int64_t j = c0; j < c1; j += 16) {
                    __m512 x = _mm512_loadu_ps(kq + j);
                    x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_UQ), x, vsc);
                    _mm512_storeu_ps(kq + j, x);
                    vmx = _mm512_max_ps(vmx, x);
                }
                const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(vmx));
                double sum = 0.0;
                for (int64_t j = c0; j < c1; j += 16) {
                    const __m512 e = v_expf(_mm512_sub_ps(_mm512_loadu_ps(kq + j), vmax));
                    _mm512_storeu_ps(kq + j, e);
                    sum += (double)_mm512_reduce_add_ps(e);
                }
                const __m512 vinv = _mm512_set1_ps((float)(1.0 / sum));
                for (int64_t j = c0; j < c1; j += 16) { /* p16 = f16(e * inv); kq = p as f32 */
                    const __m256i h16 = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(kq + j), vinv),
                                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                    _mm256_storeu_si256((__m256i *)(p16 + j), h16);
                    _mm512_storeu_ps(kq + j, _mm512_cvtph_ps(h16));
                }
                const int64_t plo = c0, phi = c1;
#else
                float mx = -INFINITY;
                for (int64_t j = lo; j < hi; j++) {
                    if (kq[j] != -INFINITY) kq[j] = kq[j] * kq_scale;
                    if (kq[j] > mx) mx = kq[j];
                }
                double sum = 0.0;
                for (int64_t j = 0; j < Sp; j += 16) {
                    if (j + 16 <= lo || j >= hi) { /* all hidden: e = 0 */
                        memset(kq + j, 0, 64);
                        continue;
                    }
                    for (int l = 0; l < 16; l++) kq[j + l] = expf_lane(kq[j + l] - mx);
                    sum += (double)reduce16(kq + j);
                }
                const float inv = (float)(1.0 / sum);
                int64_t plo = Sp, phi = 0;
                for (int64_t j = 0; j < Sp; j++) {
                    p16[j] = f2h(kq[j] * inv);
                    if (p16[j] & 0x7fff) { if (j < plo) plo = j; phi = j + 1; }
                }
#endif
                /* out[d] = sum_j vT[d][j] * p[j]: accumulator row (j % 16) (tinyBLAS) or (j % 64) (vec_dot_f16),
                 * vectorized over d; zero products are skipped (exact, see above) */
                const float *vb = direct ? NULL : vf + (b * Hkv + hk) * Sp * Dv;
                float *o = out + ((b * T + t) * H + h) * Dv;
#ifdef GO_AVX512
                if (blocked) { /* PV after the block's last query; exact zeros outside this query's chunks */
                    for (int64_t j = 0; j < plo; j++) kq[j] = 0.f;
                    for (int64_t j = phi; j < Sp; j++) kq[j] = 0.f;
                    pq[t - t0] = kq;
                    oq[t - t0] = o;
                    if (plo < bc0) bc0 = plo;
                    if (phi > bc1) bc1 = phi;
                    continue;
                }
#endif
                memset(acc, 0, sizeof(float) * (size_t)(nacc * Dv));
#ifdef GO_AVX512
                if (direct) {
                    const uint16_t *v0 = v + b * v_bs + hk * Dv - front * v_ss;
                    for (int64_t j = plo; j < phi; j++) {
                        if (!(p16[j] & 0x7fff)) continue;
                        const __m512 pj = _mm512_set1_ps(h2f_bits(p16[j]));
                        float *a = acc + (j % nacc) * Dv;
                        const uint16_t *vr = v0 + j * v_ss;
                        for (int64_t d = 0; d < Dv; d += 16)
                            _mm512_storeu_ps(a + d, _mm512_fmadd_ps(
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vr + d))), pj,
                                _mm512_loadu_ps(a + d)));
                    }
                }
                for (int64_t j = direct ? phi : plo; j < phi; j++) {
#else
                for (int64_t j = plo; j < phi; j++) {
#endif
                    if (!(p16[j] & 0x7fff)) continue;
                    const float pj = h2f_bits(p16[j]);
                    float *a = acc + (j % nacc) * Dv;
                    const float *vr = vb + j * Dv;
                    int64_t d = 0;
#ifdef GO_AVX512
                    const __m512 pv = _mm512_set1_ps(pj);
                    for (; d + 16 <= Dv; d += 16)
                        _mm512_storeu_ps(a + d, _mm512_fmadd_ps(_mm512_loadu_ps(vr + d), pv, _mm512_loadu_ps(a + d)));
#endif
                    for (; d < Dv; d++) a[d] = fmaf(vr[d], pj, a[d]);
                }
                float *s16 = acc; /* 16 rows of Dv */
                if (nacc == 64) /* (sum0 + sum2) + (sum1 + sum3) */
                    for (int l = 0; l < 16; l++)
                        for (int64_t d = 0; d < Dv; d++)
                            acc[l * Dv + d] = (acc[l * Dv + d] + acc[(32 + l) * Dv + d]) +
                                              (acc[(16 + l) * Dv + d] + acc[(48 + l) * Dv + d]);
                for (int l = 0; l < 8; l++)
                    for (int64_t d = 0; d < Dv; d++) s16[l * Dv + d] = s16[(l + 8) * Dv + d] + s16[l * Dv + d];
                for (int l = 0; l < 4; l++)
                    for (int64_t d = 0; d < Dv; d++) s16[l * Dv + d] = s16[(l + 4) * Dv + d] + s16[l * Dv + d];
                for (int64_t d = 0; d < Dv; d++)
                    o[d] = (s16[d] + s16[2 * Dv + d]) + (s16[Dv + d] + s16[3 * Dv + d]);
              }
#ifdef GO_AVX512
              if (blocked && bc0 < bc1)
                  pv_block(vf + (b * Hkv + hk) * Dv * Sp, Sp, Dv, pq, (int)(t1 - t0), bc0, bc1, oq);
#endif
            }
        }
        free(qh);
        free(p16);
    }
    free(kf);
    return fail ? -1 : 0;
}

int go_avx512(void) {
#ifdef GO_AVX512
    return 1;
#else
    return 0;
#endif
}
