/* The real-time loop (see rt_loop.h). */
#define _GNU_SOURCE
#include "rt_loop.h"

#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt_bus.h"

static _Atomic int g_mlock_users = 0;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Process-private futex on a 32-bit word: wait while *addr == val (up to timeout_ns), or wake all. */
static void futex_wait_private(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
    struct timespec ts = {(time_t)(timeout_ns / 1000000000LL), (long)(timeout_ns % 1000000000LL)};
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake_private(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void *xcalloc(size_t n, size_t size, int *bad) {
    void *p = calloc(n ? n : 1, size);
    if (!p) *bad = 1;
    return p;
}

rt_loop *rt_loop_create(const rt_model *model, const rt_transport *tr, const rt_loop_config *cfg,
                        const double *damping_kd, const double *effort, const double *lower, const double *upper,
                        const int *contact_frames, int nc, char *err, size_t errlen) {
    const int has_ff = model->nb > 0 && model->jtype[0] == RT_JOINT_FREEFLYER && model->parent[0] == -1;
    const int n = model->nb - (has_ff ? 1 : 0);
    if (tr->n_joints != n) {
        snprintf(err, errlen, "the transport carries %d joints but the model actuates %d", tr->n_joints, n);
        return NULL;
    }
    for (int b = has_ff ? 1 : 0; b < model->nb; ++b) {
        if (model->jnv[b] != 1) {
            snprintf(err, errlen, "body %d: only the root joint may have more than one DoF", b);
            return NULL;
        }
    }
    for (int c = 0; c < nc; ++c) {
        if (contact_frames[c] < 0 || contact_frames[c] >= model->nframes) {
            snprintf(err, errlen, "contact frame id %d is out of range (model has %d frames)", contact_frames[c],
                     model->nframes);
            return NULL;
        }
    }
    if (!(cfg->rate_hz > 0.0 && cfg->rate_hz <= 100000.0)) {
        snprintf(err, errlen, "rate_hz %g must be in (0, 100000]", cfg->rate_hz);
        return NULL;
    }
    if (cfg->sync_period_ticks < 0) {
        snprintf(err, errlen, "sync_period_ticks %d must be >= 0", cfg->sync_period_ticks);
        return NULL;
    }
    rt_loop *L = calloc(1, sizeof(*L));
    if (!L) { snprintf(err, errlen, "out of memory"); return NULL; }
    int bad = 0;
    L->model = rt_model_clone(model);
    if (!L->model) bad = 1;
    L->tr = *tr;
    L->cfg = *cfg;
    L->n = n;
    L->nc = nc;
    L->has_ff = has_ff;
    L->n_words = rt_state_word_count(n, tr->n_feet);
    const int nv = model->nv;
    int off = 0;
    L->R.qdd = off; off += nv;
    L->R.q = off; off += n;
    L->R.v = off; off += n;
    L->R.kp = off; off += n;
    L->R.kd = off; off += n;
    L->R.f = off; off += 6 * nc;
    L->R.active = off; off += nc;
    L->R.base_q = off; off += 7;
    L->R.base_v = off; off += 6;
    L->R.ctrl_stamp = off++;
    L->R.base_stamp = off++;
    L->R.ctrl_seq = off++;
    L->R.base_seq = off++;
    L->R.count = off;
    L->snapshot_words = 1 + L->n_words + n + 2;
    L->jq = xcalloc((size_t)n, sizeof(int), &bad);
    L->jv = xcalloc((size_t)n, sizeof(int), &bad);
    L->junbounded = xcalloc((size_t)n, sizeof(int), &bad);
    L->contact_frames = xcalloc((size_t)nc, sizeof(int), &bad);
    L->damping_kd = xcalloc((size_t)n, sizeof(double), &bad);
    L->effort = xcalloc((size_t)n, sizeof(double), &bad);
    L->lower = xcalloc((size_t)n, sizeof(double), &bad);
    L->upper = xcalloc((size_t)n, sizeof(double), &bad);
    L->staging = xcalloc((size_t)L->R.count, sizeof(double), &bad);
    L->words = xcalloc((size_t)L->n_words, sizeof(double), &bad);
    L->qfull = xcalloc((size_t)model->nq, sizeof(double), &bad);
    L->vfull = xcalloc((size_t)nv, sizeof(double), &bad);
    L->tau_full = xcalloc((size_t)nv, sizeof(double), &bad);
    L->fext = xcalloc((size_t)model->nb * 6, sizeof(double), &bad);
    L->tau = xcalloc((size_t)n, sizeof(double), &bad);
    L->damped = xcalloc((size_t)n, 1, &bad);
    L->pd = xcalloc(5 * (size_t)n, sizeof(double), &bad);
    if (!bad && rt_tbuf_init(&L->refs, (size_t)L->R.count) < 0) bad = 1;
    if (!bad && rt_tbuf_init(&L->snapshot, (size_t)L->snapshot_words) < 0) bad = 1;
    if (!bad && rt_tbuf_init(&L->update_snapshot, (size_t)L->snapshot_words) < 0) bad = 1;
    if (bad) {
        snprintf(err, errlen, "out of memory");
        rt_loop_destroy(L);
        return NULL;
    }
    for (int j = 0; j < n; ++j) {
        const int b = j + (has_ff ? 1 : 0);
        L->jq[j] = model->idx_q[b];
        L->jv[j] = model->idx_v[b];
        L->junbounded[j] = model->jtype[b] == RT_JOINT_REVOLUTE_UNBOUNDED;
    }
    memcpy(L->contact_frames, contact_frames, sizeof(int) * (size_t)nc);
    memcpy(L->damping_kd, damping_kd, sizeof(double) * (size_t)n);
    memcpy(L->effort, effort, sizeof(double) * (size_t)n);
    memcpy(L->lower, lower, sizeof(double) * (size_t)n);
    memcpy(L->upper, upper, sizeof(double) * (size_t)n);
    /* Staging defaults: identity base quaternion, nothing received yet (sequence 0). */
    L->staging[L->R.base_q + 6] = 1.0;
    for (int s = 0; s < 3; ++s) L->refs.slots[(size_t)s * L->refs.n + (size_t)L->R.base_q + 6] = 1.0;
    L->tr.n_joints = n;
    atomic_init(&L->state, RT_INIT);
    atomic_init(&L->processed_tick, -1);
    L->last_sync_tick = -1;
    return L;
}

void rt_loop_destroy(rt_loop *L) {
    if (!L) return;
    if (L->thread_alive) rt_loop_stop(L);
    rt_model_free(L->model);
    free(L->jq); free(L->jv); free(L->junbounded); free(L->contact_frames);
    free(L->damping_kd); free(L->effort); free(L->lower); free(L->upper);
    free(L->staging); free(L->words); free(L->qfull); free(L->vfull); free(L->tau_full);
    free(L->fext); free(L->tau); free(L->damped); free(L->pd);
    rt_tbuf_free(&L->refs);
    rt_tbuf_free(&L->snapshot);
    rt_tbuf_free(&L->update_snapshot);
    free(L);
}

/* ---- state machine --------------------------------------------------------------------------- */
static void set_reason(rt_loop *L, int reason, int index, double value) {
    int64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    atomic_store_explicit(&L->reason_index, index, memory_order_relaxed);
    atomic_store_explicit(&L->reason_value_bits, bits, memory_order_relaxed);
    atomic_store_explicit(&L->reason, reason, memory_order_release);
}

double rt_loop_reason_value(rt_loop *L) {
    int64_t bits = atomic_load_explicit(&L->reason_value_bits, memory_order_relaxed);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Latches FAULT with the first reason; later faults only add their flag. */
static void fault(rt_loop *L, int reason, int index, double value) {
    atomic_fetch_or_explicit(&L->fault_flags, 1u << reason, memory_order_relaxed);
    const int st = atomic_load_explicit(&L->state, memory_order_relaxed);
    if (st == RT_FAULT || st == RT_STOPPED) return;
    set_reason(L, reason, index, value);
    atomic_store_explicit(&L->state, RT_FAULT, memory_order_release);
}

static void apply_reset(rt_loop *L) {
    memset(L->damped, 0, (size_t)L->n);
    L->silent_count = 0;
    atomic_store_explicit(&L->fault_flags, 0, memory_order_relaxed);
    set_reason(L, RT_REASON_NONE, -1, 0.0);
    atomic_store_explicit(&L->state, RT_INIT, memory_order_release);
}

/* Applied by the loop at its next tick (the loop is the only writer of its state). */
void rt_loop_request_reset(rt_loop *L) { atomic_store_explicit(&L->reset_request, 1, memory_order_release); }

/* ---- references (Python thread, holding the GIL: one writer) --------------------------------- */
void rt_loop_publish_refs(rt_loop *L, int ctrl, int base) {
    const double now = (double)mono_ns() * 1e-9;
    if (ctrl) {
        L->staging[L->R.ctrl_stamp] = now;
        L->staging[L->R.ctrl_seq] += 1.0;
    }
    if (base) {
        L->staging[L->R.base_stamp] = now;
        L->staging[L->R.base_seq] += 1.0;
    }
    memcpy(rt_tbuf_back(&L->refs), L->staging, sizeof(double) * (size_t)L->R.count);
    rt_tbuf_commit(&L->refs);
}

/* ---- one tick ------------------------------------------------------------------------------------
 * loop_tick runs four steps, each its own function: input checks (which may latch faults), the state
 * machine, the torque law, publication. The order is part of the behaviour: faults found in the inputs
 * are visible to the state machine of the same tick, and the snapshot goes out before the command. */

/* What the input checks found, for the state machine and the torque law of the same tick. */
typedef struct {
    const double *ref; /* the reference words in force this tick */
    int refs_present;  /* both groups (control, and base for a floating base) were given once */
    int stale;         /* the older group is past stale_timeout_s (or absent) */
    double age;        /* [s] age of the older group, +inf when absent */
    double quat[4];    /* normalised base quaternion; identity when absent or unusable */
} tick_inputs;

static inline int all_finite(const double *x, int n, int *first_bad) {
    for (int i = 0; i < n; ++i)
        if (!isfinite(x[i])) {
            *first_bad = i;
            return 0;
        }
    return 1;
}

/* The damping law: tau = -K_d,damp v, and 0 for a non-finite velocity. */
static inline double damping_torque(const rt_loop *L, int j, double v) {
    return isfinite(v) ? -L->damping_kd[j] * v : 0.0;
}

static inline double clamp_abs(double x, double lim) {
    if (x > lim) return lim;
    if (x < -lim) return -lim;
    return x;
}

/* -- input checks -- */

/* Transport watchdog: ticks without a new state, armed by the first state (a robot side that has not
 * started yet is not a fault; the loop just has nothing to answer). */
static void watch_transport(rt_loop *L, int have_new) {
    if (have_new) {
        L->silent_count = 0;
        L->have_state = 1;
        atomic_fetch_add_explicit(&L->states, 1, memory_order_relaxed);
        return;
    }
    L->silent_count += 1;
    atomic_fetch_add_explicit(&L->silent_total, 1, memory_order_relaxed);
    if (L->have_state && L->cfg.silent_ticks > 0 && L->silent_count >= L->cfg.silent_ticks)
        fault(L, RT_REASON_TRANSPORT_SILENT, -1, (double)L->silent_count / L->cfg.rate_hz);
}

static void check_state_finite(rt_loop *L) {
    int bad;
    if (L->have_state && !all_finite(L->words, L->n_words, &bad))
        fault(L, RT_REASON_NONFINITE_STATE, bad, L->words[bad]);
}

/* Takes the references in force and measures their age: in the state's time (lockstep and state-triggered
 * real time, from when each group's sequence number changed: a robot side with its own clock, e.g. a sim
 * that paused, has not moved on while its time stood still) or on CLOCK_MONOTONIC (clock-triggered real
 * time, from the writer's stamps).
 * Synchronised lockstep takes new references only at sync states (after the gate), so the references
 * computed from sync state s apply from tick s + period, never earlier on a fast machine. */
static void read_references(rt_loop *L, double now_s, tick_inputs *in) {
    const rt_ref_layout *R = &L->R;
    const double *ref = L->sync_active && !L->sync_due ? rt_tbuf_front(&L->refs) : rt_tbuf_read(&L->refs, NULL);
    in->ref = ref;
    in->refs_present = ref[R->ctrl_seq] > 0.0 && (!L->has_ff || ref[R->base_seq] > 0.0);
    int bad;
    if (in->refs_present && !all_finite(ref, R->count, &bad)) fault(L, RT_REASON_NONFINITE_REFERENCE, bad, ref[bad]);
    double ctrl_age, base_age;
    if (L->cfg.lockstep || L->cfg.state_triggered) {
        if (ref[R->ctrl_seq] != L->ctrl_seen) { L->ctrl_seen = ref[R->ctrl_seq]; L->ctrl_arrival = now_s; }
        if (ref[R->base_seq] != L->base_seen) { L->base_seen = ref[R->base_seq]; L->base_arrival = now_s; }
        ctrl_age = now_s - L->ctrl_arrival;
        base_age = now_s - L->base_arrival;
    } else {
        ctrl_age = now_s - ref[R->ctrl_stamp];
        base_age = now_s - ref[R->base_stamp];
    }
    double age = L->has_ff && base_age > ctrl_age ? base_age : ctrl_age;
    if (!in->refs_present) age = INFINITY;
    atomic_store_explicit(&L->ctrl_age_ns, isfinite(age) ? (int64_t)(age * 1e9) : INT64_MAX, memory_order_relaxed);
    in->age = age;
    in->stale = !(age <= L->cfg.stale_timeout_s);
}

/* A base quaternion far from unit norm is a broken estimator, not rounding: fault; otherwise normalise. */
static void check_base_quaternion(rt_loop *L, tick_inputs *in) {
    in->quat[0] = in->quat[1] = in->quat[2] = 0.0;
    in->quat[3] = 1.0;
    if (!L->has_ff || !in->refs_present) return;
    const double *bq = in->ref + L->R.base_q + 3;
    const double norm = sqrt(bq[0] * bq[0] + bq[1] * bq[1] + bq[2] * bq[2] + bq[3] * bq[3]);
    if (!(norm > 0.5 && norm < 1.5)) {
        if (isfinite(norm)) fault(L, RT_REASON_BAD_BASE_QUATERNION, -1, norm);
    } else {
        for (int k = 0; k < 4; ++k) in->quat[k] = bq[k] / norm;
    }
}

/* A joint beyond its limits (plus the margin) is damped from now on (latched) and faults once. */
static void check_joint_limits(rt_loop *L) {
    if (!L->have_state) return;
    const double *q = L->words + rt_sw_q(L->n);
    const double m = L->cfg.joint_limit_margin;
    for (int j = 0; j < L->n; ++j) {
        if (isfinite(q[j]) && (q[j] < L->lower[j] - m || q[j] > L->upper[j] + m) && !L->damped[j]) {
            L->damped[j] = 1;
            fault(L, RT_REASON_JOINT_LIMIT, j, q[j]);
        }
    }
}

static void check_inputs(rt_loop *L, int have_new, double now_s, tick_inputs *in) {
    watch_transport(L, have_new);
    check_state_finite(L);
    read_references(L, now_s, in);
    check_base_quaternion(L, in);
    check_joint_limits(L);
}

/* -- state machine -- */

/* INIT -> RUNNING once references and a state are there; RUNNING -> DAMPING on stale references (faults
 * were latched by the checks). Returns 1 when the control law applies: while RUNNING, and in a FAULT
 * caused by joint limits only (the limp joints are damped, the others keep working: safer than
 * collapsing the whole robot). */
static int advance_state(rt_loop *L, const tick_inputs *in) {
    int st = atomic_load_explicit(&L->state, memory_order_relaxed);
    if (st == RT_INIT && in->refs_present && !in->stale && L->have_state) {
        st = RT_RUNNING;
        atomic_store_explicit(&L->state, st, memory_order_release);
    } else if (st == RT_RUNNING && in->stale) {
        set_reason(L, RT_REASON_STALE_REFERENCE, -1, in->age);
        st = RT_DAMPING;
        atomic_store_explicit(&L->state, st, memory_order_release);
    }
    const uint32_t flags = atomic_load_explicit(&L->fault_flags, memory_order_relaxed);
    return L->have_state && in->refs_present && !in->stale &&
           (st == RT_RUNNING || (st == RT_FAULT && flags == (1u << RT_REASON_JOINT_LIMIT)));
}

/* -- torque law -- */

/* The configuration for ID: the estimator's base pose/twist joined with the fresh joint state (a
 * continuous joint's angle becomes Pinocchio's (cos, sin)). */
static void assemble_configuration(rt_loop *L, const tick_inputs *in) {
    const int n = L->n;
    const double *q = L->words + rt_sw_q(n), *v = L->words + rt_sw_v(n);
    if (L->has_ff) {
        memcpy(L->qfull, in->ref + L->R.base_q, 3 * sizeof(double));
        memcpy(L->qfull + 3, in->quat, 4 * sizeof(double));
        memcpy(L->vfull, in->ref + L->R.base_v, 6 * sizeof(double));
    }
    for (int j = 0; j < n; ++j) {
        if (L->junbounded[j]) {
            L->qfull[L->jq[j]] = cos(q[j]);
            L->qfull[L->jq[j] + 1] = sin(q[j]);
        } else {
            L->qfull[L->jq[j]] = q[j];
        }
        L->vfull[L->jv[j]] = v[j];
    }
}

/* External wrenches of the active contacts on their bodies (so the RNEA subtracts J_c^T f_c without a
 * Jacobian); NULL when no contact is active. */
static const double *contact_wrenches(rt_loop *L, const double *ref) {
    const rt_ref_layout *R = &L->R;
    int any_contact = 0;
    for (int c = 0; c < L->nc; ++c) any_contact |= ref[R->active + c] > 0.5;
    if (!any_contact) return NULL;
    rt_model *M = L->model;
    memset(L->fext, 0, sizeof(double) * 6 * (size_t)M->nb);
    if (L->cfg.contact_reference != RT_LOCAL) rt_forward_kinematics(M, L->qfull);
    for (int c = 0; c < L->nc; ++c)
        if (ref[R->active + c] > 0.5)
            rt_add_frame_wrench(M, L->contact_frames[c], L->cfg.contact_reference, ref + R->f + 6 * c, L->fext);
    return L->fext;
}

/* tau = ID(q, v, qdd_ref) - sum_c J_c^T f_c + Kp (q_ref - q) + Kd (v_ref - v); joints past their
 * limits get the damping law instead. */
static void control_law(rt_loop *L, const tick_inputs *in) {
    const int n = L->n;
    const rt_ref_layout *R = &L->R;
    const double *ref = in->ref;
    const double *q = L->words + rt_sw_q(n), *v = L->words + rt_sw_v(n);
    assemble_configuration(L, in);
    const double *fext = contact_wrenches(L, ref);
    rt_rnea(L->model, L->qfull, L->vfull, ref + R->qdd, fext, L->tau_full);
    const double *qr = ref + R->q, *vr = ref + R->v, *kp = ref + R->kp, *kd = ref + R->kd;
    for (int j = 0; j < n; ++j)
        L->tau[j] = L->tau_full[L->jv[j]] + kp[j] * (qr[j] - q[j]) + kd[j] * (vr[j] - v[j]);
    for (int j = 0; j < n; ++j)
        if (L->damped[j]) L->tau[j] = damping_torque(L, j, v[j]);
}

/* Every joint damped (nothing at all before the first state). */
static void damping_law(rt_loop *L) {
    const double *v = L->words + rt_sw_v(L->n);
    for (int j = 0; j < L->n; ++j) L->tau[j] = L->have_state ? damping_torque(L, j, v[j]) : 0.0;
}

/* A non-finite torque faults and becomes 0; every torque is clamped to the effort limit, in every state. */
static void check_and_clamp_torque(rt_loop *L) {
    for (int j = 0; j < L->n; ++j) {
        if (!isfinite(L->tau[j])) {
            fault(L, RT_REASON_NONFINITE_TORQUE, j, L->tau[j]);
            L->tau[j] = 0.0;
        }
        L->tau[j] = clamp_abs(L->tau[j], L->effort[j]);
    }
}

/* Motor-side PD (cfg.motor_pd with a transport that has write_pd): the motor closes the PD loop at its own
 * rate, so the command carries tau_ff = ID - sum J^T f with q_ref, v_ref, kp, kd instead of one torque.
 * The loop's safety still bounds what the motor can do: q_ref is kept inside the joint limits, and then
 * inside q +- (effort - |tau_ff|) / kp so the PD torque at the measured state stays within the effort limit
 * (tau_ff itself is clamped to it); damped joints (and every joint when not controlling) get kp = 0,
 * kd = the damping gain, tau_ff = 0: motor-side damping. L->tau holds the equivalent torque at the measured
 * state (what the snapshot reports). The gains are the references' (the WBC caps them before sending). */
static void motor_pd_command(rt_loop *L, const tick_inputs *in, int control) {
    const int n = L->n;
    double *tff = L->pd, *qr = L->pd + n, *vr = L->pd + 2 * n, *kp = L->pd + 3 * n, *kd = L->pd + 4 * n;
    const double *q = L->words + rt_sw_q(n), *v = L->words + rt_sw_v(n);
    const double *ref = in->ref;
    const rt_ref_layout *R = &L->R;
    for (int j = 0; j < n; ++j) {
        const int damp = !control || L->damped[j] || !L->have_state;
        if (damp) {
            tff[j] = 0.0;
            qr[j] = isfinite(q[j]) ? q[j] : 0.0;
            vr[j] = 0.0;
            kp[j] = 0.0;
            kd[j] = L->have_state ? L->damping_kd[j] : 0.0;
            continue;
        }
        tff[j] = clamp_abs(L->tau_full[L->jv[j]], L->effort[j]);
        kp[j] = ref[R->kp + j] > 0 ? ref[R->kp + j] : 0.0;
        kd[j] = ref[R->kd + j] > 0 ? ref[R->kd + j] : 0.0;
        vr[j] = ref[R->v + j];
        double target = ref[R->q + j];
        if (target < L->lower[j]) target = L->lower[j];
        if (target > L->upper[j]) target = L->upper[j];
        if (kp[j] > 0) {
            const double room = (L->effort[j] - fabs(tff[j])) / kp[j];
            if (target > q[j] + room) target = q[j] + room;
            if (target < q[j] - room) target = q[j] - room;
        }
        qr[j] = target;
    }
    for (int j = 0; j < n; ++j) {
        L->tau[j] = tff[j] + kp[j] * (qr[j] - q[j]) + kd[j] * (vr[j] - v[j]);
        if (!isfinite(L->tau[j]) || !isfinite(tff[j]) || !isfinite(qr[j]) || !isfinite(vr[j])) {
            fault(L, RT_REASON_NONFINITE_TORQUE, j, L->tau[j]);
            tff[j] = vr[j] = kp[j] = 0.0;
            qr[j] = 0.0;
            kd[j] = L->damping_kd[j];
            L->tau[j] = 0.0;
        }
        L->tau[j] = clamp_abs(L->tau[j], L->effort[j]);
    }
}

static inline int use_motor_pd(const rt_loop *L) { return L->cfg.motor_pd && L->tr.write_pd; }

static void compute_torque(rt_loop *L, const tick_inputs *in, int control) {
    if (control) control_law(L, in);
    else damping_law(L);
    check_and_clamp_torque(L);
    if (use_motor_pd(L)) motor_pd_command(L, in, control);
}

/* -- publication -- */

/* Snapshot first, command second: whoever got the command finds its tick in read_state(). */
static void publish(rt_loop *L, double age) {
    const int n = L->n;
    const int st = atomic_load_explicit(&L->state, memory_order_relaxed);
    const int reason = atomic_load_explicit(&L->reason, memory_order_relaxed);
    double *snap = rt_tbuf_back(&L->snapshot);
    snap[0] = (double)L->state_tick;
    memcpy(snap + 1, L->words, sizeof(double) * (size_t)L->n_words);
    memcpy(snap + 1 + L->n_words, L->tau, sizeof(double) * (size_t)n);
    snap[1 + L->n_words + n] = (double)st;
    snap[2 + L->n_words + n] = age;
    if (L->sync_due) { /* the same words for the Python update, which must see exactly this state */
        memcpy(rt_tbuf_back(&L->update_snapshot), snap, sizeof(double) * (size_t)L->snapshot_words);
        rt_tbuf_commit(&L->update_snapshot);
    }
    rt_tbuf_commit(&L->snapshot);
    atomic_fetch_add_explicit(&L->ticks, 1, memory_order_relaxed);
    if (!L->have_state) return;
    if (use_motor_pd(L)) {
        const int n = L->n;
        L->tr.write_pd(L->tr.ctx, L->state_tick, L->pd, L->pd + n, L->pd + 2 * n, L->pd + 3 * n, L->pd + 4 * n, st,
                       reason);
    } else {
        L->tr.write_command(L->tr.ctx, L->state_tick, L->tau, st, reason);
    }
}

/* now_s: CLOCK_MONOTONIC seconds (clock-triggered real time) or the state's time (lockstep, state-triggered). */
static void loop_tick(rt_loop *L, int have_new, double now_s) {
    if (atomic_exchange_explicit(&L->reset_request, 0, memory_order_acq_rel)) apply_reset(L);
    tick_inputs in;
    check_inputs(L, have_new, now_s, &in);
    const int control = advance_state(L, &in);
    compute_torque(L, &in, control);
    publish(L, in.age);
}

/* ---- threads ------------------------------------------------------------------------------------ */
static void prefault_stack(void) {
    volatile unsigned char buf[64 * 1024];
    for (size_t i = 0; i < sizeof(buf); i += 4096) buf[i] = 0;
}

/* The transport reported a fault (CAN: a motor silent for 3 cycles, bus-off, adapter gone): latch it with
 * the transport's detail; the tick then damps like every other fault. */
static void transport_fault(rt_loop *L) {
    int index = -1;
    double value = 0.0;
    if (L->tr.fault_info) L->tr.fault_info(L->tr.ctx, &index, &value);
    fault(L, RT_REASON_TRANSPORT_FAULT, index, value);
}

/* Real time with sync_period_ticks > 0: a state at least one period after the previous update state is
 * handed to the Python side (rt_loop_wait_update) without ever waiting for it, so the update thread
 * sleeps until there is work instead of polling, and a slow update only makes the references older. */
static void realtime_update_due(rt_loop *L, int have_new) {
    const int period = L->cfg.sync_period_ticks;
    L->sync_due = have_new && period > 0 && (L->last_sync_tick < 0 || L->state_tick >= L->last_sync_tick + period);
}

static void realtime_update_publish(rt_loop *L) {
    if (!L->sync_due) return;
    L->sync_due = 0;
    L->last_sync_tick = L->state_tick;
    atomic_fetch_add_explicit(&L->update_seq, 1, memory_order_release);
    futex_wake_private(&L->update_seq);
}

/* One real-time tick at wall time `woke` [ns] with or without a new state. */
static void realtime_tick(rt_loop *L, int have, int64_t woke) {
    if (have < 0) transport_fault(L);
    realtime_update_due(L, have == 1);
    loop_tick(L, have == 1, L->cfg.state_triggered ? L->words[rt_sw_time()] : (double)woke * 1e-9);
    realtime_update_publish(L);
}

/* Clock-triggered: ticks at absolute deadlines; each reads whatever state is newest (CAN buses, whose
 * replies arrive within the cycle). A tick that ends past the next deadline is a miss, and the periods
 * it overran are skipped, not made up. */
static void run_clock_triggered(rt_loop *L) {
    const int64_t period = (int64_t)llround(1e9 / L->cfg.rate_hz);
    int64_t next = mono_ns() + period;
    while (!atomic_load_explicit(&L->stop, memory_order_acquire)) {
        struct timespec ts = {(time_t)(next / 1000000000LL), (long)(next % 1000000000LL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        const int64_t woke = mono_ns();
        rt_hist_add(&L->latency, woke - next);
        realtime_tick(L, L->tr.read_state(L->tr.ctx, &L->state_tick, L->words), woke);
        const int64_t end = mono_ns();
        rt_hist_add(&L->compute, end - woke);
        next += period;
        if (end > next) {
            atomic_fetch_add_explicit(&L->misses, 1, memory_order_relaxed);
            while (next < end) {
                next += period;
                atomic_fetch_add_explicit(&L->skipped, 1, memory_order_relaxed);
            }
        }
    }
}

/* State-triggered: a tick runs as soon as the robot side publishes a state (a simulator or emulator
 * with its own clock), so its answer is there before the robot side's next step however the two clocks'
 * phases lie, and a robot side that fell behind can catch up. Without a state for 1.5 periods a tick
 * runs anyway (silent-transport watchdog, stale references), then one per period. The latency histogram
 * holds the wait beyond one period (0 while states come on time); a miss is a tick computed for longer
 * than one period. */
static void run_state_triggered(rt_loop *L) {
    const int64_t period = (int64_t)llround(1e9 / L->cfg.rate_hz);
    int64_t last = mono_ns();
    int64_t timeout = period + period / 2;
    while (!atomic_load_explicit(&L->stop, memory_order_acquire)) {
        const int64_t left = last + timeout - mono_ns();
        const int r = left > 0 ? L->tr.wait_state(L->tr.ctx, L->state_tick, left, &L->stop) : 0;
        if (atomic_load_explicit(&L->stop, memory_order_acquire)) break;
        const int64_t woke = mono_ns();
        const int have = r == 1 ? L->tr.read_state(L->tr.ctx, &L->state_tick, L->words) : 0;
        rt_hist_add(&L->latency, woke - last > period ? woke - last - period : 0);
        realtime_tick(L, have, woke);
        const int64_t end = mono_ns();
        rt_hist_add(&L->compute, end - woke);
        if (end - woke > period) atomic_fetch_add_explicit(&L->misses, 1, memory_order_relaxed);
        timeout = have == 1 ? period + period / 2 : period;
        last = woke;
    }
}

static void run_realtime(rt_loop *L) {
    if (L->cfg.state_triggered && L->tr.wait_state) run_state_triggered(L);
    else run_clock_triggered(L);
}

/* Lockstep synchronisation (thread mode, sync_period_ticks > 0): before answering a sync state, wait
 * until Python has finished the previous one, so references computed from sync state s apply from
 * tick s + period exactly, whatever the machine's speed, while the QP runs during the robot side's steps.
 * A Python side silent for lockstep_timeout_s (or 1 s) is given up on until it marks a state again: the
 * references then go stale in sim time and the loop damps, as for any controller that stops answering. */
static void sync_gate(rt_loop *L) {
    const int period = L->cfg.sync_period_ticks;
    L->sync_due = period > 0 && L->state_tick % period == 0;
    if (!L->sync_due || L->last_sync_tick < 0) return;
    if (L->sync_bypass) {
        if (atomic_load_explicit(&L->processed_tick, memory_order_acquire) == L->bypass_processed) return;
        L->sync_bypass = 0;
    }
    if (atomic_load_explicit(&L->processed_tick, memory_order_acquire) >= L->last_sync_tick) return;
    const int64_t start = mono_ns();
    const int64_t limit = (int64_t)((L->cfg.lockstep_timeout_s > 0 ? L->cfg.lockstep_timeout_s : 1.0) * 1e9);
    atomic_fetch_add_explicit(&L->sync_waits, 1, memory_order_relaxed);
    for (;;) {
        const uint32_t seq = atomic_load_explicit(&L->processed_seq, memory_order_acquire);
        const int64_t done = atomic_load_explicit(&L->processed_tick, memory_order_acquire);
        if (done >= L->last_sync_tick || atomic_load_explicit(&L->stop, memory_order_acquire)) break;
        const int64_t waited = mono_ns() - start;
        if (waited >= limit) {
            atomic_fetch_add_explicit(&L->sync_timeouts, 1, memory_order_relaxed);
            L->sync_bypass = 1;
            L->bypass_processed = done;
            break;
        }
        const int64_t left = limit - waited;
        futex_wait_private(&L->processed_seq, seq, left < 20000000LL ? left : 20000000LL);
    }
    atomic_fetch_add_explicit(&L->sync_wait_ns, (uint64_t)(mono_ns() - start), memory_order_relaxed);
}

static int lockstep_step(rt_loop *L, int64_t timeout_ns, int sync) {
    const int r = L->tr.wait_state(L->tr.ctx, L->state_tick, timeout_ns, &L->stop);
    if (r != 1) return r;
    const int have = L->tr.read_state(L->tr.ctx, &L->state_tick, L->words);
    if (have != 1) return 0;
    if (sync) sync_gate(L);
    const int64_t t0 = mono_ns();
    loop_tick(L, 1, L->words[rt_sw_time()]);
    rt_hist_add(&L->compute, mono_ns() - t0);
    if (L->sync_due) {
        L->sync_due = 0;
        L->last_sync_tick = L->state_tick;
        atomic_fetch_add_explicit(&L->update_seq, 1, memory_order_release);
        futex_wake_private(&L->update_seq);
    }
    return 1;
}

uint32_t rt_loop_wait_update(rt_loop *L, uint32_t seen_seq, int64_t timeout_ns) {
    const int64_t deadline = mono_ns() + timeout_ns;
    for (;;) {
        const uint32_t seq = atomic_load_explicit(&L->update_seq, memory_order_acquire);
        const int64_t left = deadline - mono_ns();
        if (seq != seen_seq || left <= 0) return seq;
        futex_wait_private(&L->update_seq, seq, left);
    }
}

void rt_loop_mark_processed(rt_loop *L, int64_t tick) {
    atomic_store_explicit(&L->processed_tick, tick, memory_order_release);
    atomic_fetch_add_explicit(&L->processed_seq, 1, memory_order_release);
    futex_wake_private(&L->processed_seq);
}

static void run_lockstep(rt_loop *L) {
    L->sync_active = L->cfg.sync_period_ticks > 0;
    const int64_t timeout = (int64_t)(L->cfg.lockstep_timeout_s * 1e9);
    const int64_t slice = 20000000LL;
    int64_t silent_since = mono_ns();
    int reported = 0;
    while (!atomic_load_explicit(&L->stop, memory_order_acquire)) {
        const int r = lockstep_step(L, slice, L->sync_active);
        if (r < 0) break;
        const int64_t now = mono_ns();
        if (r == 1) {
            silent_since = now;
            reported = 0;
            continue;
        }
        if (atomic_exchange_explicit(&L->reset_request, 0, memory_order_acq_rel)) apply_reset(L);
        if (L->tr.heartbeat) L->tr.heartbeat(L->tr.ctx, atomic_load(&L->state), atomic_load(&L->reason));
        if (L->have_state && timeout > 0 && now - silent_since >= timeout && !reported) {
            /* latch the fault and leave a damping answer to the last state for a robot that resumes */
            fault(L, RT_REASON_TRANSPORT_SILENT, -1, (double)(now - silent_since) * 1e-9);
            const double *v = L->words + rt_sw_v(L->n);
            for (int j = 0; j < L->n; ++j) L->tau[j] = clamp_abs(damping_torque(L, j, v[j]), L->effort[j]);
            L->tr.write_command(L->tr.ctx, L->state_tick, L->tau, atomic_load(&L->state), atomic_load(&L->reason));
            reported = 1;
        }
    }
}

static void *loop_thread(void *arg) {
    rt_loop *L = arg;
    /* A fixed thread name makes the loop visible in top/ps and lets tests count it exactly. */
    pthread_setname_np(pthread_self(), "optimus_rt");
    prefault_stack();
    if (L->cfg.lockstep) run_lockstep(L);
    else run_realtime(L);
    L->sync_active = 0;
    return NULL;
}

int rt_loop_start(rt_loop *L) {
    if (L->thread_alive) return EBUSY;
    /* a fresh run: INIT, no faults, no statistics, references count as arriving now */
    atomic_store(&L->stop, 0);
    atomic_store(&L->reset_request, 0);
    apply_reset(L);
    L->have_state = 0;
    L->ctrl_seen = L->base_seen = 0.0;
    L->ctrl_arrival = L->base_arrival = 0.0;
    atomic_store(&L->ticks, 0);
    atomic_store(&L->misses, 0);
    atomic_store(&L->skipped, 0);
    atomic_store(&L->states, 0);
    atomic_store(&L->silent_total, 0);
    rt_hist_reset(&L->latency);
    rt_hist_reset(&L->compute);
    L->last_sync_tick = -1;
    L->sync_due = L->sync_bypass = 0;
    atomic_store(&L->processed_tick, -1);
    atomic_store(&L->sync_waits, 0);
    atomic_store(&L->sync_wait_ns, 0);
    atomic_store(&L->sync_timeouts, 0);

    L->mlock_err = -1;
    if (L->cfg.lock_memory) {
        if (mlockall(MCL_CURRENT | MCL_FUTURE) == 0) {
            L->mlock_err = 0;
            L->locked = 1;
            atomic_fetch_add(&g_mlock_users, 1);
        } else {
            L->mlock_err = errno;
        }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    L->affinity_err = -1;
    if (L->cfg.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(L->cfg.cpu, &set);
        L->affinity_err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
    }
    L->fifo_err = -1;
    int rc;
    if (L->cfg.rt_priority > 0) {
        struct sched_param sp = {.sched_priority = L->cfg.rt_priority};
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        rc = pthread_create(&L->thread, &attr, loop_thread, L);
        L->fifo_err = rc;
        if (rc == EPERM || rc == EINVAL) { /* not permitted here: best effort, normal scheduling */
            pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
            rc = pthread_create(&L->thread, &attr, loop_thread, L);
        }
    } else {
        rc = pthread_create(&L->thread, &attr, loop_thread, L);
    }
    if (rc != 0 && L->cfg.cpu >= 0) { /* an absent CPU: retry unpinned */
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &all);
        pthread_attr_setaffinity_np(&attr, sizeof(all), &all);
        L->affinity_err = rc;
        rc = pthread_create(&L->thread, &attr, loop_thread, L);
    }
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        if (L->locked) {
            L->locked = 0;
            if (atomic_fetch_sub(&g_mlock_users, 1) == 1) munlockall();
        }
        return rc;
    }
    L->thread_alive = 1;
    atomic_store(&L->running, 1);
    return 0;
}

void rt_loop_stop(rt_loop *L) {
    if (L->thread_alive) {
        atomic_store_explicit(&L->stop, 1, memory_order_release);
        if (L->tr.interrupt) L->tr.interrupt(L->tr.ctx);
        pthread_join(L->thread, NULL);
        L->thread_alive = 0;
    }
    atomic_store(&L->running, 0);
    atomic_store_explicit(&L->state, RT_STOPPED, memory_order_release);
    /* Last word to the robot: zero torque and STOPPED; the robot side decides how to hold. */
    memset(L->tau, 0, sizeof(double) * (size_t)L->n);
    if (L->have_state) L->tr.write_command(L->tr.ctx, L->state_tick, L->tau, RT_STOPPED, atomic_load(&L->reason));
    if (L->tr.detach) L->tr.detach(L->tr.ctx, RT_STOPPED);
    if (L->locked) {
        L->locked = 0;
        if (atomic_fetch_sub(&g_mlock_users, 1) == 1) munlockall();
    }
}

int rt_loop_tick_once(rt_loop *L, int64_t timeout_ns) {
    if (atomic_load(&L->state) == RT_STOPPED) apply_reset(L);
    const int r = lockstep_step(L, timeout_ns, 0);
    if (r == 1) return 1;
    const int have = L->tr.read_state(L->tr.ctx, &L->state_tick, L->words);
    if (have == 1) {
        loop_tick(L, 1, L->words[rt_sw_time()]);
        return 1;
    }
    loop_tick(L, 0, L->have_state ? L->words[rt_sw_time()] : 0.0);
    return 0;
}
