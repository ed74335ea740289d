/* One decoding step (one token, one cache row) of the llama block through all layers in one C call: the ops
 * ggml_math's C path calls one by one from Python (go_rms_norm, the packed matmuls, go_rope, go_attention,
 * go_swiglu), in the same order on the same values, so the result is the Python path's bit for bit; what goes is
 * the ~250 us a layer of Python, ctypes and tensor allocations between them.
 *
 * The matmuls live in the qmatmul library: the caller hands over pk_matmul_multi and p16_matmul_multi as function
 * pointers.  Built into the ggml_ops library (-ffp-contract=off); the only arithmetic here is bias and residual
 * adds, as torch does them (one rounding each).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void go_rms_norm(const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps, int nth);
void go_v_expf(const float *x, float *y, int64_t n);
void go_swiglu(const float *g, const float *u, float *y, int64_t rows, int64_t n, int nth);
void go_rope(const float *x, float *y, int64_t rows, int64_t H, int64_t D, const float *cs, const float *sn,
             int64_t n_half, int mode, int nth);
int go_attention(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t Dv, const float *q,
                 uint16_t *k, int64_t k_bs, int64_t k_ss, uint16_t *v, int64_t v_bs, int64_t v_ss,
                 int64_t key_start, int64_t n_keys, const uint8_t *mask, float kq_scale, float softcap, float *out,
                 int nth, const float *k_new, const float *v_new, int64_t new_at, int64_t n_new);

typedef int (*pk_multi_fn)(int n, const int *types, const uint8_t *const *Ps, const int64_t *n_outs, int64_t n_in,
                           const float *X, int64_t B, float *const *Ys, int nthreads, int rows_alone);
typedef int (*p16_multi_fn)(int n, const int *types, const uint8_t *const *Ps, const int64_t *n_outs, int64_t n_in,
                            const float *X, int64_t B, float *const *Ys, int nthreads);
typedef int (*fm_fn)(int type, const void *W, int64_t n_out, int64_t n_in, const float *X, int64_t B, float *Y,
                     int nthreads, int flags);

/* one kernel call: n matrices sharing the input (q, k, v or gate, up), or one */
typedef struct {
    int32_t kind; /* 0: pk_matmul_multi (K-quants), 1: p16_matmul_multi, 2: fm_matmul (F32/F16/BF16, n = 1) */
    int32_t n;
    int32_t types[3];
    int32_t pad;
    const uint8_t *ptrs[3];
    int64_t n_outs[3];
} dl_call;

/* one expert's SwiGLU FFN (slices of ffn_{gate,up,down}_exps) */
typedef struct {
    dl_call gu[2];
    dl_call down;
    int32_t n_gu, pad;
} dl_expert;

typedef struct {
    const float *attn_norm, *ffn_norm;
    const float *bias[4]; /* q, k, v, attn_output; NULL: none */
    const float *q_norm, *k_norm;
    uint16_t *kc, *vc;    /* the layer's f16 cache [n_slots, n_ctx, Hkv, D] */
    int64_t k_s0, k_s1, v_s0, v_s1; /* element strides: slot, position */
    dl_call qkv[3];
    dl_call o;
    dl_call gu[2];
    dl_call down;
    int32_t n_qkv, n_gu;
    /* n_expert > 0: a router and experts instead of gate/up/down (llama.cpp's build_moe_ffn, softmax gating) */
    int32_t n_expert, n_used, norm_w, pad;
    dl_call router;
    const dl_expert *experts;
} dl_layer;

typedef struct {
    int64_t n_embd, n_head, n_head_kv, head_dim, head_dim_v, n_ff, n_half;
    float eps, kq_scale, softcap;
    int32_t neox;
    void *pk_multi, *p16_multi, *fm;
} dl_model;

static int run_call(const dl_model *m, const dl_call *c, int64_t n_in, const float *x, int64_t B, float *const *ys,
                    int nth, int rows_alone) {
    if (c->kind == 0)
        return ((pk_multi_fn)m->pk_multi)(c->n, c->types, c->ptrs, c->n_outs, n_in, x, B, ys, nth, rows_alone);
    if (c->kind == 1) return ((p16_multi_fn)m->p16_multi)(c->n, c->types, c->ptrs, c->n_outs, n_in, x, B, ys, nth);
    return ((fm_fn)m->fm)(c->types[0], c->ptrs[0], c->n_outs[0], n_in, x, B, ys[0], nth, rows_alone ? 1 : 0);
}

/* calls[0..n_calls) cover the outputs outs[0..] in order */
static int run_calls(const dl_model *m, const dl_call *calls, int n_calls, int64_t n_in, const float *x, int64_t B,
                     float *const *outs, int nth, int rows_alone) {
    int at = 0;
    for (int i = 0; i < n_calls; i++) {
        int rc = run_call(m, &calls[i], n_in, x, B, outs + at, nth, rows_alone);
        if (rc) return rc;
        at += calls[i].n;
    }
    return 0;
}

static void add_bias(float *y, const float *b, int64_t n, int64_t B) {
    if (b)
        for (int64_t r = 0; r < B; r++)
            for (int64_t i = 0; i < n; i++) y[r * n + i] = y[r * n + i] + b[i];
}

/* hogar.models.moe._one_token: y = sum over the selected experts j of expert_j(x) * weight_j, in selection order.
 * Routing: softmax (ggml_soft_max: ggml_v_expf 16 at a time and _mm512_reduce_add_ps, the tail by exp; a sequential
 * double sum), the top n_used by value (std::sort, descending: stable where nothing is tied; more than 16 experts
 * with a tie among the first ones: code 3, the Python path sorts as libstdc++ does), weights optionally divided by
 * their (double) sum.  scratch: 3 n_ff + n_embd floats. */
static int moe_ffn(const dl_model *m, const dl_layer *L, const float *x, float *y, float *scratch, int nth,
                   int rows_alone) {
    enum { NE = 256 };
    const int n = L->n_expert, k = L->n_used;
    const int64_t E = m->n_embd, F = m->n_ff;
    if (n > NE || k > n || k < 1) return 1;
    float logits[NE], d[NE], probs[NE], w[NE];
    int sel[NE], used[NE] = {0};
    float *lo[1] = {logits};
    int rc = run_call(m, &L->router, E, x, 1, lo, nth, rows_alone);
    if (rc) return rc;
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++) d[i] = logits[i] - mx;
    const int n16 = n / 16 * 16;
    if (n16) go_v_expf(d, probs, n16);
    double total = 0.0;
    for (int c = 0; c < n16; c += 16) {
        const float *e = probs + c;
        float a[8], b[4];
        for (int i = 0; i < 8; i++) a[i] = e[8 + i] + e[i];
        for (int i = 0; i < 4; i++) b[i] = a[4 + i] + a[i];
        total += (double)((b[0] + b[2]) + (b[1] + b[3]));
    }
    for (int i = n16; i < n; i++) {
        probs[i] = (float)exp((double)d[i]);
        total += (double)probs[i];
    }
    const float inv = (float)(1.0 / total);
    for (int i = 0; i < n; i++) probs[i] = probs[i] * inv;
    const int n_sort = k < n ? k + 1 : k;
    for (int j = 0; j < n_sort; j++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!used[i] && (best < 0 || probs[i] > probs[best])) best = i;
        used[best] = 1;
        sel[j] = best;
    }
    if (n > 16)
        for (int j = 0; j + 1 < n_sort; j++)
            if (probs[sel[j]] == probs[sel[j + 1]]) return 3;
    for (int j = 0; j < k; j++) w[j] = probs[sel[j]];
    if (L->norm_w) {
        double sum = 0.0;
        for (int j = 0; j < k; j++) sum += (double)w[j];
        float t = (float)sum;
        const float min_sum = 6.103515625e-5f;
        t = t < min_sum ? min_sum : t;
        for (int j = 0; j < k; j++) w[j] = w[j] / t;
    }
    float *g = scratch, *u = g + F, *s = u + F, *f = s + F;
    for (int j = 0; j < k; j++) {
        const dl_expert *X = &L->experts[sel[j]];
        float *gu[2] = {g, u}, *fo[1] = {f};
        if ((rc = run_calls(m, X->gu, X->n_gu, E, x, 1, gu, nth, 1))) return rc;
        go_swiglu(g, u, s, 1, F, nth);
        if ((rc = run_calls(m, &X->down, 1, F, s, 1, fo, nth, 1))) return rc;
        for (int64_t i = 0; i < E; i++) y[i] = j ? y[i] + f[i] * w[j] : f[i] * w[j];
    }
    return 0;
}

/* x [B, n_embd] (in and out): the hidden states of B tokens, token b at position pos[b] of cache row row[b] (B > 1:
 * separate sequences decoded together, each with the arithmetic of decoding it alone: the matmuls get rows_alone);
 * cos/sin [B, n_half]: their rope.  Experts take one token (B = 1).  Returns 0, or the failing kernel's code (the
 * caller then takes the Python path for the whole step). */
int go_decode_llama(const dl_model *m, const dl_layer *layers, int n_layer, float *x, const float *cos,
                    const float *sin, const int64_t *row, const int64_t *pos, int64_t B, int nth, int rows_alone) {
    const int64_t E = m->n_embd, H = m->n_head, Hkv = m->n_head_kv, D = m->head_dim, Dv = m->head_dim_v;
    const int64_t F = m->n_ff, nq = H * D, nk = Hkv * D, nv = Hkv * Dv;
    const int64_t sizes[] = {E, nq, nk, nv, nq, nk, nq, nk, H * Dv, E, E, E, F, F, F, E, 3 * F + E};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (B * sizes[i] + 15) / 16 * 16;
    float *buf = aligned_alloc(64, (size_t)total * sizeof(float));
    if (!buf) return 2;
    float *p[17], *at = buf;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[i] = at;
        at += (B * sizes[i] + 15) / 16 * 16;
    }
    float *xn = p[0], *q = p[1], *k = p[2], *v = p[3], *qn = p[4], *kn = p[5], *qr = p[6], *kr = p[7], *att = p[8];
    float *a = p[9], *h = p[10], *hn = p[11], *g = p[12], *u = p[13], *s = p[14], *f = p[15];
    int rc = 0;
    for (int il = 0; il < n_layer && !rc; il++) {
        const dl_layer *L = &layers[il];
        if (L->n_expert && B != 1) {
            rc = 1;
            break;
        }
        go_rms_norm(x, L->attn_norm, xn, B, E, m->eps, nth);
        float *qkv[3] = {q, k, v};
        if ((rc = run_calls(m, L->qkv, L->n_qkv, E, xn, B, qkv, nth, rows_alone))) break;
        add_bias(q, L->bias[0], nq, B);
        add_bias(k, L->bias[1], nk, B);
        add_bias(v, L->bias[2], nv, B);
        const float *q_in = q, *k_in = k;
        if (L->q_norm) {
            go_rms_norm(q, L->q_norm, qn, B * H, D, m->eps, nth);
            go_rms_norm(k, L->k_norm, kn, B * Hkv, D, m->eps, nth);
            q_in = qn, k_in = kn;
        }
        go_rope(q_in, qr, B, H, D, cos, sin, m->n_half, m->neox, nth);
        go_rope(k_in, kr, B, Hkv, D, cos, sin, m->n_half, m->neox, nth);
        for (int64_t b = 0; b < B && !rc; b++)
            if (go_attention(1, 1, H, Hkv, D, Dv, qr + b * nq, L->kc + row[b] * L->k_s0, L->k_s0, L->k_s1,
                             L->vc + row[b] * L->v_s0, L->v_s0, L->v_s1, 0, pos[b] + 1, NULL, m->kq_scale,
                             m->softcap, att + b * H * Dv, nth, kr + b * nk, v + b * nv, pos[b], 1))
                rc = 2;
        if (rc) break;
        float *ao[1] = {a};
        if ((rc = run_calls(m, &L->o, 1, H * Dv, att, B, ao, nth, rows_alone))) break;
        add_bias(a, L->bias[3], E, B);
        for (int64_t i = 0; i < B * E; i++) h[i] = x[i] + a[i];
        go_rms_norm(h, L->ffn_norm, hn, B, E, m->eps, nth);
        if (L->n_expert) {
            if ((rc = moe_ffn(m, L, hn, f, p[16], nth, rows_alone))) break;
            for (int64_t i = 0; i < E; i++) x[i] = h[i] + f[i];
            continue;
        }
        float *gu[2] = {g, u};
        if ((rc = run_calls(m, L->gu, L->n_gu, E, hn, B, gu, nth, rows_alone))) break;
        go_swiglu(g, u, s, B, F, nth);
        float *fo[1] = {f};
        if ((rc = run_calls(m, &L->down, 1, F, s, B, fo, nth, rows_alone))) break;
        for (int64_t i = 0; i < B * E; i++) x[i] = h[i] + f[i];
    }
    free(buf);
    return rc;
}
