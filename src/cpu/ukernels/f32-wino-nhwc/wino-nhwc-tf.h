/* wino-nhwc-tf.h — the 1-D Winograd transforms shared by the f32-wino-nhwc microkernels,
 * written once over vector helpers the including file defines for its ISA:
 *   WV the vector type, WADD(a, b) = a + b, WSUB(a, b) = a - b, WMUL(a, k) = a * k and
 *   WFMA(a, k, c) = a * k + c (k a float constant).
 * The 2-D transforms apply them to the columns, then to the rows of a tile.
 *
 * F(2x2, 3x3) (points 0, +-1, inf; Lavin & Gray):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * F(4x4, 3x3) (points 0, +-1, +-2, inf), as in winograd.c:
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *          0 4 0 -5 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * F(6x6, 3x3) (points 0, +-1, +-2, +-1/2, inf; the wincnn / NNPACK matrices):
 *   B^T rows: [1 0 -21/4 0 21/4 0 -1 0], [0 1 1 -17/4 -17/4 1 1 0],
 *             [0 -1 1 17/4 -17/4 -1 1 0], [0 1/2 1/4 -5/2 -5/4 2 1 0],
 *             [0 -1/2 1/4 5/2 -5/4 -2 1 0], [0 2 4 -5/2 -5 1/2 1 0],
 *             [0 -2 4 5/2 -5 -1/2 1 0], [0 -1 0 21/4 0 -21/4 0 1]
 *   A^T rows: [1 1 1 1 1 1 1 0], [0 1 -1 2 -2 1/2 -1/2 0], [0 1 1 4 4 1/4 1/4 0],
 *             [0 1 -1 8 -8 1/8 -1/8 0], [0 1 1 16 16 1/16 1/16 0],
 *             [0 1 -1 32 -32 1/32 -1/32 1]
 * (G, the weight transform, is in winograd_nhwc.c.) */
#ifndef KILN_CPU_WINO_NHWC_TF_H
#define KILN_CPU_WINO_NHWC_TF_H

/* w[0..3] = B^T (d0..d3), F(2x2, 3x3) */
#define WINO_IN2_1D(d0, d1, d2, d3, w)                                                         \
    do {                                                                                       \
        w[0] = WSUB(d0, d2);                                                                   \
        w[1] = WADD(d1, d2);                                                                   \
        w[2] = WSUB(d2, d1);                                                                   \
        w[3] = WSUB(d1, d3);                                                                   \
    } while (0)

/* o[0..1] = A^T (m0..m3), F(2x2, 3x3) */
#define WINO_OUT2_1D(m0, m1, m2, m3, o)                                                        \
    do {                                                                                       \
        o[0] = WADD(WADD(m0, m1), m2);                                                         \
        o[1] = WSUB(WSUB(m1, m2), m3);                                                         \
    } while (0)

/* w[0..5] = B^T (d0..d5), F(4x4, 3x3) */
#define WINO_IN4_1D(d0, d1, d2, d3, d4, d5, w)                                                 \
    do {                                                                                       \
        w[0] = WFMA(d0, 4.0f, WFMA(d2, -5.0f, d4));                                            \
        w[1] = WFMA(WADD(d1, d2), -4.0f, WADD(d3, d4));                                        \
        w[2] = WFMA(WSUB(d1, d2), 4.0f, WSUB(d4, d3));                                         \
        w[3] = WFMA(WSUB(d3, d1), 2.0f, WSUB(d4, d2));                                         \
        w[4] = WFMA(WSUB(d1, d3), 2.0f, WSUB(d4, d2));                                         \
        w[5] = WFMA(d1, 4.0f, WFMA(d3, -5.0f, d5));                                            \
    } while (0)

/* o[0..3] = A^T (m0..m5), F(4x4, 3x3) */
#define WINO_OUT4_1D(m0, m1, m2, m3, m4, m5, o)                                                \
    do {                                                                                       \
        WV a12_ = WADD(m1, m2), d12_ = WSUB(m1, m2);                              \
        WV a34_ = WADD(m3, m4), d34_ = WSUB(m3, m4);                              \
        o[0] = WADD(WADD(m0, a12_), a34_);                                                     \
        o[1] = WFMA(d34_, 2.0f, d12_);                                                         \
        o[2] = WFMA(a34_, 4.0f, a12_);                                                         \
        o[3] = WFMA(d34_, 8.0f, WADD(d12_, m5));                                               \
    } while (0)

/* w[0..7] = B^T (d0..d7), F(6x6, 3x3) */
#define WINO_IN6_1D(d0, d1, d2, d3, d4, d5, d6, d7, w)                                         \
    do {                                                                                       \
        w[0] = WFMA(WSUB(d4, d2), 5.25f, WSUB(d0, d6));                                        \
        w[7] = WFMA(WSUB(d3, d5), 5.25f, WSUB(d7, d1));                                        \
        WV p_ = WFMA(d4, -4.25f, WADD(d2, d6));                                    \
        WV q_ = WFMA(d3, -4.25f, WADD(d1, d5));                                    \
        w[1] = WADD(p_, q_);                                                                   \
        w[2] = WSUB(p_, q_);                                                                   \
        p_ = WFMA(d4, -1.25f, WFMA(d2, 0.25f, d6));                                            \
        q_ = WFMA(d5, 2.0f, WFMA(d3, -2.5f, WMUL(d1, 0.5f)));                    \
        w[3] = WADD(p_, q_);                                                                   \
        w[4] = WSUB(p_, q_);                                                                   \
        p_ = WFMA(d4, -5.0f, WFMA(d2, 4.0f, d6));                                              \
        q_ = WFMA(d5, 0.5f, WFMA(d3, -2.5f, WADD(d1, d1)));                                    \
        w[5] = WADD(p_, q_);                                                                   \
        w[6] = WSUB(p_, q_);                                                                   \
    } while (0)

/* o[0..5] = A^T (m0..m7), F(6x6, 3x3) */
#define WINO_OUT6_1D(m0, m1, m2, m3, m4, m5, m6, m7, o)                                        \
    do {                                                                                       \
        WV a12_ = WADD(m1, m2), d12_ = WSUB(m1, m2);                              \
        WV a34_ = WADD(m3, m4), d34_ = WSUB(m3, m4);                              \
        WV a56_ = WADD(m5, m6), d56_ = WSUB(m5, m6);                              \
        o[0] = WADD(WADD(m0, a12_), WADD(a34_, a56_));                                         \
        o[1] = WFMA(d56_, 0.5f, WFMA(d34_, 2.0f, d12_));                                       \
        o[2] = WFMA(a56_, 0.25f, WFMA(a34_, 4.0f, a12_));                                      \
        o[3] = WFMA(d56_, 0.125f, WFMA(d34_, 8.0f, d12_));                                     \
        o[4] = WFMA(a56_, 0.0625f, WFMA(a34_, 16.0f, a12_));                                   \
        o[5] = WFMA(d56_, 0.03125f, WFMA(d34_, 32.0f, WADD(d12_, m7)));                        \
    } while (0)

/* The transforms by transformed-tile size A (4, 6 or 8; a constant where used): d and w
 * arrays (or array rows) of at least A vectors, o of at least A - 2. */
#define WINO_IN_1D(A, d, w)                                                                    \
    do {                                                                                       \
        if ((A) == 4) WINO_IN2_1D((d)[0], (d)[1], (d)[2], (d)[3], w);                          \
        else if ((A) == 6) WINO_IN4_1D((d)[0], (d)[1], (d)[2], (d)[3], (d)[4], (d)[5], w);    \
        else WINO_IN6_1D((d)[0], (d)[1], (d)[2], (d)[3], (d)[4], (d)[5], (d)[6], (d)[7], w);  \
    } while (0)
#define WINO_OUT_1D(A, m, o)                                                                   \
    do {                                                                                       \
        if ((A) == 4) WINO_OUT2_1D((m)[0], (m)[1], (m)[2], (m)[3], o);                         \
        else if ((A) == 6) WINO_OUT4_1D((m)[0], (m)[1], (m)[2], (m)[3], (m)[4], (m)[5], o);   \
        else WINO_OUT6_1D((m)[0], (m)[1], (m)[2], (m)[3], (m)[4], (m)[5], (m)[6], (m)[7], o); \
    } while (0)

#endif /* KILN_CPU_WINO_NHWC_TF_H */
