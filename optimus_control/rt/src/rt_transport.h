/* The loop's view of the robot: a small interface any transport implements (shared memory and loopback
 * today; a CAN bus later, without touching the loop).
 *
 * A state is a tick counter plus "state words" (doubles), in this order:
 *   time_s, q[n], v[n], tau_measured[n], imu_orientation_xyzw[4], imu_angular_velocity[3],
 *   imu_linear_acceleration[3], foot_wrench[n_feet][6]
 * Joint arrays are in bus order (RobotModel.joint_names).
 */
#ifndef OPTIMUS_RT_TRANSPORT_H
#define OPTIMUS_RT_TRANSPORT_H

#include <stdatomic.h>
#include <stdint.h>

static inline int rt_sw_time(void) { return 0; }
static inline int rt_sw_q(int n) { (void)n; return 1; }
static inline int rt_sw_v(int n) { return 1 + n; }
static inline int rt_sw_tau(int n) { return 1 + 2 * n; }
static inline int rt_sw_quat(int n) { return 1 + 3 * n; }
static inline int rt_sw_gyro(int n) { return 5 + 3 * n; }
static inline int rt_sw_acc(int n) { return 8 + 3 * n; }
static inline int rt_sw_feet(int n) { return 11 + 3 * n; }
static inline int rt_state_word_count(int n, int n_feet) { return 11 + 3 * n + 6 * n_feet; }

typedef struct rt_transport {
    void *ctx;
    int n_joints, n_feet;
    /* Copies the newest state into (*tick, words) if it is newer than *tick. Returns 1 if it copied a
     * new state, 0 if there is none (or the packet was busy), -1 on a transport error. Never blocks. */
    int (*read_state)(void *ctx, int64_t *tick, double *words);
    /* Blocks until a state newer than after_tick exists: 1 ready, 0 timeout, -1 interrupted. */
    int (*wait_state)(void *ctx, int64_t after_tick, int64_t timeout_ns, const _Atomic int *stop);
    /* Publishes the command answering `tick`, with the loop's state and fault codes. */
    void (*write_command)(void *ctx, int64_t tick, const double *tau, int32_t loop_state, int32_t fault);
    /* Marks the controller detached (loop stopped) with a final command; may be NULL. */
    void (*detach)(void *ctx, int32_t loop_state);
    /* Wakes a wait_state in progress (so stop() is prompt); may be NULL. */
    void (*interrupt)(void *ctx);
    /* Tells the robot the controller is alive while it waits for states (lockstep); may be NULL. */
    void (*heartbeat)(void *ctx, int32_t loop_state, int32_t fault);
    /* After read_state returned -1: the transport's fault code (0 none) and what it concerns (index: a
     * joint or -1; value: transport-specific, e.g. a bus index), for the loop's fault reason; may be NULL. */
    int (*fault_info)(void *ctx, int *index, double *value);
    /* Motor-side PD (loops configured with motor_pd): instead of write_command, the feed-forward torque and
     * each joint's q_ref (inside the joint limits), v_ref, kp, kd; the motor computes
     * tau = tau_ff + kp (q_ref - q) + kd (v_ref - v) at its own rate. May be NULL (torque mode only). */
    void (*write_pd)(void *ctx, int64_t tick, const double *tau_ff, const double *q_ref, const double *v_ref,
                     const double *kp, const double *kd, int32_t loop_state, int32_t fault);
} rt_transport;

#endif
