/* hogar's weight quantizers: llama.cpp's reference quantizers (ggml-quants.c: quantize_row_*_ref, and
 * quantize_iq4_nl without an importance matrix), the ones llama-quantize runs when it has no imatrix.  Each repeats
 * ggml's float operations in ggml's order, so the bytes come out identical.  Built with -ffp-contract=off: ggml's
 * reference build (libggml-base, no -march) has no FMAs, and a fused multiply-add rounds differently.
 *
 * A quantizer takes nb consecutive blocks; rows are whole blocks laid end to end, so a matrix is one long run of
 * blocks and hq_quantize splits that run across threads. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "f16.h"

enum { Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14,
       IQ4_NL = 20 };

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f
#define QK_K 256

/* f2h rounds to nearest even like ggml's GGML_FP32_TO_FP16 (they differ only in NaN payloads) */
static inline void put_f16(uint8_t *p, float f) { uint16_t h = f2h(f); memcpy(p, &h, 2); }
static inline float get_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h2f_bits(h); }

static inline int nearest_int(float fval) { /* ggml's, bit for bit (also outside |fval| < 2^22) */
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

/* ---- legacy 32-blocks --------------------------------------------------------------------------------------- */

static void q4_0(const float *x, uint8_t *y, int64_t nb) { /* d, qs[16] */
    for (int64_t i = 0; i < nb; i++, x += 32, y += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        put_f16(y, d);
        for (int j = 0; j < 16; j++) {
            const uint8_t a = MIN(15, (int8_t)(x[j] * id + 8.5f)), b = MIN(15, (int8_t)(x[16 + j] * id + 8.5f));
            y[2 + j] = a | b << 4;
        }
    }
}

static void q4_1(const float *x, uint8_t *y, int64_t nb) { /* d, m, qs[16] */
    for (int64_t i = 0; i < nb; i++, x += 32, y += 20) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        put_f16(y, d);
        put_f16(y + 2, min);
        for (int j = 0; j < 16; j++) {
            const uint8_t a = MIN(15, (int8_t)((x[j] - min) * id + 0.5f));
            const uint8_t b = MIN(15, (int8_t)((x[16 + j] - min) * id + 0.5f));
            y[4 + j] = a | b << 4;
        }
    }
}

static void q5_0(const float *x, uint8_t *y, int64_t nb) { /* d, qh[4], qs[16] */
    for (int64_t i = 0; i < nb; i++, x += 32, y += 22) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16, id = d ? 1.0f / d : 0.0f;
        put_f16(y, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const uint8_t a = MIN(31, (int8_t)(x[j] * id + 16.5f)), b = MIN(31, (int8_t)(x[16 + j] * id + 16.5f));
            y[6 + j] = (a & 0x0F) | (b & 0x0F) << 4;
            qh |= (uint32_t)(a >> 4) << j | (uint32_t)(b >> 4) << (j + 16);
        }
        memcpy(y + 2, &qh, 4);
    }
}

static void q5_1(const float *x, uint8_t *y, int64_t nb) { /* d, m, qh[4], qs[16] */
    for (int64_t i = 0; i < nb; i++, x += 32, y += 24) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        put_f16(y, d);
        put_f16(y + 2, min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const uint8_t a = (uint8_t)((x[j] - min) * id + 0.5f), b = (uint8_t)((x[16 + j] - min) * id + 0.5f);
            y[8 + j] = (a & 0x0F) | (b & 0x0F) << 4;
            qh |= (uint32_t)((a & 0x10) >> 4) << j | (uint32_t)((b & 0x10) >> 4) << (j + 16);
        }
        memcpy(y + 4, &qh, 4);
    }
}

static void q8_0(const float *x, uint8_t *y, int64_t nb) { /* d, qs[32] */
    for (int64_t i = 0; i < nb; i++, x += 32, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        put_f16(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

/* ---- k-quant helpers: ggml's make_qx_quants, make_q3_quants, make_qkx2_quants ------------------------------- */
/* The grid searches of make_qx_quants and make_qkx2_quants (and of IQ4_NL below) run on VL groups at once, group g in
 * vector lane g: each lane does its own group's float operations in ggml's order (sums stay sequential, per lane),
 * and ggml's branches become per-lane selects, so each lane's result is exactly the scalar one. */

#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX2__)
#define VL 8
#else
#define VL 4
#endif
typedef float vf __attribute__((vector_size(4 * VL)));
typedef int32_t vi __attribute__((vector_size(4 * VL)));

static inline vf splat(float f) { return (vf){0} + f; }
static inline vi splati(int i) { return (vi){0} + i; }
static inline vf sel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
static inline vi seli(vi m, vi a, vi b) { return (a & m) | (b & ~m); }
static inline vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
static inline vf vfloat(vi l) { return __builtin_convertvector(l, vf); }
static inline vi vclamp(vi l, int lo, int hi) { /* MAX(lo, MIN(hi, l)) */
    l = seli(l > hi, splati(hi), l);
    return seli(l < lo, splati(lo), l);
}
static inline vi vnearest(vf fval) {
    vi i = (vi)(fval + 12582912.f);
    return (i & 0x007fffff) - 0x00400000;
}

/* groups g0 .. g0 + VL - 1 of n values each (lanes past ng get zeros) -> X[i] = element i of every group */
static void to_lanes(const float *x, int n, int g0, int ng, vf *X) {
    for (int i = 0; i < n; i++)
        for (int g = 0; g < VL; g++) X[i][g] = g0 + g < ng ? x[(int64_t)(g0 + g) * n + i] : 0.f;
}

/* make_qx_quants(16, 32, x, L, rmse_type = 1, NULL) on ng groups of 16: signed levels (stored + 32) around a scale
 * fitted by least squares with weights x^2.  Used by Q6_K. */
static void qx_quants_16(int ng, const float *x, int8_t *L, float *scales) {
    const int n = 16, nmax = 32;
    for (int g0 = 0; g0 < ng; g0 += VL) {
        vf X[16];
        vi Lb[16], La[16];
        to_lanes(x, n, g0, ng, X);
        vf max = splat(0), amax = splat(0);
        for (int i = 0; i < n; ++i) {
            vf ax = vabs(X[i]);
            vi m = ax > amax;
            amax = sel(m, ax, amax);
            max = sel(m, X[i], max);
        }
        const vi zero = amax < GROUP_MAX_EPS;
        vf iscale = (float)-nmax / max, sumlx = splat(0), suml2 = splat(0);
        for (int i = 0; i < n; ++i) {
            vi l = vclamp(vnearest(iscale * X[i]), -nmax, nmax - 1);
            Lb[i] = l + nmax;
            vf w = X[i] * X[i], lf = vfloat(l);
            sumlx += w * X[i] * lf;
            suml2 += w * lf * lf;
        }
        vf scale = sel(suml2 != 0, sumlx / suml2, splat(0));
        vf best = scale * sumlx;
        for (int is = -9; is <= 9; ++is) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = splat(0);
            for (int i = 0; i < n; ++i) {
                vi l = vclamp(vnearest(iscale * X[i]), -nmax, nmax - 1);
                La[i] = l + nmax;
                vf w = X[i] * X[i], lf = vfloat(l);
                sumlx += w * X[i] * lf;
                suml2 += w * lf * lf;
            }
            const vi better = (suml2 > 0) & (sumlx * sumlx > best * suml2);
            const vf new_scale = sumlx / suml2;
            for (int i = 0; i < n; ++i) Lb[i] = seli(better, La[i], Lb[i]);
            scale = sel(better, new_scale, scale);
            best = sel(better, new_scale * sumlx, best);
        }
        for (int g = 0; g < VL && g0 + g < ng; g++) {
            scales[g0 + g] = zero[g] ? 0.f : scale[g];
            for (int i = 0; i < n; i++) L[(g0 + g) * n + i] = zero[g] ? 0 : Lb[i][g];
        }
    }
}

/* make_qkx2_quants on ng groups of n <= 32 (x and weights w hold them one after another): levels L in [0, nmax] for
 * x ~ scale * L - min, from a grid search over nstep + 1 scales, each refined by weighted least squares. */
static void qkx2_quants(int ng, int n, int nmax, const float *x, const float *w, uint8_t *L, float *scales,
                        float *the_mins, float rmin, float rdelta, int nstep, int use_mad) {
    for (int g0 = 0; g0 < ng; g0 += VL) {
        vf X[32], W[32];
        vi Lb[32], La[32];
        to_lanes(x, n, g0, ng, X);
        to_lanes(w, n, g0, ng, W);
        vf min = X[0], max = X[0], sum_w = W[0], sum_x = sum_w * X[0];
        for (int i = 1; i < n; ++i) {
            min = sel(X[i] < min, X[i], min);
            max = sel(X[i] > max, X[i], max);
            sum_w += W[i];
            sum_x += W[i] * X[i];
        }
        min = sel(min > 0, splat(0), min);
        const vi flat = max == min; /* ggml returns scale 0, levels 0 for these */
        const vf flat_min = min;
        vf iscale = (float)nmax / (max - min), scale = 1 / iscale, best_error = splat(0);
        for (int i = 0; i < n; ++i) {
            Lb[i] = vclamp(vnearest(iscale * (X[i] - min)), 0, nmax);
            vf diff = scale * vfloat(Lb[i]) + min - X[i];
            diff = use_mad ? vabs(diff) : diff * diff;
            best_error += W[i] * diff;
        }
        for (int is = 0; is <= nstep; ++is) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            vf sum_l = splat(0), sum_l2 = splat(0), sum_xl = splat(0);
            for (int i = 0; i < n; ++i) {
                La[i] = vclamp(vnearest(iscale * (X[i] - min)), 0, nmax);
                vf l = vfloat(La[i]);
                sum_l += W[i] * l;
                sum_l2 += W[i] * l * l;
                sum_xl += W[i] * l * X[i];
            }
            vf D = sum_w * sum_l2 - sum_l * sum_l;
            vf this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            vf this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            const vi pos = this_min > 0;
            this_min = sel(pos, splat(0), this_min);
            this_scale = sel(pos, sum_xl / sum_l2, this_scale);
            vf cur_error = splat(0);
            for (int i = 0; i < n; ++i) {
                vf diff = this_scale * vfloat(La[i]) + this_min - X[i];
                diff = use_mad ? vabs(diff) : diff * diff;
                cur_error += W[i] * diff;
            }
            const vi better = (D > 0) & (cur_error < best_error);
            for (int i = 0; i < n; ++i) Lb[i] = seli(better, La[i], Lb[i]);
            best_error = sel(better, cur_error, best_error);
            scale = sel(better, this_scale, scale);
            min = sel(better, this_min, min);
        }
        min = sel(flat, flat_min, min);
        for (int g = 0; g < VL && g0 + g < ng; g++) {
            scales[g0 + g] = flat[g] ? 0.f : scale[g];
            the_mins[g0 + g] = -min[g];
            for (int i = 0; i < n; i++) L[(g0 + g) * n + i] = flat[g] ? 0 : Lb[i][g];
        }
    }
}

/* Q3_K's make_q3_quants(16, 4, x, L, do_rmse = true): start from the max-scaled levels, then move single levels
 * while that lowers the x^2-weighted error.  Scalar: it is cheap next to the searches above. */
static float make_q3_quants_rmse(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = MAX(-nmax, MIN(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] += nmax;
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ---- k-quants: 256-blocks ----------------------------------------------------------------------------------- */

static void q2_k(const float *x, uint8_t *y, int64_t nb) { /* scales[16], qs[64], d, dmin */
    uint8_t L[QK_K];
    float weights[QK_K], mins[16], scales[16];
    for (int64_t i = 0; i < nb; i++, x += QK_K, y += 84) {
        uint8_t *sc = y, *qs = y + 16;
        for (int l = 0; l < QK_K; ++l) weights[l] = fabsf(x[l]);
        qkx2_quants(16, 16, 3, x, weights, L, scales, mins, -0.5f, 0.1f, 15, 1);
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; ++j) sc[j] = nearest_int(iscale * scales[j]);
            put_f16(y + 80, max_scale / 15.f);
        } else {
            memset(sc, 0, 16);
            put_f16(y + 80, 0.f);
        }
        if (max_min > 0) {
            float iscale = 15.f / max_min;
            for (int j = 0; j < 16; ++j) sc[j] |= nearest_int(iscale * mins[j]) << 4;
            put_f16(y + 82, max_min / 15.f);
        } else {
            put_f16(y + 82, 0.f);
        }
        const float dd = get_f16(y + 80), dmin = get_f16(y + 82);
        for (int j = 0; j < 16; ++j) {
            const float d = dd * (sc[j] & 0xF);
            if (!d) continue;
            const float dm = dmin * (sc[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = MAX(0, MIN(3, l));
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                qs[j / 4 + l] = L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6;
    }
}

static void q3_k(const float *x, uint8_t *y, int64_t nb) { /* hmask[32], qs[64], scales[12], d */
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += QK_K, y += 110) {
        uint8_t *hmask = y, *qs = y + 32, *sc = y + 96;
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            scales[j] = make_q3_quants_rmse(16, 4, x + 16 * j, L + 16 * j);
            float scale = fabsf(scales[j]);
            if (scale > amax) { amax = scale; max_scale = scales[j]; }
        }
        memset(sc, 0, 12);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                int8_t l = nearest_int(iscale * scales[j]);
                l = MAX(-32, MIN(31, l)) + 32;
                if (j < 8) sc[j] = l & 0xF;
                else sc[j - 8] |= (l & 0xF) << 4;
                l >>= 4;
                sc[j % 4 + 8] |= l << (2 * (j / 4));
            }
            put_f16(y + 108, 1 / iscale);
        } else {
            put_f16(y + 108, 0.f);
        }
        const float dd = get_f16(y + 108);
        for (int j = 0; j < 16; ++j) {
            int8_t s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
            s = (s | ((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
            float d = dd * s;
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = MAX(-4, MIN(3, l)) + 4;
            }
        }
        /* high bit of level j goes to bit j / 32 of hmask[j % 32] */
        memset(hmask, 0, 32);
        for (int j = 0; j < QK_K; ++j)
            if (L[j] > 3) {
                hmask[j % 32] |= 1 << (j / 32);
                L[j] -= 4;
            }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                qs[j / 4 + l] = L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6;
    }
}

/* Q4_K / Q5_K: one superblock's 8 group scales and mins -> 6 bits each under f16 d and dmin; then the levels again
 * with those */
static void k_scales(const float *x, uint8_t *y, uint8_t *L, const float *scales, const float *mins, int nmax) {
    uint8_t *sc = y + 4;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = nearest_int(inv_scale * scales[j]), lm = nearest_int(inv_min * mins[j]);
        ls = MIN(63, ls);
        lm = MIN(63, lm);
        if (j < 4) {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xF) | (lm & 0xF) << 4;
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    put_f16(y, max_scale / 63.f);
    put_f16(y + 2, max_min / 63.f);
    const float dd = get_f16(y), dmin = get_f16(y + 2);
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        if (j < 4) {
            s = sc[j] & 63;
            m = sc[j + 4] & 63;
        } else {
            s = (sc[j + 4] & 0xF) | (sc[j - 4] >> 6) << 4;
            m = (sc[j + 4] >> 4) | (sc[j] >> 6) << 4;
        }
        const float d = dd * s;
        if (!d) continue;
        const float dm = dmin * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = MAX(0, MIN(nmax, l));
        }
    }
}

/* Q4_K and Q5_K share all but the level count and the search grid.  The searches of nsb superblocks (8 groups of
 * 32 each) run together. */
static void q45_k_levels(int nsb, const float *x, uint8_t *y, int block_size, uint8_t *L, int nmax, float rmin,
                         int nstep) {
    float weights[2 * QK_K], mins[16], scales[16];
    for (int j = 0; j < 8 * nsb; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + fabsf(x[32 * j + l]);
    }
    qkx2_quants(8 * nsb, 32, nmax, x, weights, L, scales, mins, rmin, 0.1f, nstep, 0);
    for (int b = 0; b < nsb; b++)
        k_scales(x + b * QK_K, y + b * block_size, L + b * QK_K, scales + 8 * b, mins + 8 * b, nmax);
}

static void q4_k(const float *x, uint8_t *y, int64_t nb) { /* d, dmin, scales[12], qs[128] */
    uint8_t L[2 * QK_K];
    for (int64_t i = 0; i < nb; i += 2) {
        const int nsb = MIN(2, nb - i);
        q45_k_levels(nsb, x + i * QK_K, y + i * 144, 144, L, 15, -1.f, 20);
        for (int b = 0; b < nsb; b++) {
            uint8_t *q = y + (i + b) * 144 + 16, *Lb = L + b * QK_K;
            for (int j = 0; j < QK_K; j += 64)
                for (int l = 0; l < 32; ++l) q[j / 2 + l] = Lb[j + l] | Lb[j + l + 32] << 4;
        }
    }
}

static void q5_k(const float *x, uint8_t *y, int64_t nb) { /* d, dmin, scales[12], qh[32], qs[128] */
    uint8_t L[2 * QK_K];
    for (int64_t i = 0; i < nb; i += 2) {
        const int nsb = MIN(2, nb - i);
        q45_k_levels(nsb, x + i * QK_K, y + i * 176, 176, L, 31, -0.5f, 15);
        for (int b = 0; b < nsb; b++) {
            uint8_t *qh = y + (i + b) * 176 + 16, *ql = qh + 32, *Lb = L + b * QK_K;
            memset(qh, 0, 32);
            /* pair p = n / 64 of 32-groups: low nibbles in ql, high bits to bits 2p, 2p + 1 of qh */
            for (int n = 0; n < QK_K; n += 64, ql += 32)
                for (int j = 0; j < 32; ++j) {
                    int l1 = Lb[n + j], l2 = Lb[n + j + 32];
                    qh[j] |= (l1 > 15) << (n / 32) | (l2 > 15) << (n / 32 + 1);
                    ql[j] = (l1 & 0xF) | (l2 & 0xF) << 4;
                }
        }
    }
}

static void q6_k(const float *x, uint8_t *y, int64_t nb) { /* ql[128], qh[64], scales[16] (int8), d */
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += QK_K, y += 210) {
        qx_quants_16(16, x, L, scales);
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(y, 0, 210);
            continue;
        }
        int8_t *sc = (int8_t *)(y + 192);
        float iscale = -128.f / max_scale;
        put_f16(y + 208, 1 / iscale);
        for (int ib = 0; ib < 16; ++ib) sc[ib] = MIN(127, nearest_int(iscale * scales[ib]));
        const float dd = get_f16(y + 208);
        for (int j = 0; j < 16; ++j) {
            float d = dd * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = MAX(-32, MIN(31, l)) + 32;
            }
        }
        uint8_t *ql = y, *qh = y + 128;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l] = (q1 & 0xF) | (q3 & 0xF) << 4;
                ql[l + 32] = (q2 & 0xF) | (q4 & 0xF) << 4;
                qh[l] = q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6;
            }
    }
}

/* ---- IQ4_NL: 32-blocks on a non-linear 16-level grid ------------------------------------------------------- */

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ggml's best_index_int8(16, kvalues_iq4nl, x) per lane: its binary search ends at mu = the number of grid values
 * <= x (a NaN counts as above them all, as there); then the lower neighbour only when strictly nearer.  *q gets the
 * grid value. */
static inline vi iq4nl_index(vf x, vf *q) {
    const int8_t *v = kvalues_iq4nl;
    vi mu = splati(1);
    vf lo = splat(v[0]), hi = splat(v[1]);
    for (int k = 1; k < 15; k++) {
        const vi up = ~(x < v[k]);
        mu -= up;
        lo = sel(up, splat(v[k]), lo);
        hi = sel(up, splat(v[k + 1]), hi);
    }
    const vi low = x - lo < hi - x, first = x <= v[0], last = x >= v[15];
    vi l = seli(low, mu - 1, mu);
    *q = sel(first, splat(v[0]), sel(last, splat(v[15]), sel(low, lo, hi)));
    return seli(first, splati(0), seli(last, splati(15), l));
}

/* quantize_row_iq4_nl_impl(32, 32, ..., quant_weights = NULL, ntry = 7), as quantize_iq4_nl calls it; VL blocks at
 * a time, one per lane */
static void iq4_nl(const float *x, uint8_t *y, int64_t nb) { /* d, qs[16] */
    const int ntry = 7, v0 = kvalues_iq4nl[0];
    for (int64_t i0 = 0; i0 < nb; i0 += VL) {
        const int ng = MIN(VL, nb - i0);
        vf X[32], W[32], q;
        to_lanes(x + i0 * 32, 32, 0, ng, X);
        vf amax = splat(0), max = splat(0);
        for (int j = 0; j < 32; ++j) {
            W[j] = X[j] * X[j];
            const vi m = vabs(X[j]) > amax;
            amax = sel(m, vabs(X[j]), amax);
            max = sel(m, X[j], max);
        }
        vf d = -max / (float)v0, id = 1 / d, sumqx = splat(0), sumq2 = splat(0);
        for (int j = 0; j < 32; ++j) {
            iq4nl_index(id * X[j], &q);
            sumqx += W[j] * q * X[j];
            sumq2 += W[j] * q * q;
        }
        d = sel(sumq2 > 0, sumqx / sumq2, splat(0));
        vf best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (float)(itry + v0) / max;
            sumqx = sumq2 = splat(0);
            for (int j = 0; j < 32; ++j) {
                iq4nl_index(id * X[j], &q);
                sumqx += W[j] * q * X[j];
                sumq2 += W[j] * q * q;
            }
            const vi better = (sumq2 > 0) & (sumqx * sumqx > best * sumq2);
            const vf new_d = sumqx / sumq2;
            d = sel(better, new_d, d);
            best = sel(better, new_d * sumqx, best);
        }
        d = sel(amax < GROUP_MAX_EPS, splat(0), d); /* ggml skips the search: scale 0 */
        id = sel(d != 0, 1 / d, splat(0));
        vi L[32];
        for (int j = 0; j < 32; ++j) L[j] = iq4nl_index(id * X[j], &q);
        for (int g = 0; g < ng; g++) {
            uint8_t *yb = y + (i0 + g) * 18;
            put_f16(yb, d[g]);
            for (int j = 0; j < 16; ++j) yb[2 + j] = L[j][g] | L[16 + j][g] << 4;
        }
    }
}

/* ---- entry points ------------------------------------------------------------------------------------------- */

typedef void (*quantizer)(const float *x, uint8_t *y, int64_t nb);

static int lookup(int type, quantizer *fn, int *block, int *size) {
    switch (type) {
    case Q4_0: *fn = q4_0; *block = 32; *size = 18; return 1;
    case Q4_1: *fn = q4_1; *block = 32; *size = 20; return 1;
    case Q5_0: *fn = q5_0; *block = 32; *size = 22; return 1;
    case Q5_1: *fn = q5_1; *block = 32; *size = 24; return 1;
    case Q8_0: *fn = q8_0; *block = 32; *size = 34; return 1;
    case Q2_K: *fn = q2_k; *block = QK_K; *size = 84; return 1;
    case Q3_K: *fn = q3_k; *block = QK_K; *size = 110; return 1;
    case Q4_K: *fn = q4_k; *block = QK_K; *size = 144; return 1;
    case Q5_K: *fn = q5_k; *block = QK_K; *size = 176; return 1;
    case Q6_K: *fn = q6_k; *block = QK_K; *size = 210; return 1;
    case IQ4_NL: *fn = iq4_nl; *block = 32; *size = 18; return 1;
    default: return 0;
    }
}

int hq_quantize_supported(int type) {
    quantizer fn;
    int block, size;
    return lookup(type, &fn, &block, &size);
}

/* src: n_rows x n_per_row floats, row-major; dst: n_rows rows of (n_per_row / block) blocks.  Returns 0, -1 for a
 * type it does not quantize, -2 for a row length that is not a whole number of blocks. */
int hq_quantize(int type, const float *src, int64_t n_rows, int64_t n_per_row, uint8_t *dst, int n_threads) {
    quantizer fn;
    int block, size;
    if (!lookup(type, &fn, &block, &size)) return -1;
    if (n_per_row <= 0 || n_per_row % block || n_rows < 0) return -2;
    const int64_t nb = n_rows * (n_per_row / block);
    int nt = n_threads > 0 ? n_threads : 1;
#ifdef _OPENMP
    if (n_threads <= 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    if (nt > nb) nt = nb > 0 ? (int)nb : 1;
    #pragma omp parallel num_threads(nt)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        const int64_t b0 = nb * t / nt, b1 = nb * (t + 1) / nt;
        if (b1 > b0) fn(src + b0 * block, dst + b0 * size, b1 - b0);
    }
    return 0;
}

/* ---- embedding rows: rows ids[0..n_ids) of a row-major table of n_cols-value rows, decoded as gguf-py (and
 * hogar.gguf.quants) do, in the reference's order of roundings: (q - offset) * d, or q * (d * sc) - (dmin * m) ----
 * Returns 0, or 1 for a type this does not decode (the caller takes the torch decoder). */

static void k_scale_min(const uint8_t *q, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void dq_block(int t, const uint8_t *b, float *y) {
    switch (t) {
    case Q4_0: {
        const float d = get_f16(b);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        return;
    }
    case Q4_1: {
        const float d = get_f16(b), m = get_f16(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[4 + j] & 0xF) * d + m;
            y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
        return;
    }
    case Q5_0: case Q5_1: {
        const int one = t == Q5_1;
        const float d = get_f16(b), m = one ? get_f16(b + 2) : 0.0f;
        uint32_t qh;
        memcpy(&qh, b + (one ? 4 : 2), 4);
        const uint8_t *qs = b + (one ? 8 : 6);
        for (int j = 0; j < 16; j++) {
            const int lo = (qs[j] & 0xF) | (((qh >> j) & 1) << 4), hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            if (one) {
                y[j] = (float)lo * d + m;
                y[j + 16] = (float)hi * d + m;
            } else {
                y[j] = (float)(lo - 16) * d;
                y[j + 16] = (float)(hi - 16) * d;
            }
        }
        return;
    }
    case Q8_0: {
        const float d = get_f16(b);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        return;
    }
    case Q4_K: case Q5_K: {
        const int five = t == Q5_K;
        const float d = get_f16(b), dmin = get_f16(b + 2);
        const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
        for (int c = 0; c < 4; c++)
            for (int half = 0; half < 2; half++) {
                const int s = 2 * c + half;
                uint8_t sc, m;
                k_scale_min(b + 4, s, &sc, &m);
                const float dl = d * (float)sc, ml = dmin * (float)m;
                for (int l = 0; l < 32; l++) {
                    int q = half ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
                    if (five) q |= ((qh[l] >> s) & 1) << 4;
                    y[32 * s + l] = (float)q * dl - ml;
                }
            }
        return;
    }
    case Q6_K: {
        const float d = get_f16(b + 208);
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *L = ql + 64 * n, *Hh = qh + 32 * n;
                const int q[4] = {(L[l] & 0xF) | ((Hh[l] & 3) << 4), (L[l + 32] & 0xF) | (((Hh[l] >> 2) & 3) << 4),
                                  (L[l] >> 4) | (((Hh[l] >> 4) & 3) << 4), (L[l + 32] >> 4) | (((Hh[l] >> 6) & 3) << 4)};
                for (int k = 0; k < 4; k++) {
                    const int e = 128 * n + 32 * k + l;
                    y[e] = (float)(q[k] - 32) * (d * (float)sc[e / 16]);
                }
            }
        return;
    }
    }
}

int hq_dequantize_rows(int t, const uint8_t *table, int64_t n_rows, const int64_t *ids, int64_t n_ids, int64_t n_cols,
                       float *out) {
    int block = 32, size;
    switch (t) {
    case Q4_0: size = 18; break;
    case Q4_1: size = 20; break;
    case Q5_0: size = 22; break;
    case Q5_1: size = 24; break;
    case Q8_0: size = 34; break;
    case Q4_K: block = QK_K, size = 144; break;
    case Q5_K: block = QK_K, size = 176; break;
    case Q6_K: block = QK_K, size = 210; break;
    default: return 1;
    }
    if (n_cols % block) return 1;
    const int64_t nb = n_cols / block, row_bytes = nb * size;
    for (int64_t r = 0; r < n_ids; r++) {
        if (ids[r] < 0 || ids[r] >= n_rows) return 2;
        for (int64_t i = 0; i < nb; i++)
            dq_block(t, table + ids[r] * row_bytes + i * size, out + r * n_cols + i * block);
    }
    return 0;
}
