/* The 1 kHz inverse-dynamics loop: a native thread (real-time mode, paced by absolute deadlines) or
 * the transport's ticks (lockstep mode) run the same tick function:
 *   read state -> tau = ID(q, v, qdd_ref) - sum_c J_c^T f_c + Kp (q_ref - q) + Kd (v_ref - v)
 *   -> safety (stale/non-finite references, non-finite state, joint limits, silent transport) -> clamp
 *   -> write the command.
 * Nothing here allocates after rt_loop_create, takes a lock, or touches Python.
 */
#ifndef OPTIMUS_RT_LOOP_H
#define OPTIMUS_RT_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "rt_dynamics.h"
#include "rt_stats.h"
#include "rt_tbuf.h"
#include "rt_transport.h"

enum rt_loop_state { RT_INIT = 0, RT_RUNNING = 1, RT_DAMPING = 2, RT_FAULT = 3, RT_STOPPED = 4 };

/* Why the loop left RUNNING (or never reached it). */
enum rt_reason {
    RT_REASON_NONE = 0,
    RT_REASON_STALE_REFERENCE = 1,      /* value: age [s] */
    RT_REASON_NONFINITE_STATE = 2,      /* index: state word */
    RT_REASON_NONFINITE_REFERENCE = 3,  /* index: reference word */
    RT_REASON_JOINT_LIMIT = 4,          /* index: joint, value: position */
    RT_REASON_TRANSPORT_SILENT = 5,     /* value: silence [s] */
    RT_REASON_NONFINITE_TORQUE = 6,     /* index: joint */
    RT_REASON_BAD_BASE_QUATERNION = 7,  /* value: quaternion norm */
    RT_REASON_TRANSPORT_FAULT = 8,      /* read_state returned -1; index: joint or -1, value: transport's detail */
    RT_REASON_COUNT
};

typedef struct {
    double rate_hz;
    int lockstep;
    double stale_timeout_s;
    int silent_ticks;           /* real-time: ticks without a new state before TRANSPORT_SILENT */
    double lockstep_timeout_s;  /* lockstep: wall time without a new state before TRANSPORT_SILENT */
    double joint_limit_margin;  /* [rad | m] tolerated beyond the model limits */
    int contact_reference;      /* RT_LOCAL or RT_LOCAL_WORLD_ALIGNED for f_ref */
    int rt_priority;            /* SCHED_FIFO priority, <= 0: do not ask */
    int cpu;                    /* CPU to pin the thread to, < 0: no pinning */
    int lock_memory;            /* mlockall while running */
    int sync_period_ticks;      /* lockstep thread: Python updates from every state whose tick is a multiple of
                                 * this; such a state is answered only once Python finished the previous one
                                 * (rt_loop_mark_processed). Real time: a state this many ticks after the last
                                 * update state is handed to Python (rt_loop_wait_update), never waited for.
                                 * 0: no update states. */
    int motor_pd;               /* the transport runs the PD in the motors (write_pd): see rt_loop.c */
    int state_triggered;        /* real time: tick when the robot side publishes a state (its own clock, e.g. a
                                 * simulator), not at the loop's own deadlines; see run_state_triggered */
} rt_loop_config;

/* Layout of the reference words (offsets filled by rt_loop_create). */
typedef struct {
    int qdd, q, v, kp, kd, f, active, base_q, base_v, ctrl_stamp, base_stamp, ctrl_seq, base_seq, count;
} rt_ref_layout;

typedef struct rt_loop {
    rt_model *model;
    rt_transport tr;
    rt_loop_config cfg;
    int n, nc, has_ff, n_words, snapshot_words;
    rt_ref_layout R;
    int *jq, *jv, *junbounded, *contact_frames;
    double *damping_kd, *effort, *lower, *upper;

    rt_tbuf refs;      /* Python -> loop */
    rt_tbuf snapshot;  /* loop -> Python: tick, state words, tau command, loop state, control age */
    double *staging;   /* Python-side reference staging (writer-owned) */

    /* loop-owned working memory */
    int64_t state_tick;
    double *words, *qfull, *vfull, *tau_full, *fext, *tau;
    double *pd; /* motor_pd: tau_ff, q_ref, v_ref, kp, kd (5 x n) sent with write_pd */
    unsigned char *damped;
    double ctrl_seen, base_seen, ctrl_arrival, base_arrival;
    int silent_count, have_state;
    int64_t wait_ns;

    /* shared with Python */
    _Atomic int state, reason, reason_index, reset_request, stop, running;
    _Atomic uint32_t fault_flags;
    _Atomic int64_t reason_value_bits, ctrl_age_ns;
    _Atomic uint64_t ticks, misses, skipped, states, silent_total;
    rt_hist latency, compute;

    /* the Python update's states (sync_period_ticks > 0, thread mode; lockstep also waits for it) */
    rt_tbuf update_snapshot;           /* loop -> Python: the snapshot of each sync state */
    _Atomic uint32_t update_seq;       /* bumped (futex word) after each sync snapshot */
    _Atomic uint32_t processed_seq;    /* bumped (futex word) by rt_loop_mark_processed */
    _Atomic int64_t processed_tick;    /* latest sync state Python has finished with */
    int64_t last_sync_tick;            /* latest sync state published by the loop (-1: none) */
    int sync_active;                   /* the lockstep thread runs with sync_period_ticks > 0 */
    int sync_due, sync_bypass;         /* this tick is a sync state; Python timed out (no waiting until it marks) */
    int64_t bypass_processed;
    _Atomic uint64_t sync_waits, sync_wait_ns, sync_timeouts;
    pthread_t thread;
    int thread_alive;
    int fifo_err, mlock_err, affinity_err, locked;
} rt_loop;

rt_loop *rt_loop_create(const rt_model *model, const rt_transport *tr, const rt_loop_config *cfg,
                        const double *damping_kd, const double *effort, const double *lower, const double *upper,
                        const int *contact_frames, int nc, char *err, size_t errlen);
void rt_loop_destroy(rt_loop *L);

/* Starts the thread (real-time or lockstep). Returns 0 or an errno. Sets *_err fields for the
 * best-effort real-time settings (0 = applied, -1 = not requested). */
int rt_loop_start(rt_loop *L);
void rt_loop_stop(rt_loop *L);
/* Lockstep without a thread: waits up to timeout_ns for a new state, then runs one tick (with or
 * without a new state). Returns 1 if a new state was consumed, 0 otherwise. */
int rt_loop_tick_once(rt_loop *L, int64_t timeout_ns);

/* Publishes the staging references (Python side). ctrl/base say which groups were refreshed. */
void rt_loop_publish_refs(rt_loop *L, int ctrl, int base);
void rt_loop_request_reset(rt_loop *L);
/* Python side of the lockstep synchronisation: wait (up to timeout_ns) until update_seq differs from
 * seen_seq; returns the current update_seq. mark_processed: Python finished the sync state `tick`. */
uint32_t rt_loop_wait_update(rt_loop *L, uint32_t seen_seq, int64_t timeout_ns);
void rt_loop_mark_processed(rt_loop *L, int64_t tick);
double rt_loop_reason_value(rt_loop *L);

#endif
