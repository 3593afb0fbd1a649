/* Loopback transport: the robot side emulated in the process. Python sets the state it reports (held
 * until changed), every read yields a new tick (time = tick * dt), and the last command is kept for
 * Python to read. It can be made silent to exercise the loop's transport watchdog. */
#ifndef OPTIMUS_RT_LOOPBACK_H
#define OPTIMUS_RT_LOOPBACK_H

#include <stdatomic.h>

#include "rt_tbuf.h"
#include "rt_transport.h"

typedef struct {
    int n_joints, n_feet, n_words;
    double dt_s;
    rt_tbuf state_in;    /* Python -> loop: state words (time ignored) */
    rt_tbuf command_out; /* loop -> Python: tick, loop state, fault, tau[n] */
    int64_t tick;        /* loop-owned */
    _Atomic int silent;
} rt_loopback;

int rt_loopback_init(rt_loopback *lb, int n_joints, int n_feet, double dt_s);
void rt_loopback_free(rt_loopback *lb);
void rt_loopback_transport(rt_loopback *lb, rt_transport *t);

#endif
