/* The transport objects of the Python bindings (LoopbackTransport, ShmTransport, CanTransport), shared by their own
 * files and by the Loop binding, which takes either one. */
#ifndef OPTIMUS_RT_PY_TRANSPORT_H
#define OPTIMUS_RT_PY_TRANSPORT_H

#include "py_common.h"
#include "rt_can.h"
#include "rt_loopback.h"
#include "rt_shm.h"
#include "rt_transport.h"

typedef struct {
    PyObject_HEAD
    rt_transport tr;
    int in_use; /* owned by a Loop */
    rt_loopback lb;   /* LoopbackTransport */
    double *staging;  /* LoopbackTransport: the state being set, NULL until initialised */
    rt_shm *shm;      /* ShmTransport: NULL when closed */
    PyObject *name;   /* ShmTransport: segment name */
    rt_can *can;      /* CanTransport: NULL until initialised */
    int can_started;  /* CanTransport: adapters open, bus threads running */
} TransportObject;

extern PyTypeObject rtpy_LoopbackType, rtpy_ShmType, rtpy_CanType;

/* A motor's ranges from (p_min, p_max, v_min, v_max, kp_min, kp_max, kd_min, kd_max, t_min, t_max). */
int rtpy_parse_range(PyObject *obj, int damiao, rt_mit_range *r);

/* An initialised loopback or an open shm transport (the Loop needs one). */
static inline int rtpy_transport_open(const TransportObject *t) {
    if (Py_IS_TYPE((PyObject *)t, &rtpy_ShmType)) return t->shm != NULL;
    if (Py_IS_TYPE((PyObject *)t, &rtpy_CanType)) return t->can != NULL && t->can_started;
    return t->staging != NULL;
}

static inline PyObject *rtpy_transport_n_joints(TransportObject *self, void *c) {
    return PyLong_FromLong(self->tr.n_joints);
}
static inline PyObject *rtpy_transport_n_feet(TransportObject *self, void *c) {
    return PyLong_FromLong(self->tr.n_feet);
}

#endif
