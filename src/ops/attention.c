/* attention.c — reference kernels for transformer blocks: Attention (opset 23+, MHA/GQA/MQA,
 * masks, KV cache), FlexAttention (preview), RotaryEmbedding, SwiGLU, LinearAttention and
 * CausalConvWithState. Computation is in float; 16-bit inputs are rounded where the ONNX
 * reference rounds them. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static bool at_is_f32ish(kiln_dtype t)
{
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16 ||
           t == KILN_DTYPE_DOUBLE;
}

/* Round v as storing it in dtype t would (identity for float/double). */
static float at_round(kiln_dtype t, float v)
{
    if (t == KILN_DTYPE_FLOAT16) return core_f16_to_f32(core_f32_to_f16(v));
    if (t == KILN_DTYPE_BFLOAT16) return core_bf16_to_f32(core_f32_to_bf16(v));
    return v;
}

/* Whole tensor as a new float array (free with free()); NULL on OOM. */
static float *at_load(const core_tensor *t)
{
    float *p = core_malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(float));
    if (!p) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        memcpy(p, t->data, (size_t)t->numel * sizeof(float));
    } else if (t->dtype == KILN_DTYPE_FLOAT16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) p[i] = core_f16_to_f32(s[i]);
    } else if (t->dtype == KILN_DTYPE_BFLOAT16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) p[i] = core_bf16_to_f32(s[i]);
    } else {
        for (int64_t i = 0; i < t->numel; i++) p[i] = (float)core_load_f64(t->dtype, t->data, i);
    }
    return p;
}


/* Copy x, either [B, S, H*D] (packed) or [B, H, S, D], into dst laid out [B, H, S, D]. */
static void at_to_bhsd(const float *x, bool packed, int64_t B, int64_t H, int64_t S, int64_t D,
                       float *dst)
{
    if (!packed) {
        memcpy(dst, x, (size_t)(B * H * S * D) * sizeof(float));
        return;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++)
                memcpy(dst + ((b * H + h) * S + s) * D, x + ((b * S + s) * H + h) * D,
                       (size_t)D * sizeof(float));
}

/* ---- Attention --------------------------------------------------------------------------- */

typedef struct at_buf {
    float *q, *k, *v, *mask, *row, *bias, *p;
    int64_t *nonpad;
} at_buf;

static void at_buf_free(at_buf *b)
{
    free(b->q);
    free(b->k);
    free(b->v);
    free(b->mask);
    free(b->row);
    free(b->bias);
    free(b->p);
    free(b->nonpad);
}

static kiln_status attention_run(ops_ctx *c)
{
    core_tensor *Q = ops_input(c, 0), *K = ops_input(c, 1), *V = ops_input(c, 2);
    core_tensor *M = ops_input(c, 3), *PK = ops_input(c, 4), *PV = ops_input(c, 5);
    core_tensor *NP = ops_input(c, 6);
    if (!Q || !K || !V) return ops_error(c, KILN_ERR_INVALID_MODEL, "Attention needs Q, K and V");
    kiln_dtype dt = Q->dtype;
    if (!at_is_f32ish(dt) || K->dtype != dt || V->dtype != dt)
        return ops_error(c, KILN_ERR_DTYPE, "Q, K, V must share one float dtype");
    if (Q->ndim != K->ndim || Q->ndim != V->ndim || (Q->ndim != 3 && Q->ndim != 4))
        return ops_error(c, KILN_ERR_SHAPE, "Q, K, V must all be 3-D or all 4-D (got %d, %d, %d)",
                         Q->ndim, K->ndim, V->ndim);
    if ((PK == NULL) != (PV == NULL))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "past_key and past_value go together");
    if (NP && PK)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "nonpad_kv_seqlen cannot be used with past_key");
    bool packed = Q->ndim == 3;
    int64_t B = Q->dims[0], Hq, Hkv, Sq, Skv, D, Dv;
    if (packed) {
        Hq = ops_attr_int(c, "q_num_heads", 0);
        Hkv = ops_attr_int(c, "kv_num_heads", 0);
        if (Hq <= 0 || Hkv <= 0)
            return ops_error(c, KILN_ERR_INVALID_MODEL,
                             "3-D inputs need positive q_num_heads and kv_num_heads");
        Sq = Q->dims[1];
        Skv = K->dims[1];
        if (Q->dims[2] % Hq || K->dims[2] % Hkv || V->dims[2] % Hkv)
            return ops_error(c, KILN_ERR_SHAPE, "hidden sizes are not multiples of the head counts");
        D = Q->dims[2] / Hq;
        Dv = V->dims[2] / Hkv;
        if (K->dims[2] / Hkv != D)
            return ops_error(c, KILN_ERR_SHAPE, "K head size %lld differs from Q head size %lld",
                             (long long)(K->dims[2] / Hkv), (long long)D);
        if (V->dims[1] != Skv || K->dims[0] != B || V->dims[0] != B)
            return ops_error(c, KILN_ERR_SHAPE, "K and V batch/sequence dims disagree");
    } else {
        Hq = Q->dims[1];
        Hkv = K->dims[1];
        Sq = Q->dims[2];
        Skv = K->dims[2];
        D = Q->dims[3];
        Dv = V->dims[3];
        if (K->dims[3] != D || V->dims[1] != Hkv || V->dims[2] != Skv || K->dims[0] != B ||
            V->dims[0] != B)
            return ops_error(c, KILN_ERR_SHAPE, "Q, K, V shapes disagree");
    }
    if (Hkv <= 0 || Hq % Hkv != 0)
        return ops_error(c, KILN_ERR_SHAPE, "q heads %lld not a multiple of kv heads %lld",
                         (long long)Hq, (long long)Hkv);
    int64_t P = 0;
    if (PK) {
        if (PK->ndim != 4 || PV->ndim != 4 || PK->dims[0] != B || PK->dims[1] != Hkv ||
            PK->dims[3] != D || PV->dims[0] != B || PV->dims[1] != Hkv || PV->dims[3] != Dv ||
            PV->dims[2] != PK->dims[2])
            return ops_error(c, KILN_ERR_SHAPE, "past_key/past_value shapes do not match K/V");
        if (PK->dtype != dt || PV->dtype != dt)
            return ops_error(c, KILN_ERR_DTYPE, "past_key/past_value dtype differs from Q");
        P = PK->dims[2];
    }
    int64_t T = P + Skv;
    int64_t grp = Hq / Hkv;
    bool causal = ops_attr_int(c, "is_causal", 0) != 0;
    float softcap = ops_attr_float(c, "softcap", 0.0f);
    int64_t mode = ops_attr_int(c, "qk_matmul_output_mode", 0);
    int64_t sp = ops_attr_int(c, "softmax_precision", 0);
    kiln_dtype sdt = sp ? (kiln_dtype)sp : dt;
    int64_t lwin = ops_attr_int(c, "left_window_size", -1), rwin = ops_attr_int(c, "right_window_size", -1);
    double scale = ops_has_attr(c, "scale") ? ops_attr_float(c, "scale", 1.0f) : 1.0 / sqrt((double)D);
    float ss = at_round(dt, (float)sqrt(scale));

    /* mask geometry: right-aligned broadcast against (B, Hq, Sq, Tm), Tm <= T padded */
    int64_t mstr[4] = {0, 0, 0, 0}, Tm = 0;
    if (M) {
        if (M->ndim < 1 || M->ndim > 4)
            return ops_error(c, KILN_ERR_SHAPE, "attn_mask has %d dims, expected 1 to 4", M->ndim);
        Tm = M->dims[M->ndim - 1];
        int64_t want[4] = {B, Hq, Sq, Tm};
        for (int i = 0; i < M->ndim; i++) {
            int64_t d = M->dims[i], w = want[4 - M->ndim + i];
            if (d != w && d != 1)
                return ops_error(c, KILN_ERR_SHAPE, "attn_mask dim %d is %lld, expected %lld or 1",
                                 i, (long long)d, (long long)w);
        }
        if (Tm > T)
            return ops_error(c, KILN_ERR_SHAPE, "attn_mask covers %lld keys, only %lld exist",
                             (long long)Tm, (long long)T);
        if (M->dtype != KILN_DTYPE_BOOL && !core_dtype_is_float(M->dtype))
            return ops_error(c, KILN_ERR_DTYPE, "attn_mask is %s, expected bool or float",
                             core_dtype_name(M->dtype));
        ops_broadcast_strides(M->ndim, M->dims, 4, want, mstr);
    }

    at_buf bf;
    memset(&bf, 0, sizeof bf);
    kiln_status st = KILN_OK;
    bf.q = core_malloc((size_t)(B * Hq * Sq * D + 1) * sizeof(float));
    bf.k = core_malloc((size_t)(B * Hkv * T * D + 1) * sizeof(float));
    bf.v = core_malloc((size_t)(B * Hkv * T * Dv + 1) * sizeof(float));
    bf.row = core_malloc((size_t)(T + 1) * sizeof(float));
    bf.bias = core_malloc((size_t)(T + 1) * sizeof(float));
    bf.p = core_malloc((size_t)(T + 1) * sizeof(float));
    if (!bf.q || !bf.k || !bf.v || !bf.row || !bf.bias || !bf.p) { st = core_oom(); goto done; }
    if (NP) {
        if (NP->numel != B || !core_dtype_is_int(NP->dtype)) {
            st = ops_error(c, KILN_ERR_SHAPE, "nonpad_kv_seqlen must hold %lld integers", (long long)B);
            goto done;
        }
        bf.nonpad = core_malloc((size_t)(B + 1) * sizeof(int64_t));
        if (!bf.nonpad) { st = core_oom(); goto done; }
        for (int64_t b = 0; b < B; b++) bf.nonpad[b] = core_load_i64(NP->dtype, NP->data, b);
    }
    if (M) {
        bf.mask = at_load(M);
        if (!bf.mask) { st = core_oom(); goto done; }
    }
    {
        float *tq = at_load(Q), *tk = at_load(K), *tv = at_load(V);
        float *tpk = PK ? at_load(PK) : NULL, *tpv = PV ? at_load(PV) : NULL;
        bool ok = tq && tk && tv && (!PK || (tpk && tpv));
        if (ok) {
            at_to_bhsd(tq, packed, B, Hq, Sq, D, bf.q);
            /* present = concat(past, new) along the sequence axis */
            float *nk = core_malloc((size_t)(B * Hkv * Skv * D + 1) * sizeof(float));
            float *nv = core_malloc((size_t)(B * Hkv * Skv * Dv + 1) * sizeof(float));
            ok = nk && nv;
            if (ok) {
                at_to_bhsd(tk, packed, B, Hkv, Skv, D, nk);
                at_to_bhsd(tv, packed, B, Hkv, Skv, Dv, nv);
                for (int64_t bh = 0; bh < B * Hkv; bh++) {
                    if (P) {
                        memcpy(bf.k + bh * T * D, tpk + bh * P * D, (size_t)(P * D) * sizeof(float));
                        memcpy(bf.v + bh * T * Dv, tpv + bh * P * Dv, (size_t)(P * Dv) * sizeof(float));
                    }
                    memcpy(bf.k + (bh * T + P) * D, nk + bh * Skv * D, (size_t)(Skv * D) * sizeof(float));
                    memcpy(bf.v + (bh * T + P) * Dv, nv + bh * Skv * Dv, (size_t)(Skv * Dv) * sizeof(float));
                }
            }
            free(nk);
            free(nv);
        }
        free(tq);
        free(tk);
        free(tv);
        free(tpk);
        free(tpv);
        if (!ok) { st = core_oom(); goto done; }
    }

    /* outputs */
    int64_t kvd[4] = {B, Hkv, T, D}, vvd[4] = {B, Hkv, T, Dv};
    if (ops_has_output(c, 1)) {
        core_tensor *pk = ops_output(c, 1, dt, 4, kvd);
        if (!pk) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
        ops_store_f32(pk, bf.k, B * Hkv * T * D);
    }
    if (ops_has_output(c, 2)) {
        core_tensor *pv = ops_output(c, 2, dt, 4, vvd);
        if (!pv) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
        ops_store_f32(pv, bf.v, B * Hkv * T * Dv);
    }
    core_tensor *qk = NULL;
    if (ops_has_output(c, 3)) {
        int64_t qd[4] = {B, Hq, Sq, T};
        qk = ops_output(c, 3, dt, 4, qd);
        if (!qk) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
    }
    int64_t ydims[4];
    int yn;
    if (packed) {
        ydims[0] = B; ydims[1] = Sq; ydims[2] = Hq * Dv; yn = 3;
    } else {
        ydims[0] = B; ydims[1] = Hq; ydims[2] = Sq; ydims[3] = Dv; yn = 4;
    }
    core_tensor *y = ops_output(c, 0, dt, yn, ydims);
    if (!y) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
    float *yb = core_malloc((size_t)(B * Hq * Sq * Dv + 1) * sizeof(float));
    float *qkb = qk ? core_malloc((size_t)(B * Hq * Sq * T + 1) * sizeof(float)) : NULL;
    if (!yb || (qk && !qkb)) {
        free(yb);
        free(qkb);
        st = core_oom();
        goto done;
    }
    for (int64_t q = 0; q < B * Hq * Sq * D; q++) bf.q[q] = at_round(dt, bf.q[q] * ss);
    for (int64_t q = 0; q < B * Hkv * T * D; q++) bf.k[q] = at_round(dt, bf.k[q] * ss);

    for (int64_t b = 0; b < B; b++) {
        int64_t off = PK ? P : bf.nonpad ? bf.nonpad[b] - Sq : 0;
        for (int64_t h = 0; h < Hq; h++) {
            int64_t kh = h / grp;
            const float *kb = bf.k + (b * Hkv + kh) * T * D;
            const float *vb = bf.v + (b * Hkv + kh) * T * Dv;
            for (int64_t i = 0; i < Sq; i++) {
                const float *qr = bf.q + ((b * Hq + h) * Sq + i) * D;
                float *out_qk = qkb ? qkb + ((b * Hq + h) * Sq + i) * T : NULL;
                float *yr = yb + ((b * Hq + h) * Sq + i) * Dv;
                /* additive bias: mask, causal frontier, window, key padding */
                float bmax = -INFINITY;
                for (int64_t j = 0; j < T; j++) {
                    float bv = 0.0f;
                    if (M) {
                        if (j < Tm) {
                            float m = bf.mask[b * mstr[0] + h * mstr[1] + i * mstr[2] + j * mstr[3]];
                            if (M->dtype == KILN_DTYPE_BOOL) bv = m != 0.0f ? 0.0f : -INFINITY;
                            else bv = m;
                        } else {
                            bv = -INFINITY;
                        }
                    }
                    int64_t diff = i + off - j;
                    if (causal && diff < 0) bv += -INFINITY;
                    if (lwin >= 0 && diff > lwin) bv += -INFINITY;
                    if (rwin >= 0 && -diff > rwin) bv += -INFINITY;
                    if (bf.nonpad && j >= bf.nonpad[b]) bv += -INFINITY;
                    bv = at_round(dt, bv);
                    bf.bias[j] = bv;
                    if (bv > bmax || isnan(bv)) bmax = bv;
                }
                bool all_masked = isinf(bmax) && bmax < 0;
                for (int64_t j = 0; j < T; j++) {
                    const float *kr = kb + j * D;
                    float s = 0.0f;
                    for (int64_t d = 0; d < D; d++) s += qr[d] * kr[d];
                    s = at_round(dt, s);
                    if (softcap > 0.0f) s = at_round(dt, softcap * at_round(dt, tanhf(at_round(dt, s / softcap))));
                    float sb = at_round(dt, s + bf.bias[j]);
                    if (out_qk) out_qk[j] = mode == 2 ? sb : s;
                    bf.row[j] = at_round(sdt, sb);
                }
                /* softmax; a fully masked row (decided on the bias) is all zeros */
                float mx = -INFINITY;
                bool nan = false;
                for (int64_t j = 0; j < T; j++) {
                    if (isnan(bf.row[j])) nan = true;
                    else if (bf.row[j] > mx) mx = bf.row[j];
                }
                if (nan) mx = NAN;
                if (isinf(mx) && mx < 0) mx = 0.0f;
                double sum = 0.0;
                for (int64_t j = 0; j < T; j++) {
                    bf.p[j] = at_round(sdt, expf(at_round(sdt, bf.row[j] - mx)));
                    sum += bf.p[j];
                }
                float fs = at_round(sdt, (float)sum);
                if (fs == 0.0f) fs = 1.0f;
                for (int64_t j = 0; j < T; j++) {
                    float pv = all_masked ? 0.0f : at_round(sdt, bf.p[j] / fs);
                    bf.p[j] = at_round(dt, pv);
                    if (out_qk && mode == 3) out_qk[j] = bf.p[j];
                }
                for (int64_t d = 0; d < Dv; d++) yr[d] = 0.0f;
                for (int64_t j = 0; j < T; j++) {
                    float pj = bf.p[j];
                    const float *vr = vb + j * Dv;
                    for (int64_t d = 0; d < Dv; d++) yr[d] += pj * vr[d];
                }
            }
        }
    }
    if (packed) {
        /* [B, Hq, Sq, Dv] -> [B, Sq, Hq*Dv] */
        float *t = core_malloc((size_t)(B * Hq * Sq * Dv + 1) * sizeof(float));
        if (!t) {
            free(yb);
            free(qkb);
            st = core_oom();
            goto done;
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hq; h++)
                for (int64_t s = 0; s < Sq; s++)
                    memcpy(t + ((b * Sq + s) * Hq + h) * Dv, yb + ((b * Hq + h) * Sq + s) * Dv,
                           (size_t)Dv * sizeof(float));
        free(yb);
        yb = t;
    }
    ops_store_f32(y, yb, B * Hq * Sq * Dv);
    if (qk) ops_store_f32(qk, qkb, B * Hq * Sq * T);
    free(yb);
    free(qkb);
done:
    at_buf_free(&bf);
    return st;
}

/* ---- RotaryEmbedding ---------------------------------------------------------------------- */

static kiln_status rotary_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0), *cc = ops_input(c, 1), *sc = ops_input(c, 2);
    core_tensor *pos = ops_input(c, 3);
    if (!x || !cc || !sc)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "RotaryEmbedding needs X, cos_cache, sin_cache");
    if (!at_is_f32ish(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "X is %s, expected a float type", core_dtype_name(x->dtype));
    int64_t B, S, H, D;
    bool packed = x->ndim == 3;
    if (x->ndim == 4) {
        B = x->dims[0]; H = x->dims[1]; S = x->dims[2]; D = x->dims[3];
    } else if (packed) {
        H = ops_attr_int(c, "num_heads", 0);
        if (H <= 0 || x->dims[2] % H)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "3-D input needs num_heads dividing %lld",
                             (long long)x->dims[2]);
        B = x->dims[0]; S = x->dims[1]; D = x->dims[2] / H;
    } else {
        return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected 3 or 4", x->ndim);
    }
    int64_t rd = ops_attr_int(c, "rotary_embedding_dim", 0);
    if (rd == 0) rd = D;
    if (rd < 0 || rd > D || rd % 2)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "rotary_embedding_dim %lld invalid for head size %lld",
                         (long long)rd, (long long)D);
    int64_t half = rd / 2;
    bool inter = ops_attr_int(c, "interleaved", 0) != 0;
    if (cc->ndim != sc->ndim || cc->numel != sc->numel || cc->dims[cc->ndim - 1] != half)
        return ops_error(c, KILN_ERR_SHAPE, "cos/sin caches must match and end in %lld", (long long)half);
    int64_t maxpos = 0;
    if (pos) {
        if (cc->ndim != 2) return ops_error(c, KILN_ERR_SHAPE, "with position_ids the caches must be 2-D");
        if (pos->numel != B * S || !core_dtype_is_int(pos->dtype))
            return ops_error(c, KILN_ERR_SHAPE, "position_ids must be integer [%lld, %lld]",
                             (long long)B, (long long)S);
        maxpos = cc->dims[0];
    } else if (cc->ndim != 3 || cc->dims[0] != B || cc->dims[1] != S) {
        return ops_error(c, KILN_ERR_SHAPE, "without position_ids the caches must be [%lld, %lld, %lld]",
                         (long long)B, (long long)S, (long long)half);
    }
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    float *X = at_load(x), *C = at_load(cc), *Sn = at_load(sc);
    kiln_status st = KILN_OK;
    if (!X || !C || !Sn) st = core_oom();
    for (int64_t b = 0; b < B && !st; b++)
        for (int64_t s = 0; s < S && !st; s++) {
            int64_t row = b * S + s;
            if (pos) {
                row = core_load_i64(pos->dtype, pos->data, b * S + s);
                if (row < 0 || row >= maxpos) {
                    st = ops_error(c, KILN_ERR_RUNTIME, "position id %lld outside cache of %lld",
                                   (long long)row, (long long)maxpos);
                    break;
                }
            }
            const float *cr = C + row * half, *sr = Sn + row * half;
            for (int64_t h = 0; h < H; h++) {
                float *v = X + (packed ? ((b * S + s) * H + h) * D : ((b * H + h) * S + s) * D);
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = inter ? 2 * i : i, i2 = inter ? 2 * i + 1 : i + half;
                    float x1 = v[i1], x2 = v[i2];
                    v[i1] = cr[i] * x1 - sr[i] * x2;
                    v[i2] = sr[i] * x1 + cr[i] * x2;
                }
            }
        }
    if (!st) ops_store_f32(y, X, x->numel);
    free(X);
    free(C);
    free(Sn);
    return st;
}

/* ---- SwiGLU ----------------------------------------------------------------------------------- */

static kiln_status swiglu_run(ops_ctx *c)
{
    core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "SwiGLU needs A and B");
    if (!at_is_f32ish(a->dtype) || b->dtype != a->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "A and B must share one float dtype");
    if (a->ndim != b->ndim || memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
        return ops_error(c, KILN_ERR_SHAPE, "A and B must have identical shapes");
    float alpha = ops_attr_float(c, "alpha", 1.0f);
    core_tensor *y = ops_output(c, 0, a->dtype, a->ndim, a->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    float *A = at_load(a), *Bv = at_load(b);
    if (!A || !Bv) {
        free(A);
        free(Bv);
        return core_oom();
    }
    kiln_dtype dt = a->dtype;
    for (int64_t i = 0; i < a->numel; i++) {
        float g = A[i];
        float sw = at_round(dt, g * at_round(dt, 1.0f / (1.0f + expf(-at_round(dt, alpha * g)))));
        A[i] = sw * Bv[i];
    }
    ops_store_f32(y, A, a->numel);
    free(A);
    free(Bv);
    return KILN_OK;
}

/* ---- LinearAttention -------------------------------------------------------------------------- */

static kiln_status linear_attention_run(ops_ctx *c)
{
    core_tensor *q = ops_input(c, 0), *k = ops_input(c, 1), *v = ops_input(c, 2);
    core_tensor *ps = ops_input(c, 3), *dc = ops_input(c, 4), *be = ops_input(c, 5);
    if (!q || !k || !v) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs query, key and value");
    if (!at_is_f32ish(q->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "query is %s", core_dtype_name(q->dtype));
    const char *rule = ops_attr_string(c, "update_rule", "gated_delta");
    bool gating, delta;
    if (!strcmp(rule, "linear")) { gating = false; delta = false; }
    else if (!strcmp(rule, "gated")) { gating = true; delta = false; }
    else if (!strcmp(rule, "delta")) { gating = false; delta = true; }
    else if (!strcmp(rule, "gated_delta")) { gating = true; delta = true; }
    else return ops_error(c, KILN_ERR_INVALID_MODEL, "unknown update_rule '%s'", rule);
    if (gating != (dc != NULL))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "update_rule '%s' %s the decay input", rule,
                         gating ? "requires" : "forbids");
    if (delta != (be != NULL))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "update_rule '%s' %s the beta input", rule,
                         delta ? "requires" : "forbids");
    int64_t Hq = ops_attr_int(c, "q_num_heads", 0), Hk = ops_attr_int(c, "kv_num_heads", 0);
    if (Hq <= 0 || Hk <= 0 || Hq % Hk)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "q_num_heads %lld must be a positive multiple of kv_num_heads %lld",
                         (long long)Hq, (long long)Hk);
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3)
        return ops_error(c, KILN_ERR_SHAPE, "query, key, value must be 3-D");
    int64_t B = q->dims[0], T = q->dims[1];
    if (q->dims[2] % Hq || k->dims[2] % Hk || v->dims[2] % Hk)
        return ops_error(c, KILN_ERR_SHAPE, "hidden sizes are not multiples of the head counts");
    int64_t dk = q->dims[2] / Hq, dv = v->dims[2] / Hk, grp = Hq / Hk;
    if (k->dims[2] != Hk * dk || k->dims[0] != B || v->dims[0] != B || k->dims[1] != T || v->dims[1] != T)
        return ops_error(c, KILN_ERR_SHAPE, "key/value shapes do not match query");
    bool decay_per_dim = false;
    if (dc) {
        if (dc->ndim != 3 || dc->dims[0] != B || dc->dims[1] != T ||
            (dc->dims[2] != Hk && dc->dims[2] != Hk * dk))
            return ops_error(c, KILN_ERR_SHAPE, "decay must be [B, T, H_kv] or [B, T, H_kv*d_k]");
        decay_per_dim = dc->dims[2] == Hk * dk && !(Hk == Hk * dk);
    }
    int64_t bl = 0;
    if (be) {
        if (be->ndim != 3 || be->dims[0] != B || be->dims[1] != T || (be->dims[2] != Hk && be->dims[2] != 1))
            return ops_error(c, KILN_ERR_SHAPE, "beta must be [B, T, H_kv] or [B, T, 1]");
        bl = be->dims[2];
    }
    if (ps && (ps->ndim != 4 || ps->dims[0] != B || ps->dims[1] != Hk || ps->dims[2] != dk || ps->dims[3] != dv))
        return ops_error(c, KILN_ERR_SHAPE, "past_state must be [%lld, %lld, %lld, %lld]",
                         (long long)B, (long long)Hk, (long long)dk, (long long)dv);
    float scale = ops_attr_float(c, "scale", 0.0f);
    if (scale == 0.0f) scale = (float)(1.0 / sqrt((double)dk));
    int64_t yd[3] = {B, T, Hq * dv}, sd[4] = {B, Hk, dk, dv};
    core_tensor *y = ops_output(c, 0, q->dtype, 3, yd);
    core_tensor *pso = y ? ops_output(c, 1, ps ? ps->dtype : q->dtype, 4, sd) : NULL;
    if (!y || !pso) return KILN_ERR_OUT_OF_MEMORY;
    float *Q = at_load(q), *Kx = at_load(k), *Vx = at_load(v);
    float *Dc = dc ? at_load(dc) : NULL, *Be = be ? at_load(be) : NULL;
    float *S = ps ? at_load(ps) : core_calloc((size_t)(B * Hk * dk * dv + 1), sizeof(float));
    float *Y = core_malloc((size_t)(B * T * Hq * dv + 1) * sizeof(float));
    float *vt = core_malloc((size_t)(dv + 1) * sizeof(float));
    kiln_status st = KILN_OK;
    if (!Q || !Kx || !Vx || (dc && !Dc) || (be && !Be) || !S || !Y || !vt) st = core_oom();
    for (int64_t t = 0; t < T && !st; t++)
        for (int64_t b = 0; b < B; b++) {
            for (int64_t h = 0; h < Hk; h++) {
                float *Sh = S + (b * Hk + h) * dk * dv;
                const float *kt = Kx + (b * T + t) * Hk * dk + h * dk;
                const float *vt0 = Vx + (b * T + t) * Hk * dv + h * dv;
                if (gating) {
                    for (int64_t d = 0; d < dk; d++) {
                        float g = decay_per_dim ? Dc[(b * T + t) * Hk * dk + h * dk + d]
                                                : Dc[(b * T + t) * Hk + h];
                        float e = expf(g);
                        for (int64_t m = 0; m < dv; m++) Sh[d * dv + m] *= e;
                    }
                }
                for (int64_t m = 0; m < dv; m++) vt[m] = vt0[m];
                if (delta) {
                    float bt = Be[(b * T + t) * bl + (bl == 1 ? 0 : h)];
                    for (int64_t m = 0; m < dv; m++) {
                        float r = 0.0f;
                        for (int64_t d = 0; d < dk; d++) r += Sh[d * dv + m] * kt[d];
                        vt[m] = bt * (vt[m] - r);
                    }
                }
                for (int64_t d = 0; d < dk; d++)
                    for (int64_t m = 0; m < dv; m++) Sh[d * dv + m] += kt[d] * vt[m];
            }
            for (int64_t h = 0; h < Hq; h++) {
                const float *Sh = S + (b * Hk + h / grp) * dk * dv;
                const float *qt = Q + (b * T + t) * Hq * dk + h * dk;
                float *yt = Y + (b * T + t) * Hq * dv + h * dv;
                for (int64_t m = 0; m < dv; m++) {
                    float o = 0.0f;
                    for (int64_t d = 0; d < dk; d++) o += qt[d] * Sh[d * dv + m];
                    yt[m] = scale * o;
                }
            }
        }
    if (!st) {
        ops_store_f32(y, Y, B * T * Hq * dv);
        ops_store_f32(pso, S, B * Hk * dk * dv);
    }
    free(Q);
    free(Kx);
    free(Vx);
    free(Dc);
    free(Be);
    free(S);
    free(Y);
    free(vt);
    return st;
}

/* ---- CausalConvWithState ------------------------------------------------------------------------ */

static kiln_status causal_conv_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0), *w = ops_input(c, 1), *bias = ops_input(c, 2);
    core_tensor *ps = ops_input(c, 3);
    if (!x || !w) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs input and weight");
    if (!at_is_f32ish(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "input is %s", core_dtype_name(x->dtype));
    const char *act = ops_attr_string(c, "activation", "none");
    bool silu = !strcmp(act, "silu") || !strcmp(act, "swish");
    if (!silu && strcmp(act, "none"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "unknown activation '%s'", act);
    if (x->ndim != 3 || w->ndim != 3)
        return ops_error(c, KILN_ERR_SHAPE, "input and weight must be 3-D");
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2], k = w->dims[2];
    if (w->dims[0] != C || w->dims[1] != 1 || k < 1)
        return ops_error(c, KILN_ERR_SHAPE, "weight must be [%lld, 1, k]", (long long)C);
    if (bias && bias->numel != C)
        return ops_error(c, KILN_ERR_SHAPE, "bias must have %lld elements", (long long)C);
    if (ps && (ps->ndim != 3 || ps->dims[0] != B || ps->dims[1] != C || ps->dims[2] != k - 1))
        return ops_error(c, KILN_ERR_SHAPE, "past_state must be [%lld, %lld, %lld]", (long long)B,
                         (long long)C, (long long)(k - 1));
    int64_t sd[3] = {B, C, k - 1};
    core_tensor *y = ops_output(c, 0, x->dtype, 3, x->dims);
    core_tensor *pso = y ? ops_output(c, 1, ps ? ps->dtype : x->dtype, 3, sd) : NULL;
    if (!y || !pso) return KILN_ERR_OUT_OF_MEMORY;
    int64_t PL = L + k - 1;
    float *X = at_load(x), *W = at_load(w), *Bi = bias ? at_load(bias) : NULL;
    float *Ps = ps ? at_load(ps) : NULL;
    float *pad = core_calloc((size_t)(PL + 1), sizeof(float));
    float *Y = core_malloc((size_t)(B * C * L + 1) * sizeof(float));
    float *St = core_malloc((size_t)(B * C * (k - 1) + 1) * sizeof(float));
    kiln_status st = KILN_OK;
    if (!X || !W || (bias && !Bi) || (ps && !Ps) || !pad || !Y || !St) st = core_oom();
    for (int64_t bc = 0; bc < B * C && !st; bc++) {
        int64_t ch = bc % C;
        for (int64_t i = 0; i < k - 1; i++) pad[i] = Ps ? Ps[bc * (k - 1) + i] : 0.0f;
        memcpy(pad + k - 1, X + bc * L, (size_t)L * sizeof(float));
        for (int64_t t = 0; t < L; t++) {
            float s = Bi ? Bi[ch] : 0.0f;
            for (int64_t j = 0; j < k; j++) s += W[ch * k + j] * pad[t + j];
            s = at_round(x->dtype, s);
            if (silu) s = s / (1.0f + expf(-s));
            Y[bc * L + t] = s;
        }
        memcpy(St + bc * (k - 1), pad + L, (size_t)(k - 1) * sizeof(float));
    }
    if (!st) {
        ops_store_f32(y, Y, B * C * L);
        ops_store_f32(pso, St, B * C * (k - 1));
    }
    free(X);
    free(W);
    free(Bi);
    free(Ps);
    free(pad);
    free(Y);
    free(St);
    return st;
}

/* ---- FlexAttention (ai.onnx.preview) ------------------------------------------------------------ */

/* Run modifier subgraph g on data (B*H*L*S values of dtype sp, shape dims) in place. */
static kiln_status flex_apply_mod(ops_ctx *c, const ir_graph *g, const char *what, kiln_dtype sp,
                                  const int64_t *dims, float *data)
{
    core_tensor *t = core_tensor_create(sp, 4, dims);
    if (!t) return KILN_ERR_OUT_OF_MEMORY;
    ops_store_f32(t, data, t->numel);
    core_value *in = core_value_from_tensor(t);
    if (!in) {
        core_tensor_destroy(t);
        return core_oom();
    }
    core_value *out = NULL;
    kiln_status st = ops_run_subgraph(c, g, 1, &in, &out);
    core_value_release(in);
    if (st) return st;
    const core_tensor *o = out && out->kind == CORE_VALUE_TENSOR ? out->tensor : NULL;
    if (!o || o->ndim != 4 || memcmp(o->dims, dims, 4 * sizeof(int64_t)) ||
        !core_dtype_is_float(o->dtype)) {
        if (out) core_value_release(out);
        return ops_error(c, KILN_ERR_SHAPE, "%s must return a float tensor of the input's shape", what);
    }
    for (int64_t i = 0; i < o->numel; i++) data[i] = (float)core_load_f64(o->dtype, o->data, i);
    core_value_release(out);
    return KILN_OK;
}

static kiln_status flexattention_run(ops_ctx *c)
{
    core_tensor *Q = ops_input(c, 0), *K = ops_input(c, 1), *V = ops_input(c, 2);
    if (!Q || !K || !V) return ops_error(c, KILN_ERR_INVALID_MODEL, "FlexAttention needs Q, K and V");
    kiln_dtype dt = Q->dtype;
    if (!at_is_f32ish(dt) || K->dtype != dt || V->dtype != dt)
        return ops_error(c, KILN_ERR_DTYPE, "Q, K, V must share one float dtype");
    if (Q->ndim != 4 || K->ndim != 4 || V->ndim != 4)
        return ops_error(c, KILN_ERR_SHAPE, "Q, K, V must be 4-D");
    int64_t B = Q->dims[0], Hq = Q->dims[1], L = Q->dims[2], E = Q->dims[3];
    int64_t Hk = K->dims[1], S = K->dims[2], Ev = V->dims[3];
    if (K->dims[0] != B || V->dims[0] != B || K->dims[3] != E || V->dims[1] != Hk || V->dims[2] != S)
        return ops_error(c, KILN_ERR_SHAPE, "Q, K, V shapes disagree");
    if (Hk <= 0 || Hq % Hk)
        return ops_error(c, KILN_ERR_SHAPE, "q heads %lld not a multiple of kv heads %lld",
                         (long long)Hq, (long long)Hk);
    int64_t grp = Hq / Hk;
    kiln_dtype sp = (kiln_dtype)ops_attr_int(c, "softmax_precision",
                                             dt == KILN_DTYPE_DOUBLE ? KILN_DTYPE_DOUBLE : KILN_DTYPE_FLOAT);
    if (!at_is_f32ish(sp))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "softmax_precision %d is not a float type", (int)sp);
    float scale = ops_has_attr(c, "scale") ? ops_attr_float(c, "scale", 1.0f)
                                           : 1.0f / sqrtf((float)E);
    float ss = at_round(dt, sqrtf(scale));
    int64_t sd[4] = {B, Hq, L, S}, yd[4] = {B, Hq, L, Ev};
    core_tensor *y = ops_output(c, 0, dt, 4, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    float *q = at_load(Q), *k = at_load(K), *v = at_load(V);
    float *sc = core_malloc((size_t)(B * Hq * L * S + 1) * sizeof(float));
    float *Y = core_malloc((size_t)(B * Hq * L * Ev + 1) * sizeof(float));
    kiln_status st = KILN_OK;
    if (!q || !k || !v || !sc || !Y) st = core_oom();
    if (!st) {
        for (int64_t i = 0; i < Q->numel; i++) q[i] = at_round(dt, q[i] * ss);
        for (int64_t i = 0; i < K->numel; i++) k[i] = at_round(dt, k[i] * ss);
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hq; h++)
                for (int64_t i = 0; i < L; i++)
                    for (int64_t j = 0; j < S; j++) {
                        const float *qr = q + ((b * Hq + h) * L + i) * E;
                        const float *kr = k + ((b * Hk + h / grp) * S + j) * E;
                        float a = 0.0f;
                        for (int64_t d = 0; d < E; d++) a += qr[d] * kr[d];
                        sc[((b * Hq + h) * L + i) * S + j] = at_round(sp, at_round(dt, a));
                    }
        const ir_graph *g = ops_attr_graph(c, "score_mod");
        if (g) st = flex_apply_mod(c, g, "score_mod", sp, sd, sc);
    }
    if (!st) {
        for (int64_t r = 0; r < B * Hq * L; r++) {
            float *row = sc + r * S, mx = -INFINITY;
            for (int64_t j = 0; j < S; j++) mx = row[j] > mx || isnan(row[j]) ? row[j] : mx;
            double sum = 0.0;
            for (int64_t j = 0; j < S; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            for (int64_t j = 0; j < S; j++) row[j] = at_round(sp, (float)(row[j] / sum));
        }
        const ir_graph *g = ops_attr_graph(c, "prob_mod");
        if (g) st = flex_apply_mod(c, g, "prob_mod", sp, sd, sc);
    }
    if (!st) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hq; h++)
                for (int64_t i = 0; i < L; i++) {
                    const float *p = sc + ((b * Hq + h) * L + i) * S;
                    float *yr = Y + ((b * Hq + h) * L + i) * Ev;
                    for (int64_t d = 0; d < Ev; d++) yr[d] = 0.0f;
                    for (int64_t j = 0; j < S; j++) {
                        const float *vr = v + ((b * Hk + h / grp) * S + j) * Ev;
                        for (int64_t d = 0; d < Ev; d++) yr[d] += p[j] * vr[d];
                    }
                }
        ops_store_f32(y, Y, y->numel);
    }
    free(q);
    free(k);
    free(v);
    free(sc);
    free(Y);
    return st;
}

const ops_schema ops_table_attention[] = {
    {"Attention", "", 23, attention_run},
    {"RotaryEmbedding", "", 23, rotary_run},
    {"SwiGLU", "", 1, swiglu_run},
    {"LinearAttention", "", 1, linear_attention_run},
    {"CausalConvWithState", "", 1, causal_conv_run},
    {"FlexAttention", "ai.onnx.preview", 1, flexattention_run},
    OPS_TABLE_END
};
