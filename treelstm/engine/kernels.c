/* Fused level steps of the native engine on the CPU, float32 (see kernels.py, which compiles
 * this file once per machine and falls back to the pure-torch ops when it cannot).
 *
 * A level of the pure-torch loop is a dozen small ops, each a pass over the level's rows and,
 * for a single tree, mostly per-op overhead (~2-5 us each). Here the gate nonlinearities, the
 * children's forget terms (their c read by row index, not gathered first) and the new state are
 * one pass over each row. The matrix products stay in torch (MKL).
 *
 * exp is Cephes' single-precision polynomial (about 1 ulp), written so that gcc vectorises the
 * row loops (-O3 -fno-trapping-math); NaN propagates, large arguments saturate. */
#include <stdint.h>
#include <string.h>
#include <math.h>

/* What kernels.py looks for in a cached library before it loads it: this build's key. */
#ifndef TL_BUILD_KEY
#define TL_BUILD_KEY "unknown"
#endif
__attribute__((used)) const char tl_build_key[] = "treelstm-kernels-" TL_BUILD_KEY;

static inline float exp_f(float x) {
    float a = x > 88.3762626647949f ? 88.3762626647949f : x;
    a = a < -87.3365447504f ? -87.3365447504f : a;
    float n = floorf(a * 1.44269504088896341f + 0.5f);
    a = a - n * 0.693359375f + n * 2.12194440e-4f;
    float z = a * a;
    float y = (((((1.9875691500E-4f * a + 1.3981999507E-3f) * a + 8.3334519073E-3f) * a
                 + 4.1665795894E-2f) * a + 1.6666665459E-1f) * a + 5.0000001201E-1f) * z
              + a + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    y = y * scale.f;
    return x > 88.72283935546875f ? INFINITY : y;  /* overflow: sigmoid(-inf) is 0, as torch's */
}

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

/* Cephes' tanhf: a polynomial below 0.625, 1 - 2 / (exp(2|x|) + 1) above. (The second alone
 * is ~15% faster in the update but loses relative precision near 0: tanh(1e-6) off by 5%.) */
static inline float tanh_f(float x) {
    float a = x < 0 ? -x : x;
    float big = 1.0f - 2.0f / (exp_f(a + a) + 1.0f);
    big = x < 0 ? -big : big;
    float z = x * x;
    float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z
                    + 1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    return a >= 0.625f ? big : small;
}

/* dst[r] = src[idx[r]], rows of row_len floats. */
void tl_gather_rows(const float *src, int64_t row_len, const int64_t *idx, int64_t n,
                    float *dst) {
    for (int64_t r = 0; r < n; r++)
        memcpy(dst + r * row_len, src + idx[r] * row_len, (size_t)row_len * sizeof(float));
}

/* dst[n, H] = sum over edges e of src[e] into row parent[e] (dst zeroed first). */
void tl_sum_rows(const float *src, int64_t H, const int64_t *parent, int64_t edges, int64_t n,
                 float *dst) {
    memset(dst, 0, (size_t)(n * H) * sizeof(float));
    for (int64_t e = 0; e < edges; e++) {
        float *d = dst + parent[e] * H;
        const float *s = src + e * H;
        for (int64_t j = 0; j < H; j++) d[j] += s[j];
    }
}

/* The N-ary node update (arity 0: leaves, blocks i | g | o). act [n, W], row blocks
 * i | f_1..f_N | g | o of H (+ padding), the pre-activations; children [n * arity] the
 * children's rows of c_rows (an empty slot's row is zero). Writes c = i g + sum_k f_k c_k and
 * h = o tanh(c); with keep, act's blocks become the activations (what a backward needs). */
void tl_nary_update(int64_t n, int64_t arity, int64_t H, int64_t W, float *act,
                    const float *c_rows, const int64_t *children, float *h_out, float *c_out,
                    int32_t keep) {
    for (int64_t r = 0; r < n; r++) {
        float *a = act + r * W, *c = c_out + r * H, *h = h_out + r * H;
        float *ai = a, *ag = a + (arity + 1) * H, *ao = a + (arity + 2) * H;
        if (keep) {
            for (int64_t j = 0; j < H; j++) {
                float i = sigmoid_f(ai[j]), g = tanh_f(ag[j]), o = sigmoid_f(ao[j]);
                c[j] = i * g;
                ai[j] = i;
                ag[j] = g;
                ao[j] = o;
            }
        } else {
            for (int64_t j = 0; j < H; j++) {
                float i = sigmoid_f(ai[j]), g = tanh_f(ag[j]);
                c[j] = i * g;
            }
        }
        for (int64_t k = 0; k < arity; k++) {
            const float *ck = c_rows + children[r * arity + k] * H;
            float *af = a + (k + 1) * H;
            if (keep) {
                for (int64_t j = 0; j < H; j++) {
                    float f = sigmoid_f(af[j]);
                    af[j] = f;
                    c[j] += f * ck[j];
                }
            } else {
                for (int64_t j = 0; j < H; j++) c[j] += sigmoid_f(af[j]) * ck[j];
            }
        }
        if (keep) {
            for (int64_t j = 0; j < H; j++) h[j] = ao[j] * tanh_f(c[j]);
        } else {
            for (int64_t j = 0; j < H; j++) h[j] = sigmoid_f(ao[j]) * tanh_f(c[j]);
        }
    }
}

/* The Child-Sum node update without autograd. gates [n, W]: i at column 0, g at g_col, o at
 * o_col (pre-activations, from U_iog sum_k h_k); forget [E, H] the edges' forget
 * pre-activations; edge e joins child row children[e] of c_rows to parent[e] (0..n-1).
 * Writes c = i g + sum_k f_k c_k and h = o tanh(c). */
void tl_childsum_update(int64_t n, int64_t H, int64_t W, int64_t g_col, int64_t o_col,
                        const float *gates, int64_t edges, const float *forget,
                        const float *c_rows, const int64_t *children, const int64_t *parent,
                        float *h_out, float *c_out) {
    for (int64_t r = 0; r < n; r++) {
        const float *a = gates + r * W;
        float *c = c_out + r * H;
        for (int64_t j = 0; j < H; j++) c[j] = sigmoid_f(a[j]) * tanh_f(a[g_col + j]);
    }
    for (int64_t e = 0; e < edges; e++) {
        float *c = c_out + parent[e] * H;
        const float *f = forget + e * H, *ck = c_rows + children[e] * H;
        for (int64_t j = 0; j < H; j++) c[j] += sigmoid_f(f[j]) * ck[j];
    }
    for (int64_t r = 0; r < n; r++) {
        const float *a = gates + r * W;
        const float *c = c_out + r * H;
        float *h = h_out + r * H;
        for (int64_t j = 0; j < H; j++) h[j] = sigmoid_f(a[o_col + j]) * tanh_f(c[j]);
    }
}

/* dst[idx[r]] += src[r] (row_len floats; src rows stride floats apart, dst rows row_len):
 * index_add_ of a level's gradients into its children's rows, in order (repeated rows add). */
void tl_scatter_add_rows(const float *src, int64_t stride, int64_t row_len, const int64_t *idx,
                         int64_t n, float *dst) {
    for (int64_t r = 0; r < n; r++) {
        float *d = dst + idx[r] * row_len;
        const float *s = src + r * stride;
        for (int64_t j = 0; j < row_len; j++) d[j] += s[j];
    }
}

/* The backward of one N-ary level (see functional.preactivation_grads): grad_pre [n, W] holds
 * the factors of functional.backward_factors and becomes the pre-activation gradients:
 * blocks i | f_1..f_N | g times grad_c_total = grad_c + grad_h * through, o times grad_h;
 * each child's c row (children[r * arity + k] of grad_c_rows) gets grad_c_total * f_k, f_k read
 * from the level's activations act [n, W]. */
void tl_nary_backward_level(int64_t n, int64_t arity, int64_t H, int64_t W, float *grad_pre,
                            const float *through, const float *grad_h, const float *grad_c,
                            const float *act, const int64_t *children, float *grad_c_rows) {
    for (int64_t r = 0; r < n; r++) {
        float *gp = grad_pre + r * W;
        const float *th = through + r * H, *gh = grad_h + r * H, *gc = grad_c + r * H;
        const float *a = act + r * W;
        float *gi = gp, *gg = gp + (arity + 1) * H, *go = gp + (arity + 2) * H;
        for (int64_t j = 0; j < H; j++) {
            float total = gc[j] + gh[j] * th[j];
            gi[j] *= total;
            gg[j] *= total;
            go[j] *= gh[j];
        }
        for (int64_t k = 0; k < arity; k++) {
            float *gf = gp + (k + 1) * H, *child = grad_c_rows + children[r * arity + k] * H;
            const float *f = a + (k + 1) * H;
            for (int64_t j = 0; j < H; j++) {
                float total = gc[j] + gh[j] * th[j];
                gf[j] *= total;
                child[j] += total * f[j];
            }
        }
    }
}

/* The backward of n N-ary rows (arity 0: leaves, blocks i | g | o) from their activations act
 * [n, W] (i | f_1..f_N | g | o after their nonlinearities, + padding), their c [n, H] and the
 * gradients of their h and c [n, H], in one pass (functional.backward_factors and
 * preactivation_grads): with total = grad_c + grad_h o (1 - tanh(c)^2), grad_pre [n, W] gets
 * the pre-activation gradients, i: total g i (1 - i), f_k: total c_k f_k (1 - f_k),
 * g: total i (1 - g^2), o: grad_h tanh(c) o (1 - o), zero in the padding; each child's c row
 * (children[r * arity + k] of c_rows and grad_c_rows) gets total f_k. total: H floats. */
void tl_nary_grads(int64_t n, int64_t arity, int64_t H, int64_t W, const float *act,
                   const float *c, const float *c_rows, const int64_t *children,
                   const float *grad_h, const float *grad_c, float *grad_pre,
                   float *grad_c_rows, float *total) {
    for (int64_t r = 0; r < n; r++) {
        const float *a = act + r * W, *cr = c + r * H, *gh = grad_h + r * H, *gc = grad_c + r * H;
        const float *ai = a, *ag = a + (arity + 1) * H, *ao = a + (arity + 2) * H;
        float *gp = grad_pre + r * W;
        float *gi = gp, *gg = gp + (arity + 1) * H, *go = gp + (arity + 2) * H;
        for (int64_t j = 0; j < H; j++) {
            float t = tanh_f(cr[j]), i = ai[j], g = ag[j], o = ao[j];
            float all = gc[j] + gh[j] * (o - o * (t * t));
            total[j] = all;
            gi[j] = (i - i * i) * g * all;
            gg[j] = (i - i * g * g) * all;
            go[j] = (o - o * o) * t * gh[j];
        }
        for (int64_t k = 0; k < arity; k++) {
            const int64_t child = children[r * arity + k];
            const float *f = a + (k + 1) * H, *ck = c_rows + child * H;
            float *gf = gp + (k + 1) * H, *gck = grad_c_rows + child * H;
            for (int64_t j = 0; j < H; j++) {
                gf[j] = (f[j] - f[j] * f[j]) * ck[j] * total[j];
                gck[j] += total[j] * f[j];
            }
        }
        if (W > (arity + 3) * H)
            memset(gp + (arity + 3) * H, 0, (size_t)(W - (arity + 3) * H) * sizeof(float));
    }
}

/* The Child-Sum node update for training: as tl_childsum_update, and gates' i | g | o and the
 * edges' forget pre-activations become their activations (what the backward needs). */
void tl_childsum_update_keep(int64_t n, int64_t H, int64_t W, int64_t g_col, int64_t o_col,
                             float *gates, int64_t edges, float *forget, const float *c_rows,
                             const int64_t *children, const int64_t *parent, float *h_out,
                             float *c_out) {
    for (int64_t r = 0; r < n; r++) {
        float *a = gates + r * W, *c = c_out + r * H;
        for (int64_t j = 0; j < H; j++) {
            float i = sigmoid_f(a[j]), g = tanh_f(a[g_col + j]);
            a[j] = i;
            a[g_col + j] = g;
            a[o_col + j] = sigmoid_f(a[o_col + j]);
            c[j] = i * g;
        }
    }
    for (int64_t e = 0; e < edges; e++) {
        float *c = c_out + parent[e] * H, *f = forget + e * H;
        const float *ck = c_rows + children[e] * H;
        for (int64_t j = 0; j < H; j++) {
            f[j] = sigmoid_f(f[j]);
            c[j] += f[j] * ck[j];
        }
    }
    for (int64_t r = 0; r < n; r++) {
        const float *a = gates + r * W, *c = c_out + r * H;
        float *h = h_out + r * H;
        for (int64_t j = 0; j < H; j++) h[j] = a[o_col + j] * tanh_f(c[j]);
    }
}

/* The backward of one Child-Sum level: grad_gates [n, 3H] i | g | o factors become gradients
 * (times grad_c_total = grad_c + grad_h * through; o times grad_h); each edge's forget factor
 * grad_forget [E, H] is multiplied by its parent's grad_c_total, and its child's c row of
 * grad_c_rows gets grad_c_total * f (forget [E, H] the activations). */
void tl_childsum_backward_level(int64_t n, int64_t H, float *grad_gates, const float *through,
                                const float *grad_h, const float *grad_c, int64_t edges,
                                float *grad_forget, const float *forget,
                                const int64_t *children, const int64_t *parent,
                                float *grad_c_rows) {
    for (int64_t r = 0; r < n; r++) {
        float *gp = grad_gates + r * 3 * H;
        const float *th = through + r * H, *gh = grad_h + r * H, *gc = grad_c + r * H;
        for (int64_t j = 0; j < H; j++) {
            float total = gc[j] + gh[j] * th[j];
            gp[j] *= total;
            gp[H + j] *= total;
            gp[2 * H + j] *= gh[j];
        }
    }
    for (int64_t e = 0; e < edges; e++) {
        int64_t p = parent[e];
        const float *th = through + p * H, *gh = grad_h + p * H, *gc = grad_c + p * H;
        const float *f = forget + e * H;
        float *gf = grad_forget + e * H, *child = grad_c_rows + children[e] * H;
        for (int64_t j = 0; j < H; j++) {
            float total = gc[j] + gh[j] * th[j];
            gf[j] *= total;
            child[j] += total * f[j];
        }
    }
}

/* BLAS sgemm, Fortran interface (column-major, 32-bit integers): torch's own MKL, whose
 * address kernels.py finds in libtorch_cpu. */
typedef void (*sgemm_f)(const char *transa, const char *transb, const int *m, const int *n,
                        const int *k, const float *alpha, const float *a, const int *lda,
                        const float *b, const int *ldb, const float *beta, float *c,
                        const int *ldc);

/* The N-ary levels first..num_levels-1, input at the leaves only (rows of levels < first
 * done): per level, gather the children's h (slot order) into the work buffer, pre-activations
 * = bias + a U^T by sgemm, then tl_nary_update. bounds [num_levels + 1] the levels' first rows;
 * children the child rows of every node of levels 1.. (slot order, empty slot: the zero row);
 * weight U [W, arity * H] row-major, or U^T [arity * H, W] with transposed; bias [W] or NULL.
 * activations NULL (inference: the pre-activations go to the work buffer, which holds at least
 * max_level_rows * (arity * H + W) floats), or [rows above the leaves, W], where they become
 * the activations a backward needs (training; work: max_level_rows * arity * H floats).
 * Returns 0. */
int tl_nary_levels(void *gemm_address, int64_t first, int64_t num_levels, const int64_t *bounds,
                   const int64_t *children, int64_t arity, int64_t H, int64_t W,
                   const float *weight, int32_t transposed, const float *bias, float *h_rows,
                   float *c_rows, float *activations, float *work) {
    sgemm_f gemm = (sgemm_f)gemm_address;
    const int64_t K = arity * H;
    for (int64_t level = first; level < num_levels; level++) {
        int64_t start = bounds[level], n = bounds[level + 1] - start;
        const int64_t *level_children = children + arity * (start - bounds[1]);
        float *a = work;
        float *out = activations ? activations + (start - bounds[1]) * W : work + n * K;
        tl_gather_rows(h_rows, H, level_children, n * arity, a);
        for (int64_t r = 0; r < n; r++) {
            if (bias) memcpy(out + r * W, bias, (size_t)W * sizeof(float));
            else memset(out + r * W, 0, (size_t)W * sizeof(float));
        }
        int m_ = (int)W, n_ = (int)n, k_ = (int)K, ldw = (int)(transposed ? W : K);
        int lda = (int)K, ldc = (int)W;
        float one = 1.0f;
        gemm(transposed ? "N" : "T", "N", &m_, &n_, &k_, &one, weight, &ldw, a, &lda, &one, out,
             &ldc);
        tl_nary_update(n, arity, H, W, out, c_rows, level_children, h_rows + start * H,
                       c_rows + start * H, activations != NULL);
    }
    return 0;
}

/* The N-ary backward over levels num_levels-1..1, top-down (see nary.nary_backward), then the
 * leaves: per level tl_nary_grads (the rows' pre-activation gradients into grad_pre from their
 * activations and c, the children's c gradients into grad_c_rows), then the children's h
 * gradients grad_pre P by sgemm (P [W, arity * Hp] row-major: U with each slot's block of
 * columns padded to Hp) added into grad_h_rows by children; last, the leaves' tl_nary_grads
 * (arity 0) from leaf_activations [L, leaf_W] into grad_leaf [L, leaf_W]. grad_pre,
 * activations [rows above the leaves, W]; c_rows, grad_h_rows, grad_c_rows [N + 1, H] by
 * level-order row (the last: an empty slot's); work at least
 * max_level_rows * arity * Hp + H floats. Returns 0. */
int tl_nary_backward(void *gemm_address, int64_t num_levels, const int64_t *bounds,
                     const int64_t *children, int64_t arity, int64_t H, int64_t W, int64_t Hp,
                     const float *padded_weight, const float *activations, const float *c_rows,
                     float *grad_pre, float *grad_h_rows, float *grad_c_rows,
                     const float *leaf_activations, int64_t leaf_W, float *grad_leaf,
                     float *work) {
    sgemm_f gemm = (sgemm_f)gemm_address;
    const int64_t Kp = arity * Hp;
    float one = 1.0f, zero = 0.0f;
    float *total = work, *products = work + H;
    for (int64_t level = num_levels - 1; level >= 1; level--) {
        int64_t start = bounds[level], n = bounds[level + 1] - start, row = start - bounds[1];
        const int64_t *level_children = children + arity * row;
        float *level_grad = grad_pre + row * W;
        tl_nary_grads(n, arity, H, W, activations + row * W, c_rows + start * H, c_rows,
                      level_children, grad_h_rows + start * H, grad_c_rows + start * H,
                      level_grad, grad_c_rows, total);
        int m_ = (int)Kp, n_ = (int)n, k_ = (int)W, ldp = (int)Kp, ldg = (int)W;
        gemm("N", "N", &m_, &n_, &k_, &one, padded_weight, &ldp, level_grad, &ldg, &zero,
             products, &ldp);
        tl_scatter_add_rows(products, Hp, H, level_children, n * arity, grad_h_rows);
    }
    tl_nary_grads(bounds[1], 0, H, leaf_W, leaf_activations, c_rows, NULL, NULL, grad_h_rows,
                  grad_c_rows, grad_leaf, NULL, total);
    return 0;
}

/* The Child-Sum levels 1..num_levels-1 without autograd, input at the leaves only: per level,
 * the children's h gathered (one row per edge), their forget pre-activations
 * b_f + h_k U_f^T, the sums of the children's h per node, the gates b_iog + (sum h) U_iog^T
 * (two products: U's rows i, and g | o), then tl_childsum_update. bounds, edge_bounds
 * [num_levels + 1]; children, parent the edges' child rows and parents within their level (as
 * LevelOrder's child_row, child_parent); weight U [4H, H] row-major (blocks i | f | g | o);
 * bias_forget [H], bias_gates [3H] (i | g | o) or NULL; work at least
 * 2 * max_edges * H + 4 * max_level_rows * H floats. Returns 0. */
int tl_childsum_inference(void *gemm_address, int64_t num_levels, const int64_t *bounds,
                          const int64_t *edge_bounds, const int64_t *children,
                          const int64_t *parent, int64_t H, const float *weight,
                          const float *bias_forget, const float *bias_gates, float *h_rows,
                          float *c_rows, float *work, int64_t max_edges) {
    sgemm_f gemm = (sgemm_f)gemm_address;
    float one = 1.0f;
    int h_ = (int)H, w3 = (int)(3 * H);
    for (int64_t level = 1; level < num_levels; level++) {
        int64_t start = bounds[level], n = bounds[level + 1] - start;
        int64_t first_edge = edge_bounds[level], edges = edge_bounds[level + 1] - first_edge;
        const int64_t *level_children = children + first_edge, *level_parent = parent + first_edge;
        float *child_h = work, *forget = work + max_edges * H;
        float *h_sum = work + 2 * max_edges * H, *gates = h_sum + n * H;
        tl_gather_rows(h_rows, H, level_children, edges, child_h);
        for (int64_t e = 0; e < edges; e++) {
            if (bias_forget) memcpy(forget + e * H, bias_forget, (size_t)H * sizeof(float));
            else memset(forget + e * H, 0, (size_t)H * sizeof(float));
        }
        int e_ = (int)edges, n_ = (int)n;
        gemm("T", "N", &h_, &e_, &h_, &one, weight + H * H, &h_, child_h, &h_, &one, forget, &h_);
        tl_sum_rows(child_h, H, level_parent, edges, n, h_sum);
        for (int64_t r = 0; r < n; r++) {
            if (bias_gates) memcpy(gates + r * 3 * H, bias_gates, (size_t)(3 * H) * sizeof(float));
            else memset(gates + r * 3 * H, 0, (size_t)(3 * H) * sizeof(float));
        }
        int h2 = (int)(2 * H);
        gemm("T", "N", &h_, &n_, &h_, &one, weight, &h_, h_sum, &h_, &one, gates, &w3);
        gemm("T", "N", &h2, &n_, &h_, &one, weight + 2 * H * H, &h_, h_sum, &h_, &one,
             gates + H, &w3);
        tl_childsum_update(n, H, 3 * H, H, 2 * H, gates, edges, forget, c_rows, level_children,
                           level_parent, h_rows + start * H, c_rows + start * H);
    }
    return 0;
}

/* The Child-Sum training forward over levels 1..num_levels-1, input at the leaves only (see
 * childsum.childsum_forward): per level, the children's h gathered (one row per edge), their
 * sums per node into h_sums, the edges' forget pre-activations b_f + h_k U_f^T into forget, the
 * gates b_iog + (sum h) U_iog^T into activations, then tl_childsum_update_keep. weight U
 * [4H, H] row-major; forget_bias [H], node_bias [3H]; activations [rows above the leaves, 3H],
 * h_sums [rows above the leaves, H], forget [edges, H]; work at least max_edges * H floats.
 * Returns 0. */
int tl_childsum_forward(void *gemm_address, int64_t num_levels, const int64_t *bounds,
                        const int64_t *edge_bounds, const int64_t *children,
                        const int64_t *parent, int64_t H, const float *weight,
                        const float *forget_bias, const float *node_bias, float *h_rows,
                        float *c_rows, float *activations, float *h_sums, float *forget,
                        float *work) {
    sgemm_f gemm = (sgemm_f)gemm_address;
    float one = 1.0f;
    int h_ = (int)H, h2 = (int)(2 * H), w3 = (int)(3 * H);
    for (int64_t level = 1; level < num_levels; level++) {
        int64_t start = bounds[level], n = bounds[level + 1] - start, row = start - bounds[1];
        int64_t first_edge = edge_bounds[level], edges = edge_bounds[level + 1] - first_edge;
        const int64_t *level_children = children + first_edge, *level_parent = parent + first_edge;
        float *child_h = work, *level_forget = forget + first_edge * H;
        float *h_sum = h_sums + row * H, *gates = activations + row * 3 * H;
        tl_gather_rows(h_rows, H, level_children, edges, child_h);
        tl_sum_rows(child_h, H, level_parent, edges, n, h_sum);
        for (int64_t e = 0; e < edges; e++)
            memcpy(level_forget + e * H, forget_bias, (size_t)H * sizeof(float));
        for (int64_t r = 0; r < n; r++)
            memcpy(gates + r * 3 * H, node_bias, (size_t)(3 * H) * sizeof(float));
        int e_ = (int)edges, n_ = (int)n;
        gemm("T", "N", &h_, &e_, &h_, &one, weight + H * H, &h_, child_h, &h_, &one,
             level_forget, &h_);
        gemm("T", "N", &h_, &n_, &h_, &one, weight, &h_, h_sum, &h_, &one, gates, &w3);
        gemm("T", "N", &h2, &n_, &h_, &one, weight + 2 * H * H, &h_, h_sum, &h_, &one,
             gates + H, &w3);
        tl_childsum_update_keep(n, H, 3 * H, H, 2 * H, gates, edges, level_forget, c_rows,
                                level_children, level_parent, h_rows + start * H,
                                c_rows + start * H);
    }
    return 0;
}

/* The Child-Sum backward over levels num_levels-1..1, top-down (see
 * childsum.childsum_backward): per level tl_childsum_backward_level, then the children's h
 * gradients, grad_gates U_iog gathered by parent plus grad_forget U_f per edge, added into
 * grad_h_rows by children. grad_gates [rows above the leaves, 3H], through [.., H],
 * grad_forget and forget [edges, H]; work at least max_level_rows * H + max_edges * H floats.
 * Returns 0. */
int tl_childsum_backward(void *gemm_address, int64_t num_levels, const int64_t *bounds,
                         const int64_t *edge_bounds, const int64_t *children,
                         const int64_t *parent, int64_t H, const float *weight,
                         float *grad_gates, const float *through, float *grad_forget,
                         const float *forget, float *grad_h_rows, float *grad_c_rows,
                         float *work, int64_t max_rows) {
    sgemm_f gemm = (sgemm_f)gemm_address;
    float one = 1.0f, zero = 0.0f;
    int h_ = (int)H, h2 = (int)(2 * H), w3 = (int)(3 * H);
    for (int64_t level = num_levels - 1; level >= 1; level--) {
        int64_t start = bounds[level], n = bounds[level + 1] - start, row = start - bounds[1];
        int64_t first_edge = edge_bounds[level], edges = edge_bounds[level + 1] - first_edge;
        const int64_t *level_children = children + first_edge, *level_parent = parent + first_edge;
        float *level_grad = grad_gates + row * 3 * H;
        float *level_grad_forget = grad_forget + first_edge * H;
        float *node_grad = work, *edge_grad = work + max_rows * H;
        tl_childsum_backward_level(n, H, level_grad, through + row * H, grad_h_rows + start * H,
                                   grad_c_rows + start * H, edges, level_grad_forget,
                                   forget + first_edge * H, level_children, level_parent,
                                   grad_c_rows);
        int n_ = (int)n, e_ = (int)edges;
        gemm("N", "N", &h_, &n_, &h_, &one, weight, &h_, level_grad, &w3, &zero, node_grad, &h_);
        gemm("N", "N", &h_, &n_, &h2, &one, weight + 2 * H * H, &h_, level_grad + H, &w3, &one,
             node_grad, &h_);
        tl_gather_rows(node_grad, H, level_parent, edges, edge_grad);
        gemm("N", "N", &h_, &e_, &h_, &one, weight + H * H, &h_, level_grad_forget, &h_, &one,
             edge_grad, &h_);
        tl_scatter_add_rows(edge_grad, H, H, level_children, edges, grad_h_rows);
    }
    return 0;
}

/* The N-ary biases without input above the leaves, from b_ih [4H] (blocks i | f | g | o) and
 * b_hh [(N+3)H] (i | f_1..f_N | g | o), either NULL (as zero): leaf [leaf_width], the leaves'
 * i | g | o (both biases' i | g | o blocks), and inner [inner_width], the nodes above them
 * (b_hh plus b_ih with its f block in each forget block); zero columns after. */
void tl_nary_biases(const float *b_ih, const float *b_hh, int64_t arity, int64_t H, float *leaf,
                    int64_t leaf_width, float *inner, int64_t inner_width) {
    memset(leaf, 0, (size_t)leaf_width * sizeof(float));
    memset(inner, 0, (size_t)inner_width * sizeof(float));
    for (int64_t j = 0; j < H; j++) {
        for (int64_t b = 0; b < arity + 3; b++) {  /* block b of inner: i, f_1..f_N, g, o */
            float x = b_ih ? b_ih[(b == 0 ? 0 : b <= arity ? 1 : b - arity + 1) * H + j] : 0.0f;
            float h = b_hh ? b_hh[b * H + j] : 0.0f;
            inner[b * H + j] = x + h;
            if (b == 0 || b > arity)  /* i, g, o: the leaves' blocks 0, 1, 2 */
                leaf[(b == 0 ? 0 : b - arity) * H + j] = x + h;
        }
    }
}

/* out [n, ldc]: x [n, K] times the rows of weight [*, K] (row-major) of each block
 * blocks[2b]..blocks[2b+1], transposed, side by side from column 0 (by sgemm, no copy of the
 * weight); the columns after the blocks' up to ldc zero. Returns 0. */
int tl_project_rows(void *gemm_address, int64_t n, int64_t K, const float *x,
                    const float *weight, int64_t num_blocks, const int64_t *blocks, float *out,
                    int64_t ldc) {
    sgemm_f gemm = (sgemm_f)gemm_address;
    float one = 1.0f, zero = 0.0f;
    int64_t column = 0;
    for (int64_t b = 0; b < num_blocks; b++) {
        int m_ = (int)(blocks[2 * b + 1] - blocks[2 * b]), n_ = (int)n, k_ = (int)K;
        int ldc_ = (int)ldc;
        if (m_ > 0 && n_ > 0)
            gemm("T", "N", &m_, &n_, &k_, &one, weight + blocks[2 * b] * K, &k_, x, &k_, &zero,
                 out + column, &ldc_);
        column += m_;
    }
    if (column < ldc)
        for (int64_t r = 0; r < n; r++)
            memset(out + r * ldc + column, 0, (size_t)(ldc - column) * sizeof(float));
    return 0;
}

/* Leaves' states from their words: pre [D, W] the i | g | o pre-activations of D distinct
 * words without bias, bias [3H] or NULL (added here, into pre); each word's h, c to
 * words [2, D, H]; then leaf l's to rows l of h_rows, c_rows: those of word gather[l].
 * gather NULL: the words are the leaves (D = L), their states go to h_rows, c_rows. */
void tl_leaf_word_states(int64_t D, int64_t H, int64_t W, float *pre, const float *bias,
                         int64_t L, const int64_t *gather, float *h_rows, float *c_rows,
                         float *words) {
    if (bias)
        for (int64_t r = 0; r < D; r++) {
            float *p = pre + r * W;
            for (int64_t j = 0; j < 3 * H; j++) p[j] += bias[j];
        }
    if (!gather) {
        tl_nary_update(D, 0, H, W, pre, NULL, NULL, h_rows, c_rows, 0);
        return;
    }
    tl_nary_update(D, 0, H, W, pre, NULL, NULL, words, words + D * H, 0);
    tl_gather_rows(words, H, gather, L, h_rows);
    tl_gather_rows(words + D * H, H, gather, L, c_rows);
}

/* A whole N-ary inference layer with input at its leaves only, in one call: the biases
 * (tl_nary_biases), the i | g | o pre-activations of the D distinct input rows x [D, X] by
 * sgemm on weight_ih's i and g | o rows (tl_project_rows), each distinct row's leaf state once,
 * gathered into the L leaves' rows by gather (tl_leaf_word_states; gather NULL: the rows are
 * the leaves', D = L), the zero state of an empty
 * slot in row N of h_rows, c_rows ([N + 1, H]), then levels 1.. (tl_nary_levels; weight, W as
 * there). leaf_W (>= 3H) the width of the leaves' pre-activation rows. work holds at least
 * W + leaf_W + max(D * (leaf_W + 2H), max_level_rows * (arity * H + W)) floats. Returns 0. */
int tl_nary_inference(void *gemm_address, int64_t num_levels, const int64_t *bounds,
                      const int64_t *children, int64_t arity, int64_t H, int64_t W,
                      const float *weight, int32_t transposed, const float *b_ih,
                      const float *b_hh, int64_t D, int64_t X, const float *x,
                      const float *weight_ih, int64_t leaf_W, const int64_t *gather,
                      float *h_rows, float *c_rows, float *work) {
    const int64_t N = bounds[num_levels], L = bounds[1];
    float *inner_bias = work, *leaf_bias = work + W, *rest = work + W + leaf_W;
    const int64_t blocks[4] = {0, H, 2 * H, 4 * H};  /* i, then g | o */
    tl_nary_biases(b_ih, b_hh, arity, H, leaf_bias, leaf_W, inner_bias, W);
    memset(h_rows + N * H, 0, (size_t)H * sizeof(float));
    memset(c_rows + N * H, 0, (size_t)H * sizeof(float));
    tl_project_rows(gemm_address, D, X, x, weight_ih, 2, blocks, rest, leaf_W);
    tl_leaf_word_states(D, H, leaf_W, rest, leaf_bias, L, gather, h_rows, c_rows,
                        rest + D * leaf_W);
    return tl_nary_levels(gemm_address, 1, num_levels, bounds, children, arity, H, W, weight,
                          transposed, inner_bias, h_rows, c_rows, NULL, rest);
}
