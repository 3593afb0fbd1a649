/* The HIL actuator emulator: MIT-mode motors behind SLCAN adapters on pseudo-terminals, driving a simulated
 * robot through the robot side's joint bus.
 *
 * Two kinds of threads, no allocation after start:
 *  - one per bus: serves the master side of a pty exactly as a USB SLCAN adapter does (S<n>/O/C/V/F,
 *    '\r' / 'z\r' acknowledgements, '\a' on a bad line or a frame while closed) and answers each command
 *    frame addressed to one of its motors with that motor's reply (quantised by the motor's ranges);
 *  - the plant thread: takes every state the simulator publishes on the joint bus (the controller side of
 *    an rt_transport, e.g. ShmTransport), and answers it at once with the joint torques the motors produce:
 *    tau_m = clamp(kp (p_ref - p_m) + kd (v_ref - v_m) + t_ff) on the motor side, per motor, from the newest
 *    command its bus thread decoded; tau_joint = direction * scale * tau_m. A motor out of motor mode
 *    produces no torque; one whose commands stopped for its firmware timeout damps (or goes limp).
 * Mechanics are the hardware description's: motor angle = direction * scale * (q - offset) - zero_shift
 * (a zero frame FE sets zero_shift to the current angle), as the CAN transport assumes them: a wrong
 * calibration on the host shows as a wrong joint angle, as on the robot.
 * Hand-over: per bus a triple buffer each way (bus -> plant: commands; plant -> bus: motor states). */
#ifndef OPTIMUS_RT_EMU_H
#define OPTIMUS_RT_EMU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "rt_mit.h"
#include "rt_slcan.h"
#include "rt_tbuf.h"
#include "rt_transport.h"

#define RT_EMU_MAX_MOTORS 16 /* per bus */
#define RT_EMU_CMD_WORDS 7   /* per motor, bus -> plant: enabled, p, v, kp, kd, t, zero_shift */
#define RT_EMU_ST_WORDS 3    /* per motor, plant -> bus: p_m, v_m, tau_m (motor side, before zero_shift) */

typedef struct {
    int bus;                 /* bus index */
    int motor_id;            /* 11-bit id; replies carry its low byte (Damiao: low nibble) */
    rt_mit_range range;      /* the motor's ranges; damiao_reply selects the 8-byte reply */
    double scale, direction, offset; /* motor = direction * scale * (q - offset) */
    double timeout_s;        /* firmware command timeout (0: none) */
    double timeout_kd;       /* after a timeout: tau_m = -timeout_kd * v_m (0: limp) */
} rt_emu_motor_cfg;

typedef struct {
    _Atomic int enabled, silent, error_code, t_mos, t_rotor;
    _Atomic uint64_t frames, commands, enters, exits, zeros, replies;
    _Atomic int timed_out;
} rt_emu_motor_status;

struct rt_emu;

typedef struct {
    struct rt_emu *emu;
    int index, n;
    int joints[RT_EMU_MAX_MOTORS];
    int master, slave;       /* pty fds (-1: gone) */
    char path[256];          /* a symlink to the pty's slave, made at start */
    char tty[128];           /* the slave's device name */
    _Atomic int open, vanished;
    int bitrate_code;
    rt_slcan_parser parser;
    rt_tbuf cmd_out;         /* bus -> plant: RT_EMU_CMD_WORDS per motor, then [0] = time of each command */
    double cmd[RT_EMU_MAX_MOTORS * RT_EMU_CMD_WORDS]; /* the bus thread's own copy */
    double cmd_time[RT_EMU_MAX_MOTORS];
    _Atomic int64_t shift_request[RT_EMU_MAX_MOTORS]; /* a new zero shift (bits of a double), taken by the bus thread */
    _Atomic int shift_pending[RT_EMU_MAX_MOTORS];
    rt_tbuf state_in;        /* plant -> bus: RT_EMU_ST_WORDS per motor */
    char out[8192];
    int out_len;
    /* the wire and its faults (set at run time; read by this bus's thread) */
    long bitrate;                 /* frame time at this rate delays each burst's answers (0: no wire time) */
    _Atomic int latency_us;       /* added to every burst's answers */
    _Atomic int jitter_us;        /* uniform 0..jitter added on top */
    _Atomic int drop_ppm;         /* replies lost on the wire, per million */
    _Atomic int corrupt_ppm;      /* replies garbled on the line (bad hex), per million */
    _Atomic int silent;           /* the whole bus: nothing answers (a cut cable; the adapter still acknowledges) */
    uint64_t rng;                 /* xorshift state of this bus */
    int burst_frames;             /* frames on the wire in this read's burst (commands + replies) */
    pthread_t thread;
    int started;
    _Atomic uint64_t lines, frames_in, replies_out, bad_lines, unknown_ids, dropped, corrupted;
} rt_emu_bus;

typedef struct rt_emu {
    int n_joints, n_feet, n_buses, n_words;
    rt_emu_motor_cfg *motors;        /* per joint */
    rt_emu_motor_status *status;     /* per joint */
    rt_emu_bus *buses;
    rt_transport *tr;                /* the simulator's joint bus, controller side */
    pthread_t plant;
    int plant_started;
    _Atomic int stop, rt_priority;
    double *words;                   /* the plant thread's state */
    double *tau;                     /* joint torques of the last answer */
    rt_tbuf snapshot;                /* plant -> Python: [tick, words..., tau[n]] */
    _Atomic uint64_t states, answers;
    int64_t t0_ns;
} rt_emu;

rt_emu *rt_emu_create(rt_transport *tr, const rt_emu_motor_cfg *motors, int n_joints, int n_buses,
                      char *err, int errlen);
/* Waits for the robot side's first state (motors answer with their joint's state: none before it), then opens
 * one pty per bus (its slave linked at paths[b]) and starts the bus and plant threads. 0 or -1 + err. */
int rt_emu_start(rt_emu *e, const char *const *paths, int rt_priority, double first_state_timeout_s, char *err,
                 int errlen);
void rt_emu_stop(rt_emu *e);
void rt_emu_free(rt_emu *e);
/* The encoder of joint j reads shifted by shift [rad, motor side] (a lost or wrong zero; before start, or at
 * run time: an encoder that slipped). */
void rt_emu_set_zero_shift(rt_emu *e, int j, double shift);
/* The wire of bus b: bitrate for frame times (0: none), added latency and jitter [us]. */
void rt_emu_set_wire(rt_emu *e, int b, long bitrate, int latency_us, int jitter_us);
/* Faults of bus b: replies dropped / garbled per million, the whole bus silent. */
void rt_emu_set_bus_faults(rt_emu *e, int b, int drop_ppm, int corrupt_ppm, int silent);
/* The adapter of bus b is unplugged (pty closed, path removed) or plugged back in at the same path. */
void rt_emu_vanish(rt_emu *e, int b);
int rt_emu_reappear(rt_emu *e, int b);

#endif
