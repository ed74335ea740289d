/* f16 <-> f32 conversions shared by hogar's C kernels: F16C instructions where the build has them, otherwise the
 * same round-to-nearest-even results computed with integer ops. */
#ifndef HOGAR_F16_H
#define HOGAR_F16_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __F16C__
#include <immintrin.h>
#endif

static inline float bits_f32(uint32_t w) { float f; memcpy(&f, &w, 4); return f; }
static inline uint32_t f32_bits(float f) { uint32_t w; memcpy(&w, &f, 4); return w; }

static inline float h2f_bits(uint16_t h) {
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        exp = 113;
        while (!(man & 0x400)) { man <<= 1; exp--; }
        return bits_f32(sign | (exp << 23) | ((man & 0x3ff) << 13));
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000 | (man << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
#endif
}

static inline uint16_t f2h(float f) { /* round to nearest even, as F16C / torch .half() */
#ifdef __F16C__
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t w = f32_bits(f), shl1 = w + w, sign = w & 0x80000000u, bias = shl1 & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = bits_f32((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = f32_bits(base);
    return (uint16_t)((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00 : ((bits >> 13) & 0x7C00) + (bits & 0x0FFF)));
#endif
}

#endif
