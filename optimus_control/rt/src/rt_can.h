/* CAN transport of the loop: MIT-mode motors on one or more CAN buses (SLCAN or SocketCAN adapters).
 *
 * Threads: one per bus, paced by absolute deadlines at the bus's rate (SCHED_FIFO and CPU affinity when
 * permitted). Each cycle a bus thread takes the newest command for its joints, sends every motor's frame
 * as one burst, then collects replies until a deadline (a fraction of the period) and publishes its
 * joints' state. Hand-over both ways is lock-free: per bus, a triple buffer loop -> bus (commands) and
 * bus -> loop (states); the loop's read_state merges the buses' newest states and never blocks.
 *
 * Joint <-> motor conversion (gear ratio, direction, zero offset) happens in exactly one place, the two
 * inline functions of rt_can.c (to_motor / from_motor):
 *   motor position p = direction * scale * (q - offset), velocity = direction * scale * v,
 *   joint torque tau = direction * scale * motor torque; scale = motor rad per joint unit.
 *
 * Modes of a bus (set from Python, acted on by the bus thread):
 *   PASSIVE  zero-gain zero-torque frames: the motors (not in motor mode) answer with their state;
 *   ENTERING the enter-motor-mode frame to every motor, then ACTIVE;
 *   ACTIVE   the command source: the loop (torque mode: tau only; or motor-side PD when the loop runs
 *            with motor_pd: tau_ff, q_ref, v_ref, kp, kd through write_pd) or manual (joint-side q_ref, v_ref, kp,
 *            kd, tau converted to the motor's PD; q_ref clamped into the joint limits, gains clamped to the
 *            motor's ranges). A loop that is not RUNNING (INIT, DAMPING, FAULT other than a joint-limit
 *            fault, STOPPED) or whose command is older than 3 bus periods gets motor-side damping
 *            (kp 0, kd = damping, tau 0): a stale command is never replayed;
 *   EXITING  damping for 5 cycles, then the exit-motor-mode frame to every motor, then PASSIVE.
 * Faults (latched until rt_can_clear_fault, which refuses while the condition persists): a motor without
 * any reply for the bus's miss_limit consecutive cycles (default 3; a reply drained late still counts), a motor reporting an error (Damiao state nibble >= 8: over/under-voltage,
 * over-current, over-temperature, lost communication, overload), bus-off, adapter gone (the thread then closes the port and reopens it
 * every 100 ms; after a reconnect an ACTIVE bus re-enters motor mode and sends damping until the loop is
 * RUNNING again on fresh commands). While a fault is latched every bus sends damping at its next cycle
 * (without waiting for the loop) and read_state returns -1: the loop faults and damps too, and
 * rt_can_fault_info names the joint and the bus. */
#ifndef OPTIMUS_RT_CAN_H
#define OPTIMUS_RT_CAN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "rt_can_port.h"
#include "rt_mit.h"
#include "rt_stats.h"
#include "rt_tbuf.h"
#include "rt_transport.h"

#define RT_CAN_MAX_MOTORS 16 /* per bus */
#define RT_CAN_HOST_ID 0     /* the CAN id replies are sent to */

enum { RT_CAN_PASSIVE = 0, RT_CAN_ENTERING = 1, RT_CAN_ACTIVE = 2, RT_CAN_EXITING = 3 };
enum { RT_CAN_SOURCE_LOOP = 0, RT_CAN_SOURCE_MANUAL = 1 };
enum {
    RT_CAN_FAULT_NONE = 0,
    RT_CAN_FAULT_NO_REPLY = 1, /* index: joint */
    RT_CAN_FAULT_BUS_OFF = 2,
    RT_CAN_FAULT_GONE = 3,     /* adapter gone or unreachable */
    RT_CAN_FAULT_MOTOR = 4,    /* index: joint; a Damiao reply with an error code (state nibble >= 8) */
};

typedef struct {
    int bus, motor_id, joint;
    rt_mit_range range;
    double scale, direction, offset; /* see rt_can.h */
    double lower, upper;             /* joint limits: q_ref is kept inside */
    double damping_kd;               /* joint side [N m s/rad | N s/m] */
} rt_can_joint_cfg;

typedef struct {
    char url[160];
    long bitrate;
    double rate_hz;
    int miss_limit; /* consecutive cycles without any reply (late ones count as replies) -> NO_REPLY fault; >= 1
                     * (0: the default, RT_CAN_MISS_LIMIT) */
} rt_can_bus_cfg;

#define RT_CAN_MISS_LIMIT 3 /* the default: a joint silent for 3 consecutive cycles faults */

struct rt_can;

/* Frame log (candump): one single-producer (bus thread) single-consumer (Python) ring per bus. A full
 * ring drops the frame and counts it: the bus thread never waits for the logger. */
#define RT_CAN_LOG_SIZE 8192 /* entries, power of two */
typedef struct {
    int64_t t_ns; /* CLOCK_REALTIME, as candump -l */
    uint32_t id;
    uint8_t len, rx, _pad[2];
    uint8_t data[8];
} rt_can_log_entry;

typedef struct {
    struct rt_can *can;
    int index, kind, n;
    char device[128];
    long bitrate;
    int64_t period_ns;
    int miss_limit;
    int joints[RT_CAN_MAX_MOTORS]; /* global joint indexes */
    rt_can_port port;
    pthread_t thread;
    int started;
    rt_tbuf command_in; /* loop -> bus: [seq, loop_state, fault, pd, tau_ff[n], q_ref[n], v_ref[n], kp[n], kd[n]]
                         * (pd = 0: torque mode, only tau_ff is used) */
    rt_tbuf manual_in;  /* Python -> bus: [q, v, kp, kd, tau] x n */
    rt_tbuf state_out;  /* bus -> loop: [cycle, q[n], v[n], tau[n]] */
    rt_tbuf monitor_out; /* bus -> Python (enable checks, scan, jog): the same words */
    double last[3 * RT_CAN_MAX_MOTORS];
    int miss[RT_CAN_MAX_MOTORS];
    double last_seq;
    int stale_cycles, exit_cycles, reenter;
    _Atomic int selected[RT_CAN_MAX_MOTORS]; /* 0: this motor is never put in motor mode (it gets zero frames) */
    int64_t next_reconnect_ns;
    _Atomic int mode, connected;
    _Atomic int motor_error[RT_CAN_MAX_MOTORS], motor_t_mos[RT_CAN_MAX_MOTORS], motor_t_rotor[RT_CAN_MAX_MOTORS];
    _Atomic uint64_t motor_replies[RT_CAN_MAX_MOTORS];
    _Atomic uint64_t cycles, replies, missing, late, unknown, tx_errors, reconnects, overruns, clamps, complete_cycles;
    rt_hist rtt; /* burst sent -> last reply of the cycle, complete cycles only */
    rt_can_log_entry *log; /* NULL unless logging was enabled before start */
    _Atomic uint64_t log_head, log_tail, log_dropped;
    char last_error[256];
} rt_can_bus;

typedef struct rt_can {
    int n_joints, n_feet, n_buses, n_words;
    rt_can_joint_cfg *joints;
    rt_can_bus *buses;
    rt_transport tr;
    int64_t t0_ns, tick;
    double cmd_seq;
    double *words; /* the merged state (loop thread) */
    _Atomic int stop, source, rt_priority;
    _Atomic int fault_kind, fault_joint, fault_bus; /* latched */
    _Atomic int fault_flags; /* 1 << kind, every fault seen since the last clear */
    int cpu_first; /* bus k pinned to cpu_first + k (mod cpus) when >= 0 */
} rt_can;

/* Not real-time: allocates, opens nothing. Returns NULL with err filled. */
rt_can *rt_can_create(int n_joints, int n_feet, const rt_can_bus_cfg *buses, int n_buses,
                      const rt_can_joint_cfg *joints, char *err, int errlen);
/* Opens every adapter (blocking, timeout each) and starts the bus threads in PASSIVE mode. */
int rt_can_start(rt_can *c, int rt_priority, int cpu_first, int64_t open_timeout_ns, char *err, int errlen);
/* Buses not PASSIVE first get EXITING (damping cycles, then the exit frame; bounded wait), then the threads
 * stop (no frame is sent after) and the adapters close. */
void rt_can_stop(rt_can *c);
void rt_can_free(rt_can *c);
void rt_can_set_mode(rt_can *c, int mode);
/* Which joints the next ENTERING puts in motor mode (n_joints flags; all at creation). The others keep
 * getting zero-gain zero-torque frames (they answer, nothing moves): a bring-up tool enables one motor.
 * Returns -1 (nothing changed) unless every bus is PASSIVE. */
int rt_can_select(rt_can *c, const int *selected);
/* Allocates the log rings (before start; not real-time). Returns 0 or -1. */
int rt_can_enable_log(rt_can *c);
/* Pops up to max entries of bus b into out; returns how many. */
int rt_can_drain_log(rt_can *c, int b, rt_can_log_entry *out, int max);
/* Manual commands, joint side, arrays of n_joints; switches the source to manual. */
void rt_can_set_manual(rt_can *c, const double *q, const double *v, const double *kp, const double *kd,
                       const double *tau);
/* 0 cleared; -1 the condition persists (bus down, or a motor still silent). */
int rt_can_clear_fault(rt_can *c);
int rt_can_fault_info(void *ctx, int *index, double *value);

#endif
