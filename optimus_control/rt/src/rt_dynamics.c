/* Rigid-body dynamics kernels on a flattened kinematic tree, in Pinocchio's conventions.
 * All kernels work in joint-local frames (as Pinocchio's do) so they need no world placements except
 * where the answer is expressed in the world. No allocation outside rt_model_create / rt_model_clone. */
#define _GNU_SOURCE
#include "rt_dynamics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The RNEA is built for x86-64-v3 (AVX2, FMA) and baseline x86-64, picked at load time (GCC >= 11). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define RT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RT_CLONES
#endif

/* ---- small 3D / spatial helpers ------------------------------------------------------------ */
static inline void cross3(const double *a, const double *b, double *out) {
    double x = a[1] * b[2] - a[2] * b[1];
    double y = a[2] * b[0] - a[0] * b[2];
    double z = a[0] * b[1] - a[1] * b[0];
    out[0] = x; out[1] = y; out[2] = z;
}
static inline void matvec(const double *R, const double *x, double *out) {
    double a = R[0] * x[0] + R[1] * x[1] + R[2] * x[2];
    double b = R[3] * x[0] + R[4] * x[1] + R[5] * x[2];
    double c = R[6] * x[0] + R[7] * x[1] + R[8] * x[2];
    out[0] = a; out[1] = b; out[2] = c;
}
static inline void matTvec(const double *R, const double *x, double *out) {
    double a = R[0] * x[0] + R[3] * x[1] + R[6] * x[2];
    double b = R[1] * x[0] + R[4] * x[1] + R[7] * x[2];
    double c = R[2] * x[0] + R[5] * x[1] + R[8] * x[2];
    out[0] = a; out[1] = b; out[2] = c;
}
static inline void matmul(const double *A, const double *B, double *C) {
    for (int i = 0; i < 3; ++i) {
        const double a0 = A[3 * i], a1 = A[3 * i + 1], a2 = A[3 * i + 2];
        C[3 * i] = a0 * B[0] + a1 * B[3] + a2 * B[6];
        C[3 * i + 1] = a0 * B[1] + a1 * B[4] + a2 * B[7];
        C[3 * i + 2] = a0 * B[2] + a1 * B[5] + a2 * B[8];
    }
}
/* out = a * b (placements compose: x_a = a (b x_c)). out must not alias a or b. */
static inline void se3_mul(const rt_se3 *a, const rt_se3 *b, rt_se3 *out) {
    matmul(a->R, b->R, out->R);
    matvec(a->R, b->p, out->p);
    out->p[0] += a->p[0]; out->p[1] += a->p[1]; out->p[2] += a->p[2];
}
/* Motion vector from the parent frame to the child frame: M^-1 v. */
static inline void motion_act_inv(const rt_se3 *M, const double *v, double *out) {
    double t[3], c[3];
    cross3(M->p, v + 3, c);
    t[0] = v[0] - c[0]; t[1] = v[1] - c[1]; t[2] = v[2] - c[2];
    matTvec(M->R, t, out);
    matTvec(M->R, v + 3, out + 3);
}
/* Motion vector from the child frame to the parent frame: M v. */
static inline void motion_act(const rt_se3 *M, const double *v, double *out) {
    double w[3], l[3], c[3];
    matvec(M->R, v + 3, w);
    matvec(M->R, v, l);
    cross3(M->p, w, c);
    out[0] = l[0] + c[0]; out[1] = l[1] + c[1]; out[2] = l[2] + c[2];
    out[3] = w[0]; out[4] = w[1]; out[5] = w[2];
}
/* Force vector from the child frame to the parent frame: M* f. */
static inline void force_act(const rt_se3 *M, const double *f, double *out) {
    double l[3], n[3], c[3];
    matvec(M->R, f, l);
    matvec(M->R, f + 3, n);
    cross3(M->p, l, c);
    out[0] = l[0]; out[1] = l[1]; out[2] = l[2];
    out[3] = n[0] + c[0]; out[4] = n[1] + c[1]; out[5] = n[2] + c[2];
}
/* Force vector from the parent frame to the child frame: M^-1* f. */
static inline void force_act_inv(const rt_se3 *M, const double *f, double *out) {
    double c[3], t[3];
    cross3(M->p, f, c);
    t[0] = f[3] - c[0]; t[1] = f[4] - c[1]; t[2] = f[5] - c[2];
    matTvec(M->R, f, out);
    matTvec(M->R, t, out + 3);
}
/* Motion cross product v x m. */
static inline void motion_cross(const double *v, const double *m, double *out) {
    double a[3], b[3], c[3];
    cross3(v + 3, m, a);
    cross3(v, m + 3, b);
    cross3(v + 3, m + 3, c);
    out[0] = a[0] + b[0]; out[1] = a[1] + b[1]; out[2] = a[2] + b[2];
    out[3] = c[0]; out[4] = c[1]; out[5] = c[2];
}
/* Force cross product v x* f. */
static inline void force_cross(const double *v, const double *f, double *out) {
    double a[3], b[3], c[3];
    cross3(v + 3, f, a);
    cross3(v + 3, f + 3, b);
    cross3(v, f, c);
    out[0] = a[0]; out[1] = a[1]; out[2] = a[2];
    out[3] = b[0] + c[0]; out[4] = b[1] + c[1]; out[5] = b[2] + c[2];
}
/* Spatial inertia (m, h = m c, Io about the frame origin) times a motion vector. */
static inline void inertia_mul(const double *Y, const double *v, double *out) {
    const double m = Y[0];
    const double *h = Y + 1, *Io = Y + 4;
    double hw[3], hv[3], Iw[3];
    cross3(h, v + 3, hw);
    cross3(h, v, hv);
    matvec(Io, v + 3, Iw);
    out[0] = m * v[0] - hw[0]; out[1] = m * v[1] - hw[1]; out[2] = m * v[2] - hw[2];
    out[3] = Iw[0] + hv[0]; out[4] = Iw[1] + hv[1]; out[5] = Iw[2] + hv[2];
}
/* out += M* Y (the inertia Y of a child frame, expressed in the parent frame). */
static inline void inertia_add_transformed(const rt_se3 *M, const double *Y, double *out) {
    const double m = Y[0];
    double hr[3], RI[9], RIRt[9], Rt[9];
    const double *R = M->R, *p = M->p;
    matvec(R, Y + 1, hr);
    matmul(R, Y + 4, RI);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) Rt[3 * i + j] = R[3 * j + i];
    matmul(RI, Rt, RIRt);
    /* Io' = R Io R^T + 2 (hr.p) 1 + m |p|^2 1 - hr p^T - p hr^T - m p p^T;  h' = hr + m p */
    const double hp = hr[0] * p[0] + hr[1] * p[1] + hr[2] * p[2];
    const double pp = p[0] * p[0] + p[1] * p[1] + p[2] * p[2];
    out[0] += m;
    for (int i = 0; i < 3; ++i) out[1 + i] += hr[i] + m * p[i];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double d = RIRt[3 * i + j] - hr[i] * p[j] - p[i] * hr[j] - m * p[i] * p[j];
            if (i == j) d += 2.0 * hp + m * pp;
            out[4 + 3 * i + j] += d;
        }
}

/* ---- model construction -------------------------------------------------------------------- */
static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

static size_t layout(rt_model *m, char *base) {
    const size_t nb = (size_t)m->nb, nf = (size_t)m->nframes;
    size_t off = 0;
#define TAKE(field, type, count)                                        \
    do {                                                                \
        if (base) m->field = (type *)(void *)(base + off);              \
        off += align8(sizeof(type) * (count));                          \
    } while (0)
    TAKE(parent, int, nb);
    TAKE(jtype, int, nb);
    TAKE(axis_kind, int, nb);
    TAKE(idx_q, int, nb);
    TAKE(idx_v, int, nb);
    TAKE(jnv, int, nb);
    TAKE(rot_identity, int, nb);
    TAKE(rot_kind, int, nb);
    TAKE(axis, double, nb * 3);
    TAKE(jplace, rt_se3, nb);
    TAKE(inertia, double, nb * 13);
    TAKE(fparent, int, nf ? nf : 1);
    TAKE(fplace, rt_se3, nf ? nf : 1);
    TAKE(liMi, rt_se3, nb);
    TAKE(oMi, rt_se3, nb);
    TAKE(vel, double, nb * 6);
    TAKE(acc, double, nb * 6);
    TAKE(frc, double, nb * 6);
    TAKE(ycrb, double, nb * 13);
    TAKE(cs, double, nb * 2);
#undef TAKE
    return off;
}

static rt_model *model_alloc(int nq, int nv, int nb, int nframes) {
    rt_model *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->nq = nq; m->nv = nv; m->nb = nb; m->nframes = nframes;
    m->block_size = layout(m, NULL);
    m->block = calloc(1, m->block_size);
    if (!m->block) { free(m); return NULL; }
    layout(m, m->block);
    return m;
}

rt_model *rt_model_create(int nq, int nv, int nb, const double *joints, int nframes, const double *frames,
                          const double gravity[6], char *err, size_t errlen) {
    if (nb < 1 || nq < 1 || nv < 1 || nframes < 0) {
        snprintf(err, errlen, "model sizes must be positive (nq=%d, nv=%d, bodies=%d)", nq, nv, nb);
        return NULL;
    }
    rt_model *m = model_alloc(nq, nv, nb, nframes);
    if (!m) { snprintf(err, errlen, "out of memory"); return NULL; }
    memcpy(m->gravity, gravity, sizeof(m->gravity));
    int q_used = 0, v_used = 0;
    for (int b = 0; b < nb; ++b) {
        const double *row = joints + (size_t)b * RT_JS_COLS;
        const int parent = (int)row[RT_JS_PARENT], type = (int)row[RT_JS_TYPE];
        if (parent < -1 || parent >= b) {
            snprintf(err, errlen, "body %d: parent %d must be -1 (universe) or an earlier body", b, parent);
            goto fail;
        }
        if (type < 0 || type >= RT_JOINT_FIXED_COUNT) {
            snprintf(err, errlen, "body %d: unknown joint type %d", b, type);
            goto fail;
        }
        m->parent[b] = parent;
        m->jtype[b] = type;
        m->idx_q[b] = (int)row[RT_JS_IDX_Q];
        m->idx_v[b] = (int)row[RT_JS_IDX_V];
        const int jnq = type == RT_JOINT_FREEFLYER ? 7 : (type == RT_JOINT_REVOLUTE_UNBOUNDED ? 2 : 1);
        m->jnv[b] = type == RT_JOINT_FREEFLYER ? 6 : 1;
        if (m->idx_q[b] < 0 || m->idx_q[b] + jnq > nq || m->idx_v[b] < 0 || m->idx_v[b] + m->jnv[b] > nv) {
            snprintf(err, errlen, "body %d: q/v indices (%d, %d) out of range (nq=%d, nv=%d)", b, m->idx_q[b],
                     m->idx_v[b], nq, nv);
            goto fail;
        }
        q_used += jnq;
        v_used += m->jnv[b];
        const double *ax = row + RT_JS_AXIS;
        double norm = sqrt(ax[0] * ax[0] + ax[1] * ax[1] + ax[2] * ax[2]);
        if (type != RT_JOINT_FREEFLYER && !(fabs(norm - 1.0) < 1e-9)) {
            snprintf(err, errlen, "body %d: joint axis must be a unit vector (norm %g)", b, norm);
            goto fail;
        }
        int kind = 3;
        for (int k = 0; k < 3 && type != RT_JOINT_FREEFLYER; ++k)
            if (ax[k] == 1.0 && ax[(k + 1) % 3] == 0.0 && ax[(k + 2) % 3] == 0.0) kind = k;
        m->axis_kind[b] = kind;
        memcpy(m->axis + 3 * b, ax, 3 * sizeof(double));
        memcpy(m->jplace[b].R, row + RT_JS_R, 9 * sizeof(double));
        memcpy(m->jplace[b].p, row + RT_JS_P, 3 * sizeof(double));
        m->rot_identity[b] = 1;
        for (int k = 0; k < 9; ++k)
            if (m->jplace[b].R[k] != (k % 4 == 0 ? 1.0 : 0.0)) m->rot_identity[b] = 0;
        m->rot_kind[b] = (type == RT_JOINT_REVOLUTE || type == RT_JOINT_REVOLUTE_UNBOUNDED) && m->rot_identity[b] &&
                                 kind < 3 ? 1 + kind : 0;
        /* Inertia about the joint origin: Io = Ic + m (|c|^2 1 - c c^T); h = m c. */
        const double mass = row[RT_JS_MASS];
        const double *c = row + RT_JS_COM, *Ic = row + RT_JS_ICOM;
        if (!(mass >= 0.0)) {
            snprintf(err, errlen, "body %d: mass %g must be >= 0", b, mass);
            goto fail;
        }
        double *Y = m->inertia + 13 * b;
        const double cc = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
        Y[0] = mass;
        for (int i = 0; i < 3; ++i) Y[1 + i] = mass * c[i];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) Y[4 + 3 * i + j] = Ic[3 * i + j] + mass * ((i == j ? cc : 0.0) - c[i] * c[j]);
    }
    if (q_used != nq || v_used != nv) {
        snprintf(err, errlen, "joints use nq=%d, nv=%d but the model declares nq=%d, nv=%d", q_used, v_used, nq, nv);
        goto fail;
    }
    for (int f = 0; f < nframes; ++f) {
        const double *row = frames + (size_t)f * RT_FS_COLS;
        const int parent = (int)row[RT_FS_PARENT];
        if (parent < -1 || parent >= nb) {
            snprintf(err, errlen, "frame %d: parent body %d out of range", f, parent);
            goto fail;
        }
        m->fparent[f] = parent;
        memcpy(m->fplace[f].R, row + RT_FS_R, 9 * sizeof(double));
        memcpy(m->fplace[f].p, row + RT_FS_P, 3 * sizeof(double));
    }
    return m;
fail:
    rt_model_free(m);
    return NULL;
}

rt_model *rt_model_clone(const rt_model *src) {
    rt_model *m = model_alloc(src->nq, src->nv, src->nb, src->nframes);
    if (!m) return NULL;
    memcpy(m->gravity, src->gravity, sizeof(m->gravity));
    memcpy(m->block, src->block, src->block_size);
    return m;
}

void rt_model_free(rt_model *m) {
    if (!m) return;
    free(m->block);
    free(m);
}

/* ---- joint models -------------------------------------------------------------------------- */
/* liMi = jplace * X_J(q) */
static inline __attribute__((always_inline)) void joint_placement(rt_model *m, int b, const double *q,
                                                                   rt_se3 *out) {
    const rt_se3 *P = &m->jplace[b];
    const double *qj = q + m->idx_q[b];
    switch (m->jtype[b]) {
    case RT_JOINT_REVOLUTE:
    case RT_JOINT_REVOLUTE_UNBOUNDED: {
        double s, c;
        if (m->jtype[b] == RT_JOINT_REVOLUTE) {
            sincos(qj[0], &s, &c);
        } else {
            c = qj[0];
            s = qj[1];
        }
        const double *R = P->R;
        double *O = out->R;
        m->cs[2 * b] = c;
        m->cs[2 * b + 1] = s;
        if (m->rot_identity[b] && m->axis_kind[b] < 3) {
            const int k = m->axis_kind[b], k1 = (k + 1) % 3, k2 = (k + 2) % 3;
            for (int i = 0; i < 9; ++i) O[i] = 0.0;
            O[4 * k] = 1.0;
            O[4 * k1] = c;
            O[4 * k2] = c;
            O[3 * k1 + k2] = -s;
            O[3 * k2 + k1] = s;
            memcpy(out->p, P->p, sizeof(out->p));
            break;
        }
        switch (m->axis_kind[b]) {
        case 0: /* R * Rx */
            for (int i = 0; i < 3; ++i) {
                O[3 * i] = R[3 * i];
                O[3 * i + 1] = R[3 * i + 1] * c + R[3 * i + 2] * s;
                O[3 * i + 2] = -R[3 * i + 1] * s + R[3 * i + 2] * c;
            }
            break;
        case 1: /* R * Ry */
            for (int i = 0; i < 3; ++i) {
                O[3 * i] = R[3 * i] * c - R[3 * i + 2] * s;
                O[3 * i + 1] = R[3 * i + 1];
                O[3 * i + 2] = R[3 * i] * s + R[3 * i + 2] * c;
            }
            break;
        case 2: /* R * Rz */
            for (int i = 0; i < 3; ++i) {
                O[3 * i] = R[3 * i] * c + R[3 * i + 1] * s;
                O[3 * i + 1] = -R[3 * i] * s + R[3 * i + 1] * c;
                O[3 * i + 2] = R[3 * i + 2];
            }
            break;
        default: { /* Rodrigues about a unit axis */
            const double *a = m->axis + 3 * b;
            const double t = 1.0 - c;
            double J[9];
            J[0] = c + t * a[0] * a[0];
            J[1] = t * a[0] * a[1] - s * a[2];
            J[2] = t * a[0] * a[2] + s * a[1];
            J[3] = t * a[0] * a[1] + s * a[2];
            J[4] = c + t * a[1] * a[1];
            J[5] = t * a[1] * a[2] - s * a[0];
            J[6] = t * a[0] * a[2] - s * a[1];
            J[7] = t * a[1] * a[2] + s * a[0];
            J[8] = c + t * a[2] * a[2];
            matmul(R, J, O);
        }
        }
        memcpy(out->p, P->p, sizeof(out->p));
        break;
    }
    case RT_JOINT_PRISMATIC: {
        double d[3], Rd[3];
        const double *a = m->axis + 3 * b;
        d[0] = a[0] * qj[0]; d[1] = a[1] * qj[0]; d[2] = a[2] * qj[0];
        matvec(P->R, d, Rd);
        memcpy(out->R, P->R, sizeof(out->R));
        out->p[0] = P->p[0] + Rd[0]; out->p[1] = P->p[1] + Rd[1]; out->p[2] = P->p[2] + Rd[2];
        break;
    }
    default: { /* free flyer: translation, then unit quaternion (x, y, z, w), as Pinocchio reads it */
        rt_se3 X;
        const double x = qj[3], y = qj[4], z = qj[5], w = qj[6];
        X.R[0] = 1 - 2 * (y * y + z * z); X.R[1] = 2 * (x * y - z * w);     X.R[2] = 2 * (x * z + y * w);
        X.R[3] = 2 * (x * y + z * w);     X.R[4] = 1 - 2 * (x * x + z * z); X.R[5] = 2 * (y * z - x * w);
        X.R[6] = 2 * (x * z - y * w);     X.R[7] = 2 * (y * z + x * w);     X.R[8] = 1 - 2 * (x * x + y * y);
        X.p[0] = qj[0]; X.p[1] = qj[1]; X.p[2] = qj[2];
        se3_mul(P, &X, out);
    }
    }
}

/* S qdot for one joint (6-vector). */
static inline void joint_motion(const rt_model *m, int b, const double *vj, double *out) {
    const double *a = m->axis + 3 * b;
    switch (m->jtype[b]) {
    case RT_JOINT_REVOLUTE:
    case RT_JOINT_REVOLUTE_UNBOUNDED:
        out[0] = out[1] = out[2] = 0.0;
        out[3] = a[0] * vj[0]; out[4] = a[1] * vj[0]; out[5] = a[2] * vj[0];
        break;
    case RT_JOINT_PRISMATIC:
        out[0] = a[0] * vj[0]; out[1] = a[1] * vj[0]; out[2] = a[2] * vj[0];
        out[3] = out[4] = out[5] = 0.0;
        break;
    default:
        memcpy(out, vj, 6 * sizeof(double));
    }
}

/* Column c of the joint's motion subspace S (6-vector). */
static inline void joint_column(const rt_model *m, int b, int c, double *s) {
    const double *a = m->axis + 3 * b;
    for (int k = 0; k < 6; ++k) s[k] = 0.0;
    switch (m->jtype[b]) {
    case RT_JOINT_REVOLUTE:
    case RT_JOINT_REVOLUTE_UNBOUNDED:
        s[3] = a[0]; s[4] = a[1]; s[5] = a[2];
        break;
    case RT_JOINT_PRISMATIC:
        s[0] = a[0]; s[1] = a[1]; s[2] = a[2];
        break;
    default:
        s[c] = 1.0;
    }
}

/* S^T f for one joint, written to tau (jnv entries). */
static inline void joint_project(const rt_model *m, int b, const double *f, double *tau) {
    const double *a = m->axis + 3 * b;
    switch (m->jtype[b]) {
    case RT_JOINT_REVOLUTE:
    case RT_JOINT_REVOLUTE_UNBOUNDED:
        tau[0] = a[0] * f[3] + a[1] * f[4] + a[2] * f[5];
        break;
    case RT_JOINT_PRISMATIC:
        tau[0] = a[0] * f[0] + a[1] * f[1] + a[2] * f[2];
        break;
    default:
        memcpy(tau, f, 6 * sizeof(double));
    }
}

/* R^T x and R x for body b's liMi rotation, cheap when it is a rotation about a principal axis. */
static inline void body_rotT(const rt_model *m, int b, const double *x, double *out) {
    const double c = m->cs[2 * b], s = m->cs[2 * b + 1];
    double a0 = x[0], a1 = x[1], a2 = x[2];
    switch (m->rot_kind[b]) {
    case 1: out[0] = a0; out[1] = c * a1 + s * a2; out[2] = -s * a1 + c * a2; break;
    case 2: out[0] = c * a0 - s * a2; out[1] = a1; out[2] = s * a0 + c * a2; break;
    case 3: out[0] = c * a0 + s * a1; out[1] = -s * a0 + c * a1; out[2] = a2; break;
    default: matTvec(m->liMi[b].R, x, out);
    }
}
static inline void body_rot(const rt_model *m, int b, const double *x, double *out) {
    const double c = m->cs[2 * b], s = m->cs[2 * b + 1];
    double a0 = x[0], a1 = x[1], a2 = x[2];
    switch (m->rot_kind[b]) {
    case 1: out[0] = a0; out[1] = c * a1 - s * a2; out[2] = s * a1 + c * a2; break;
    case 2: out[0] = c * a0 + s * a2; out[1] = a1; out[2] = -s * a0 + c * a2; break;
    case 3: out[0] = c * a0 - s * a1; out[1] = s * a0 + c * a1; out[2] = a2; break;
    default: matvec(m->liMi[b].R, x, out);
    }
}
/* motion_act_inv / force_act with body b's liMi */
static inline void body_motion_act_inv(const rt_model *m, int b, const double *v, double *out) {
    double t[3], c[3];
    const double *p = m->liMi[b].p;
    cross3(p, v + 3, c);
    t[0] = v[0] - c[0]; t[1] = v[1] - c[1]; t[2] = v[2] - c[2];
    body_rotT(m, b, t, out);
    body_rotT(m, b, v + 3, out + 3);
}
static inline void body_force_act(const rt_model *m, int b, const double *f, double *out) {
    double l[3], n[3], c[3];
    body_rot(m, b, f, l);
    body_rot(m, b, f + 3, n);
    cross3(m->liMi[b].p, l, c);
    out[0] = l[0]; out[1] = l[1]; out[2] = l[2];
    out[3] = n[0] + c[0]; out[4] = n[1] + c[1]; out[5] = n[2] + c[2];
}

/* ---- kernels --------------------------------------------------------------------------------- */
RT_CLONES
void rt_rnea(rt_model *m, const double *q, const double *v, const double *a, const double *fext, double *tau) {
    static const double zero6[6] = {0, 0, 0, 0, 0, 0};
    double a0[6];
    for (int k = 0; k < 6; ++k) a0[k] = -m->gravity[k];
    static const int K1[3] = {1, 2, 0}, K2[3] = {2, 0, 1};
    for (int b = 0; b < m->nb; ++b) {
        const int p = m->parent[b];
        double *vb = m->vel + 6 * b, *ab = m->acc + 6 * b, *fb = m->frc + 6 * b;
        const double *vp = p < 0 ? zero6 : m->vel + 6 * p;
        const double *ap = p < 0 ? a0 : m->acc + 6 * p;
        double vJ[6], aJ[6], t[6];
        const int iv = m->idx_v[b];
        if (m->rot_kind[b]) {
            /* Fast path (the usual URDF joint): revolute about a principal axis e_k of a joint frame
             * parallel to its parent's. Only cos/sin and the translation are needed; S = (0, e_k). */
            const int k = m->rot_kind[b] - 1, k1 = K1[k], k2 = K2[k];
            const double *qj = q + m->idx_q[b];
            if (m->jtype[b] == RT_JOINT_REVOLUTE) {
                sincos(qj[0], &m->cs[2 * b + 1], &m->cs[2 * b]);
            } else {
                m->cs[2 * b] = qj[0];
                m->cs[2 * b + 1] = qj[1];
            }
            memcpy(m->liMi[b].p, m->jplace[b].p, sizeof(m->liMi[b].p));
            m->liMi[b].R[0] = NAN; /* liMi.R is not filled on this path (kernels use cs) */
            const double qd = v ? v[iv] : 0.0;
            if (p < 0) memset(vb, 0, 6 * sizeof(double));
            else body_motion_act_inv(m, b, vp, vb);
            vb[3 + k] += qd;
            body_motion_act_inv(m, b, ap, ab);
            if (a) ab[3 + k] += a[iv];
            if (qd != 0.0) { /* + v x (0, qd e_k):  x x e_k = (.., x[k2], -x[k1]) at (k1, k2) */
                ab[k1] += qd * vb[k2];
                ab[k2] -= qd * vb[k1];
                ab[3 + k1] += qd * vb[3 + k2];
                ab[3 + k2] -= qd * vb[3 + k1];
            }
        } else {
        rt_se3 *X = &m->liMi[b];
        joint_placement(m, b, q, X);
        if (v) {
            joint_motion(m, b, v + iv, vJ);
            if (p < 0) {
                memcpy(vb, vJ, sizeof(vJ));
            } else {
                body_motion_act_inv(m, b, vp, vb);
                for (int k = 0; k < 6; ++k) vb[k] += vJ[k];
            }
        } else {
            memset(vb, 0, 6 * sizeof(double));
        }
        body_motion_act_inv(m, b, ap, ab);
        if (a) {
            joint_motion(m, b, a + iv, aJ);
            for (int k = 0; k < 6; ++k) ab[k] += aJ[k];
        }
        if (v && p >= 0) {
            if (m->jtype[b] == RT_JOINT_FREEFLYER) {
                motion_cross(vb, vJ, t);
                for (int k = 0; k < 6; ++k) ab[k] += t[k];
            } else if (m->jtype[b] == RT_JOINT_PRISMATIC) { /* vJ = (u, 0): v x vJ = (w x u, 0) */
                cross3(vb + 3, vJ, t);
                for (int k = 0; k < 3; ++k) ab[k] += t[k];
            } else { /* vJ = (0, w): v x vJ = (v_lin x w, v_ang x w) */
                cross3(vb, vJ + 3, t);
                cross3(vb + 3, vJ + 3, t + 3);
                for (int k = 0; k < 6; ++k) ab[k] += t[k];
            }
        }
        }
        const double *Y = m->inertia + 13 * b;
        inertia_mul(Y, ab, fb);
        if (v) {
            double h[6];
            inertia_mul(Y, vb, h);
            force_cross(vb, h, t);
            for (int k = 0; k < 6; ++k) fb[k] += t[k];
        }
        if (fext)
            for (int k = 0; k < 6; ++k) fb[k] -= fext[6 * b + k];
    }
    for (int b = m->nb - 1; b >= 0; --b) {
        const double *fb = m->frc + 6 * b;
        if (m->rot_kind[b]) tau[m->idx_v[b]] = fb[3 + m->rot_kind[b] - 1];
        else joint_project(m, b, fb, tau + m->idx_v[b]);
        const int p = m->parent[b];
        if (p >= 0) {
            double t[6];
            body_force_act(m, b, fb, t);
            double *fp = m->frc + 6 * p;
            for (int k = 0; k < 6; ++k) fp[k] += t[k];
        }
    }
}

void rt_crba(rt_model *m, const double *q, double *M) {
    const int nv = m->nv;
    for (int b = 0; b < m->nb; ++b) joint_placement(m, b, q, &m->liMi[b]);
    memcpy(m->ycrb, m->inertia, sizeof(double) * 13 * (size_t)m->nb);
    memset(M, 0, sizeof(double) * (size_t)nv * (size_t)nv);
    for (int b = m->nb - 1; b >= 0; --b) {
        const double *Y = m->ycrb + 13 * b;
        const int nvb = m->jnv[b], ib = m->idx_v[b];
        for (int c = 0; c < nvb; ++c) {
            double s[6], F[6], t[6];
            joint_column(m, b, c, s);
            inertia_mul(Y, s, F);
            /* walk up the support chain, projecting F on each ancestor's motion subspace */
            int j = b;
            for (;;) {
                double col[6];
                joint_project(m, j, F, col);
                const int ij = m->idx_v[j];
                for (int r = 0; r < m->jnv[j]; ++r) {
                    M[(size_t)(ij + r) * nv + ib + c] = col[r];
                    M[(size_t)(ib + c) * nv + ij + r] = col[r];
                }
                const int p = m->parent[j];
                if (p < 0) break;
                force_act(&m->liMi[j], F, t);
                memcpy(F, t, sizeof(F));
                j = p;
            }
        }
        const int p = m->parent[b];
        if (p >= 0) inertia_add_transformed(&m->liMi[b], Y, m->ycrb + 13 * p);
    }
}

void rt_forward_kinematics(rt_model *m, const double *q) {
    for (int b = 0; b < m->nb; ++b) {
        joint_placement(m, b, q, &m->liMi[b]);
        const int p = m->parent[b];
        if (p < 0)
            m->oMi[b] = m->liMi[b];
        else
            se3_mul(&m->oMi[p], &m->liMi[b], &m->oMi[b]);
    }
}

void rt_frame_placement(const rt_model *m, int frame, rt_se3 *out) {
    const int p = m->fparent[frame];
    if (p < 0)
        *out = m->fplace[frame];
    else
        se3_mul(&m->oMi[p], &m->fplace[frame], out);
}

void rt_frame_jacobian(const rt_model *m, int frame, int reference, double *J) {
    const int nv = m->nv;
    memset(J, 0, sizeof(double) * 6 * (size_t)nv);
    rt_se3 oMf;
    rt_frame_placement(m, frame, &oMf);
    for (int j = m->fparent[frame]; j >= 0; j = m->parent[j]) {
        const rt_se3 *X = &m->oMi[j];
        for (int c = 0; c < m->jnv[j]; ++c) {
            double s[6], w[6], out[6];
            joint_column(m, j, c, s);
            motion_act(X, s, w); /* column in WORLD: spatial velocity at the world origin */
            if (reference == RT_WORLD) {
                memcpy(out, w, sizeof(out));
            } else {
                double wp[3];
                cross3(w + 3, oMf.p, wp); /* velocity of the frame origin: v_o + w x p */
                double lin[3] = {w[0] + wp[0], w[1] + wp[1], w[2] + wp[2]};
                if (reference == RT_LOCAL_WORLD_ALIGNED) {
                    memcpy(out, lin, sizeof(lin));
                    memcpy(out + 3, w + 3, 3 * sizeof(double));
                } else {
                    matTvec(oMf.R, lin, out);
                    matTvec(oMf.R, w + 3, out + 3);
                }
            }
            const int col = m->idx_v[j] + c;
            for (int r = 0; r < 6; ++r) J[(size_t)r * nv + col] = out[r];
        }
    }
}

void rt_add_frame_wrench(const rt_model *m, int frame, int reference, const double *wrench, double *fext) {
    const int p = m->fparent[frame];
    if (p < 0) return; /* a wrench on the universe does nothing to the robot */
    double fl[6], fb[6];
    if (reference == RT_LOCAL) {
        force_act(&m->fplace[frame], wrench, fb);
    } else if (reference == RT_LOCAL_WORLD_ALIGNED) {
        rt_se3 oMf;
        rt_frame_placement(m, frame, &oMf);
        matTvec(oMf.R, wrench, fl);
        matTvec(oMf.R, wrench + 3, fl + 3);
        force_act(&m->fplace[frame], fl, fb);
    } else {
        force_act_inv(&m->oMi[p], wrench, fb);
    }
    for (int k = 0; k < 6; ++k) fext[6 * p + k] += fb[k];
}
