/* Python bindings of the loop and its transports: _rtcore.Loop, LoopbackTransport, ShmTransport, and
 * the triple buffer (exposed for tests of the lock-free channel). */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "py_common.h"
#include "py_dynamics.h"
#include "rt_loop.h"
#include "rt_loopback.h"
#include "rt_shm.h"
#include "rt_tbuf.h"

/* ---- transports ------------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    rt_transport tr;
    int in_use; /* owned by a Loop */
    int kind;   /* 0 loopback, 1 shm */
    rt_loopback lb;
    double *staging;
    rt_shm *shm;
    PyObject *name;
} TransportObject;

static PyTypeObject LoopbackType, ShmType;

static void transport_dealloc(TransportObject *self) {
    if (self->kind == 0 && self->staging) {
        rt_loopback_free(&self->lb);
        PyMem_Free(self->staging);
    }
    if (self->kind == 1 && self->shm) rt_shm_close(self->shm);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int loopback_init(TransportObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n_joints", "n_feet", "dt_s", NULL};
    int n, nf;
    double dt = 0.001;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii|d:LoopbackTransport", kwlist, &n, &nf, &dt)) return -1;
    if (n < 1 || nf < 0 || !(dt > 0)) {
        PyErr_Format(rtpy_RealTimeError, "LoopbackTransport: n_joints (%d) must be >= 1, n_feet (%d) >= 0, dt_s > 0",
                     n, nf);
        return -1;
    }
    if (self->staging) {
        PyErr_SetString(rtpy_RealTimeError, "LoopbackTransport is already initialised");
        return -1;
    }
    self->kind = 0;
    if (rt_loopback_init(&self->lb, n, nf, dt) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->staging = PyMem_Calloc((size_t)self->lb.n_words, sizeof(double));
    if (!self->staging) {
        rt_loopback_free(&self->lb);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(self->staging, self->lb.state_in.slots, sizeof(double) * (size_t)self->lb.n_words);
    rt_loopback_transport(&self->lb, &self->tr);
    return 0;
}

static PyObject *loopback_set_state(TransportObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "tau_measured", "imu_orientation_xyzw", "imu_angular_velocity",
                                        "imu_linear_acceleration", "foot_wrench"};
    PyObject *o[7];
    if (rtpy_parse_args("set_state", args, nargs, kwnames, names, 7, 0, o) < 0) return NULL;
    const int n = self->lb.n_joints, nf = self->lb.n_feet;
    const int off[7] = {rt_sw_q(n), rt_sw_v(n), rt_sw_tau(n), rt_sw_quat(n), rt_sw_gyro(n), rt_sw_acc(n), rt_sw_feet(n)};
    const int len[7] = {n, n, n, 4, 3, 3, 6 * nf};
    for (int i = 0; i < 7; ++i) {
        if (!o[i]) continue;
        Py_buffer b;
        if (rtpy_get_f64(o[i], &b, len[i], 0, "set_state", names[i]) < 0) return NULL;
        memcpy(self->staging + off[i], b.buf, sizeof(double) * (size_t)len[i]);
        PyBuffer_Release(&b);
    }
    memcpy(rt_tbuf_back(&self->lb.state_in), self->staging, sizeof(double) * (size_t)self->lb.n_words);
    rt_tbuf_commit(&self->lb.state_in);
    Py_RETURN_NONE;
}

static PyObject *loopback_last_command(TransportObject *self, PyObject *unused) {
    if (atomic_load(&self->lb.command_out.writes) == 0) Py_RETURN_NONE;
    const double *w = rt_tbuf_read(&self->lb.command_out, NULL);
    const int n = self->lb.n_joints;
    PyObject *shape = Py_BuildValue("(i)", n);
    if (!shape) return NULL;
    Py_buffer out;
    PyObject *arr = rtpy_output(NULL, shape, &out, n, "last_command");
    Py_DECREF(shape);
    if (!arr) return NULL;
    memcpy(out.buf, w + 3, sizeof(double) * (size_t)n);
    PyBuffer_Release(&out);
    return Py_BuildValue("(LNii)", (long long)w[0], arr, (int)w[1], (int)w[2]);
}

static PyObject *loopback_get_silent(TransportObject *self, void *c) {
    return PyBool_FromLong(atomic_load(&self->lb.silent));
}
static int loopback_set_silent(TransportObject *self, PyObject *value, void *c) {
    int t = PyObject_IsTrue(value);
    if (t < 0) return -1;
    atomic_store(&self->lb.silent, t);
    return 0;
}
static PyObject *transport_n_joints(TransportObject *self, void *c) { return PyLong_FromLong(self->tr.n_joints); }
static PyObject *transport_n_feet(TransportObject *self, void *c) { return PyLong_FromLong(self->tr.n_feet); }

static PyMethodDef loopback_methods[] = {
    {"set_state", (PyCFunction)(void (*)(void))loopback_set_state, METH_FASTCALL | METH_KEYWORDS,
     "set_state(q=None, v=None, tau_measured=None, imu_orientation_xyzw=None, imu_angular_velocity=None,\n"
     "imu_linear_acceleration=None, foot_wrench=None): the state the emulated robot reports from now on\n"
     "(fields not given keep their value)."},
    {"last_command", (PyCFunction)loopback_last_command, METH_NOARGS,
     "last_command() -> (tick, tau, loop_state, reason) of the newest command, or None before any."},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef loopback_getset[] = {
    {"silent", (getter)loopback_get_silent, (setter)loopback_set_silent, "True: the robot stops sending states", NULL},
    {"n_joints", (getter)transport_n_joints, NULL, NULL, NULL},
    {"n_feet", (getter)transport_n_feet, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LoopbackType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.LoopbackTransport",
    .tp_basicsize = sizeof(TransportObject),
    .tp_dealloc = (destructor)transport_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "LoopbackTransport(n_joints, n_feet, dt_s=0.001): the robot emulated in-process (see rt/README.md).",
    .tp_methods = loopback_methods,
    .tp_getset = loopback_getset,
    .tp_init = (initproc)loopback_init,
    .tp_new = PyType_GenericNew,
};

static int shm_init(TransportObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"name", "n_joints", "n_feet", NULL};
    const char *name;
    int n, nf;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sii:ShmTransport", kwlist, &name, &n, &nf)) return -1;
    if (self->shm) {
        PyErr_SetString(rtpy_RealTimeError, "ShmTransport is already open");
        return -1;
    }
    char err[512] = "";
    self->kind = 1;
    self->shm = rt_shm_open(name, n, nf, err, sizeof(err));
    if (!self->shm) {
        PyErr_SetString(rtpy_RealTimeError, err);
        return -1;
    }
    rt_shm_transport(self->shm, &self->tr);
    self->name = PyUnicode_FromString(name);
    return self->name ? 0 : -1;
}

static PyObject *shm_close(TransportObject *self, PyObject *unused) {
    if (self->in_use) {
        PyErr_SetString(rtpy_RealTimeError, "ShmTransport.close(): a Loop still uses this transport");
        return NULL;
    }
    if (self->shm) {
        rt_shm_close(self->shm);
        self->shm = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *shm_get_name(TransportObject *self, void *c) {
    if (!self->name) Py_RETURN_NONE;
    Py_INCREF(self->name);
    return self->name;
}
static PyObject *shm_get_open(TransportObject *self, void *c) { return PyBool_FromLong(self->shm != NULL); }

static PyMethodDef shm_methods[] = {
    {"close", (PyCFunction)shm_close, METH_NOARGS, "close(): unmap the segment (it stays for the robot side)."},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef shm_getset[] = {
    {"name", (getter)shm_get_name, NULL, "segment name", NULL},
    {"is_open", (getter)shm_get_open, NULL, NULL, NULL},
    {"n_joints", (getter)transport_n_joints, NULL, NULL, NULL},
    {"n_feet", (getter)transport_n_feet, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
static PyTypeObject ShmType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.ShmTransport",
    .tp_basicsize = sizeof(TransportObject),
    .tp_dealloc = (destructor)transport_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ShmTransport(name, n_joints, n_feet): controller side of the shared-memory joint bus.",
    .tp_methods = shm_methods,
    .tp_getset = shm_getset,
    .tp_init = (initproc)shm_init,
    .tp_new = PyType_GenericNew,
};

/* ---- loop ------------------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    rt_loop *L;
    TransportObject *transport;
    PyObject *shape_snapshot;
} LoopObject;

static void loop_release(LoopObject *self) {
    if (self->L) {
        Py_BEGIN_ALLOW_THREADS
        rt_loop_destroy(self->L);
        Py_END_ALLOW_THREADS
        self->L = NULL;
    }
    if (self->transport) {
        self->transport->in_use = 0;
        Py_CLEAR(self->transport);
    }
}

static void loop_dealloc(LoopObject *self) {
    loop_release(self);
    Py_XDECREF(self->shape_snapshot);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int get_vec(PyObject *obj, double *dst, int n, const char *what) {
    Py_buffer b;
    if (rtpy_get_f64(obj, &b, n, 0, "Loop", what) < 0) return -1;
    memcpy(dst, b.buf, sizeof(double) * (size_t)n);
    PyBuffer_Release(&b);
    return 0;
}

static int loop_init(LoopObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"model", "transport", "damping_kd", "effort_limit", "lower_limit", "upper_limit",
                             "contact_frames", "rate_hz", "lockstep", "stale_timeout_s", "silent_ticks",
                             "lockstep_timeout_s", "joint_limit_margin", "contact_reference", "rt_priority", "cpu",
                             "lock_memory", "sync_period_ticks", NULL};
    PyObject *model, *transport, *kd, *effort, *lower, *upper, *contacts;
    rt_loop_config cfg = {1000.0, 0, 0.05, 20, 1.0, 0.0, RT_LOCAL, 80, -1, 1, 0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOO|dpdiddiiipi:Loop", kwlist, &model, &transport, &kd, &effort,
                                     &lower, &upper, &contacts, &cfg.rate_hz, &cfg.lockstep, &cfg.stale_timeout_s,
                                     &cfg.silent_ticks, &cfg.lockstep_timeout_s, &cfg.joint_limit_margin,
                                     &cfg.contact_reference, &cfg.rt_priority, &cfg.cpu, &cfg.lock_memory,
                                     &cfg.sync_period_ticks))
        return -1;
    if (self->L) {
        PyErr_SetString(rtpy_RealTimeError, "Loop is already initialised");
        return -1;
    }
    if (!PyObject_TypeCheck(model, &rtpy_ModelType) || !((ModelObject *)model)->m) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: model must be a built optimus_control.rt.Dynamics");
        return -1;
    }
    if (!PyObject_TypeCheck(transport, &LoopbackType) && !PyObject_TypeCheck(transport, &ShmType)) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: transport must be a LoopbackTransport or a ShmTransport");
        return -1;
    }
    TransportObject *tr = (TransportObject *)transport;
    if ((tr->kind == 1 && !tr->shm) || (tr->kind == 0 && !tr->staging)) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: the transport is closed or not initialised");
        return -1;
    }
    if (tr->in_use) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: the transport is already used by another Loop");
        return -1;
    }
    if (cfg.contact_reference != RT_LOCAL && cfg.contact_reference != RT_LOCAL_WORLD_ALIGNED) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: contact_reference must be LOCAL or LOCAL_WORLD_ALIGNED");
        return -1;
    }
    rt_model *m = ((ModelObject *)model)->m;
    const int n = tr->tr.n_joints;
    PyObject *ids = PySequence_Fast(contacts, "Loop: contact_frames must be a sequence of frame ids");
    if (!ids) return -1;
    const Py_ssize_t nc = PySequence_Fast_GET_SIZE(ids);
    int *cf = PyMem_Calloc((size_t)nc + 1, sizeof(int));
    double *arrs = PyMem_Calloc(4 * (size_t)n + 1, sizeof(double));
    int rc = -1;
    if (!cf || !arrs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nc; ++i) {
        long v;
        if (rtpy_get_int(PySequence_Fast_GET_ITEM(ids, i), 0, m->nframes - 1, "Loop", "contact frame id", &v) < 0)
            goto done;
        cf[i] = (int)v;
    }
    if (get_vec(kd, arrs, n, "damping_kd") < 0 || get_vec(effort, arrs + n, n, "effort_limit") < 0 ||
        get_vec(lower, arrs + 2 * n, n, "lower_limit") < 0 || get_vec(upper, arrs + 3 * n, n, "upper_limit") < 0)
        goto done;
    char err[256] = "";
    self->L = rt_loop_create(m, &tr->tr, &cfg, arrs, arrs + n, arrs + 2 * n, arrs + 3 * n, cf, (int)nc, err,
                             sizeof(err));
    if (!self->L) {
        PyErr_Format(rtpy_RealTimeError, "Loop: %s", err);
        goto done;
    }
    self->shape_snapshot = Py_BuildValue("(i)", self->L->snapshot_words);
    if (!self->shape_snapshot) goto done;
    Py_INCREF(transport);
    self->transport = tr;
    tr->in_use = 1;
    rc = 0;
done:
    Py_DECREF(ids);
    PyMem_Free(cf);
    PyMem_Free(arrs);
    return rc;
}

static int loop_ready(LoopObject *self) {
    if (!self->L) {
        PyErr_SetString(rtpy_RealTimeError, "Loop is closed");
        return 0;
    }
    return 1;
}

static PyObject *loop_start(LoopObject *self, PyObject *unused) {
    if (!loop_ready(self)) return NULL;
    if (self->L->thread_alive) {
        PyErr_SetString(rtpy_RealTimeError, "Loop.start(): the loop is already running");
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rt_loop_start(self->L);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        PyErr_Format(rtpy_RealTimeError, "Loop.start(): cannot create the loop thread: %s", strerror(rc));
        return NULL;
    }
    return Py_BuildValue("{s:i,s:i,s:i}", "sched_fifo", self->L->fifo_err, "mlockall", self->L->mlock_err,
                         "affinity", self->L->affinity_err);
}

static PyObject *loop_stop(LoopObject *self, PyObject *unused) {
    if (!loop_ready(self)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rt_loop_stop(self->L);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *loop_close(LoopObject *self, PyObject *unused) {
    loop_release(self);
    Py_RETURN_NONE;
}

static PyObject *loop_tick_once(LoopObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"timeout_s"};
    PyObject *o[1];
    if (rtpy_parse_args("tick_once", args, nargs, kwnames, names, 1, 0, o) < 0) return NULL;
    if (!loop_ready(self)) return NULL;
    double timeout = o[0] ? PyFloat_AsDouble(o[0]) : 1.0;
    if (PyErr_Occurred()) return NULL;
    if (self->L->thread_alive || !self->L->cfg.lockstep) {
        PyErr_SetString(rtpy_RealTimeError,
                        "Loop.tick_once(): only for a lockstep loop that is not started (the thread ticks otherwise)");
        return NULL;
    }
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = rt_loop_tick_once(self->L, (int64_t)(timeout * 1e9));
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(r == 1);
}

static PyObject *loop_wait_update(LoopObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"seen_seq", "timeout_s"};
    PyObject *o[2];
    if (rtpy_parse_args("wait_update", args, nargs, kwnames, names, 2, 2, o) < 0) return NULL;
    if (!loop_ready(self)) return NULL;
    const unsigned long seen = PyLong_AsUnsignedLongMask(o[0]);
    const double timeout = PyFloat_AsDouble(o[1]);
    if (PyErr_Occurred()) return NULL;
    if (self->L->cfg.sync_period_ticks <= 0) {
        PyErr_SetString(rtpy_RealTimeError, "Loop.wait_update(): the loop was configured without sync_period_ticks");
        return NULL;
    }
    uint32_t seq;
    Py_BEGIN_ALLOW_THREADS
    seq = rt_loop_wait_update(self->L, (uint32_t)seen, timeout > 0 ? (int64_t)(timeout * 1e9) : 0);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLong(seq);
}

static PyObject *loop_mark_processed(LoopObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"tick"};
    PyObject *o[1];
    if (rtpy_parse_args("mark_processed", args, nargs, kwnames, names, 1, 1, o) < 0) return NULL;
    if (!loop_ready(self)) return NULL;
    const long long tick = PyLong_AsLongLong(o[0]);
    if (PyErr_Occurred()) return NULL;
    rt_loop_mark_processed(self->L, (int64_t)tick);
    Py_RETURN_NONE;
}

static PyObject *loop_set_references(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames) {
    static const char *const names[] = {"qdd", "q", "v", "kp", "kd", "contact_wrenches", "contacts_active",
                                        "base_pose", "base_twist"};
    PyObject *o[9];
    if (rtpy_parse_args("set_references", args, nargs, kwnames, names, 9, 0, o) < 0) return NULL;
    if (!loop_ready(self)) return NULL;
    rt_loop *L = self->L;
    const rt_ref_layout *R = &L->R;
    const int off[9] = {R->qdd, R->q, R->v, R->kp, R->kd, R->f, R->active, R->base_q, R->base_v};
    const int len[9] = {L->model->nv, L->n, L->n, L->n, L->n, 6 * L->nc, L->nc, 7, 6};
    int ctrl = 0, base = 0;
    /* validate everything before touching the staging area: a bad call changes nothing */
    Py_buffer b[9];
    int got[9] = {0};
    for (int i = 0; i < 9; ++i) {
        if (!o[i]) continue;
        if ((i == 7 || i == 8) && !L->has_ff) {
            PyErr_Format(rtpy_RealTimeError, "set_references(): %s given but the model has no free-flyer base", names[i]);
            goto fail;
        }
        if (rtpy_get_f64(o[i], &b[i], len[i], 0, "set_references", names[i]) < 0) goto fail;
        got[i] = 1;
    }
    for (int i = 0; i < 9; ++i) {
        if (!got[i]) continue;
        memcpy(L->staging + off[i], b[i].buf, sizeof(double) * (size_t)len[i]);
        PyBuffer_Release(&b[i]);
        if (i >= 7) base = 1;
        else ctrl = 1;
    }
    if (!L->has_ff) base = 1;
    rt_loop_publish_refs(L, ctrl, base);
    Py_RETURN_NONE;
fail:
    for (int i = 0; i < 9; ++i)
        if (got[i]) PyBuffer_Release(&b[i]);
    return NULL;
}

/* snapshot() and update_snapshot(): the latest write of one of the loop's snapshot buffers, into `out`. */
static PyObject *read_snapshot(LoopObject *self, const char *fname, int update, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"out"};
    PyObject *o[1];
    if (rtpy_parse_args(fname, args, nargs, kwnames, names, 1, 0, o) < 0) return NULL;
    if (!loop_ready(self)) return NULL;
    Py_buffer out;
    PyObject *res = rtpy_output(o[0], self->shape_snapshot, &out, self->L->snapshot_words, fname);
    if (!res) return NULL;
    const double *s = rt_tbuf_read(update ? &self->L->update_snapshot : &self->L->snapshot, NULL);
    memcpy(out.buf, s, sizeof(double) * (size_t)self->L->snapshot_words);
    PyBuffer_Release(&out);
    return res;
}

static PyObject *loop_snapshot(LoopObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    return read_snapshot(self, "snapshot", 0, args, nargs, kwnames);
}

static PyObject *loop_update_snapshot(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames) {
    return read_snapshot(self, "update_snapshot", 1, args, nargs, kwnames);
}

static PyObject *loop_status(LoopObject *self, PyObject *unused) {
    if (!loop_ready(self)) return NULL;
    rt_loop *L = self->L;
    const int64_t age = atomic_load(&L->ctrl_age_ns);
    return Py_BuildValue("(iiidId)", atomic_load(&L->state), atomic_load(&L->reason), atomic_load(&L->reason_index),
                         rt_loop_reason_value(L), (unsigned int)atomic_load(&L->fault_flags),
                         age == INT64_MAX ? Py_HUGE_VAL : (double)age * 1e-9);
}

static PyObject *hist_dict(rt_hist *h) {
    const uint64_t count = atomic_load(&h->count);
    const double mean = count ? (double)atomic_load(&h->sum_ns) / (double)count / 1000.0 : 0.0;
    return Py_BuildValue("{s:K,s:d,s:d,s:d,s:d,s:d}", "count", (unsigned long long)count, "p50_us",
                         rt_hist_quantile_us(h, 0.5), "p99_us", rt_hist_quantile_us(h, 0.99), "p999_us",
                         rt_hist_quantile_us(h, 0.999), "max_us", (double)atomic_load(&h->max_ns) / 1000.0, "mean_us",
                         mean);
}

static PyObject *loop_stats(LoopObject *self, PyObject *unused) {
    if (!loop_ready(self)) return NULL;
    rt_loop *L = self->L;
    PyObject *lat = hist_dict(&L->latency), *comp = hist_dict(&L->compute);
    if (!lat || !comp) {
        Py_XDECREF(lat);
        Py_XDECREF(comp);
        return NULL;
    }
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:d,s:K,s:N,s:N}", "ticks",
                         (unsigned long long)atomic_load(&L->ticks), "deadline_misses",
                         (unsigned long long)atomic_load(&L->misses), "skipped_periods",
                         (unsigned long long)atomic_load(&L->skipped), "states_received",
                         (unsigned long long)atomic_load(&L->states), "ticks_without_state",
                         (unsigned long long)atomic_load(&L->silent_total), "sync_waits",
                         (unsigned long long)atomic_load(&L->sync_waits), "sync_wait_s",
                         (double)atomic_load(&L->sync_wait_ns) * 1e-9, "sync_timeouts",
                         (unsigned long long)atomic_load(&L->sync_timeouts), "wakeup_latency", lat, "compute", comp);
}

static PyObject *loop_reset(LoopObject *self, PyObject *unused) {
    if (!loop_ready(self)) return NULL;
    rt_loop_request_reset(self->L);
    Py_RETURN_NONE;
}

static PyObject *loop_layout(LoopObject *self, PyObject *unused) {
    if (!loop_ready(self)) return NULL;
    const rt_ref_layout *R = &self->L->R;
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "qdd", R->qdd, "q", R->q, "v",
                         R->v, "kp", R->kp, "kd", R->kd, "contact_wrenches", R->f, "contacts_active", R->active,
                         "base_pose", R->base_q, "base_twist", R->base_v, "control_stamp", R->ctrl_stamp,
                         "base_stamp", R->base_stamp, "control_seq", R->ctrl_seq, "base_seq", R->base_seq,
                         "reference_words", R->count, "snapshot_words", self->L->snapshot_words);
}

static PyObject *loop_running(LoopObject *self, void *c) {
    return PyBool_FromLong(self->L && self->L->thread_alive);
}

static PyMethodDef loop_methods[] = {
    {"start", (PyCFunction)loop_start, METH_NOARGS, "start() -> dict of real-time setup results (errno, 0 ok, -1 not asked)"},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, "stop(): join the thread, send a zero command marked STOPPED"},
    {"close", (PyCFunction)loop_close, METH_NOARGS, "close(): stop and free the loop, release the transport"},
    {"tick_once", (PyCFunction)(void (*)(void))loop_tick_once, METH_FASTCALL | METH_KEYWORDS,
     "tick_once(timeout_s=1.0) -> bool: lockstep tick in the caller's thread (GIL released)"},
    {"wait_update", (PyCFunction)(void (*)(void))loop_wait_update, METH_FASTCALL | METH_KEYWORDS,
     "wait_update(seen_seq, timeout_s) -> int: the sync-state counter once it differs from seen_seq or at the\n"
     "timeout (GIL released)"},
    {"update_snapshot", (PyCFunction)(void (*)(void))loop_update_snapshot, METH_FASTCALL | METH_KEYWORDS,
     "update_snapshot(out=None) -> the snapshot of the latest sync state (layout of snapshot())"},
    {"mark_processed", (PyCFunction)(void (*)(void))loop_mark_processed, METH_FASTCALL | METH_KEYWORDS,
     "mark_processed(tick): Python finished the sync state `tick` (its references are set)"},
    {"set_references", (PyCFunction)(void (*)(void))loop_set_references, METH_FASTCALL | METH_KEYWORDS,
     "set_references(qdd=None, q=None, v=None, kp=None, kd=None, contact_wrenches=None, contacts_active=None,\n"
     "base_pose=None, base_twist=None)"},
    {"snapshot", (PyCFunction)(void (*)(void))loop_snapshot, METH_FASTCALL | METH_KEYWORDS,
     "snapshot(out=None) -> the loop's latest [tick, state words, tau command, loop state, reference age]"},
    {"status", (PyCFunction)loop_status, METH_NOARGS,
     "status() -> (state, reason, reason_index, reason_value, fault_flags, reference_age_s)"},
    {"stats", (PyCFunction)loop_stats, METH_NOARGS, "stats() -> dict of tick counters and latency histograms"},
    {"reset", (PyCFunction)loop_reset, METH_NOARGS, "reset(): leave DAMPING/FAULT at the next tick (to INIT)"},
    {"layout", (PyCFunction)loop_layout, METH_NOARGS, "layout() -> offsets of the reference words"},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef loop_getset[] = {
    {"running", (getter)loop_running, NULL, "True while the loop thread runs", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
static PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.LoopCore",
    .tp_basicsize = sizeof(LoopObject),
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "LoopCore(model, transport, damping_kd, effort_limit, lower_limit, upper_limit, contact_frames, ...):\n"
              "the C loop; use optimus_control.rt.Loop.",
    .tp_methods = loop_methods,
    .tp_getset = loop_getset,
    .tp_init = (initproc)loop_init,
    .tp_new = PyType_GenericNew,
};

/* ---- triple buffer, for the channel tests ------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    rt_tbuf t;
    int ok;
} TBufObject;

static void tbuf_dealloc(TBufObject *self) {
    if (self->ok) rt_tbuf_free(&self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}
static int tbuf_init(TBufObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n", NULL};
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n:TripleBuffer", kwlist, &n)) return -1;
    if (n < 1 || self->ok) {
        PyErr_SetString(rtpy_RealTimeError, "TripleBuffer(n): n must be >= 1 (and init once)");
        return -1;
    }
    if (rt_tbuf_init(&self->t, (size_t)n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->ok = 1;
    return 0;
}
/* write/read release the GIL around the copy so Python threads really overlap in tests. Exactly one
 * thread may write and one may read (the channel's contract). */
static PyObject *tbuf_write(TBufObject *self, PyObject *arg) {
    Py_buffer b;
    if (rtpy_get_f64(arg, &b, (Py_ssize_t)self->t.n, 0, "TripleBuffer.write", "values") < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    memcpy(rt_tbuf_back(&self->t), b.buf, sizeof(double) * self->t.n);
    rt_tbuf_commit(&self->t);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}
static PyObject *tbuf_read(TBufObject *self, PyObject *arg) {
    Py_buffer b;
    if (rtpy_get_f64(arg, &b, (Py_ssize_t)self->t.n, 1, "TripleBuffer.read", "out") < 0) return NULL;
    int fresh;
    Py_BEGIN_ALLOW_THREADS
    const double *s = rt_tbuf_read(&self->t, &fresh);
    memcpy(b.buf, s, sizeof(double) * self->t.n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyBool_FromLong(fresh);
}
static PyMethodDef tbuf_methods[] = {
    {"write", (PyCFunction)tbuf_write, METH_O, "write(values): publish n doubles (single writer)"},
    {"read", (PyCFunction)tbuf_read, METH_O, "read(out) -> fresh: copy the latest write into out (single reader)"},
    {NULL, NULL, 0, NULL},
};
static PyTypeObject TBufType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.TripleBuffer",
    .tp_basicsize = sizeof(TBufObject),
    .tp_dealloc = (destructor)tbuf_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TripleBuffer(n): the loop's lock-free reference channel, exposed for tests.",
    .tp_methods = tbuf_methods,
    .tp_init = (initproc)tbuf_init,
    .tp_new = PyType_GenericNew,
};

typedef struct {
    rt_tbuf *t;
    long iterations, written;
    _Atomic int done;
    _Atomic long fresh_seen;
    long reads, fresh, torn, regressions;
} stress_ctx;

/* Writes at least `iterations` times, and on until the reader has taken 1000 fresh writes (threads on a
 * loaded machine may barely overlap at first), for at most 5 s. */
static void *stress_writer(void *arg) {
    stress_ctx *c = arg;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long i = 0;
    for (;;) {
        ++i;
        double *w = rt_tbuf_back(c->t);
        for (size_t k = 0; k < c->t->n; ++k) w[k] = (double)i;
        rt_tbuf_commit(c->t);
        if (i >= c->iterations && (i & 1023) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (atomic_load(&c->fresh_seen) >= 1000 || now.tv_sec - t0.tv_sec >= 5) break;
        }
    }
    c->written = i;
    atomic_store(&c->done, 1);
    return NULL;
}
static void *stress_reader(void *arg) {
    stress_ctx *c = arg;
    double last = 0.0;
    for (;;) {
        const int finished = atomic_load(&c->done);
        int fresh;
        const double *s = rt_tbuf_read(c->t, &fresh);
        c->reads++;
        c->fresh += fresh;
        if (fresh) atomic_store_explicit(&c->fresh_seen, c->fresh, memory_order_relaxed);
        for (size_t k = 1; k < c->t->n; ++k)
            if (s[k] != s[0]) {
                c->torn++;
                break;
            }
        if (s[0] < last) c->regressions++;
        last = s[0];
        if (finished && !fresh) break;
    }
    return NULL;
}

static PyObject *tbuf_stress(PyObject *mod, PyObject *args) {
    Py_ssize_t n;
    long iterations;
    if (!PyArg_ParseTuple(args, "nl:triple_buffer_stress", &n, &iterations)) return NULL;
    if (n < 1 || iterations < 1) {
        PyErr_SetString(rtpy_RealTimeError, "triple_buffer_stress(n, iterations): both must be >= 1");
        return NULL;
    }
    rt_tbuf t;
    if (rt_tbuf_init(&t, (size_t)n) < 0) return PyErr_NoMemory();
    stress_ctx c = {&t, iterations, 0, 0, 0, 0, 0, 0, 0};
    pthread_t w, r;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = pthread_create(&r, NULL, stress_reader, &c) == 0;
    if (ok) {
        if (pthread_create(&w, NULL, stress_writer, &c) == 0) {
            pthread_join(w, NULL);
        } else {
            atomic_store(&c.done, 1);
        }
        pthread_join(r, NULL);
    }
    Py_END_ALLOW_THREADS
    double final = rt_tbuf_read(&t, NULL)[0];
    rt_tbuf_free(&t);
    if (!ok) return PyErr_Format(rtpy_RealTimeError, "triple_buffer_stress: cannot create threads");
    return Py_BuildValue("{s:l,s:l,s:l,s:l,s:l,s:d}", "writes", c.written, "reads", c.reads, "fresh_reads", c.fresh,
                         "torn_reads", c.torn, "regressions", c.regressions, "final_value", final);
}

static PyMethodDef loop_module_methods[] = {
    {"triple_buffer_stress", tbuf_stress, METH_VARARGS,
     "triple_buffer_stress(n, iterations) -> counts: a native writer publishes arrays of n copies of a counter\n"
     "while a native reader checks every read (torn_reads and regressions must be 0)."},
    {NULL, NULL, 0, NULL},
};

int rtpy_init_loop(PyObject *module) {
    PyTypeObject *types[] = {&LoopbackType, &ShmType, &LoopType, &TBufType};
    const char *names[] = {"LoopbackTransport", "ShmTransport", "LoopCore", "TripleBuffer"};
    for (int i = 0; i < 4; ++i) {
        if (PyType_Ready(types[i]) < 0) return -1;
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) return -1;
    }
    if (PyModule_AddFunctions(module, loop_module_methods) < 0) return -1;
    static const struct { const char *name; int value; } consts[] = {
        {"INIT", RT_INIT}, {"RUNNING", RT_RUNNING}, {"DAMPING", RT_DAMPING}, {"FAULT", RT_FAULT},
        {"STOPPED", RT_STOPPED}, {"WORLD", RT_WORLD}, {"LOCAL", RT_LOCAL},
        {"LOCAL_WORLD_ALIGNED", RT_LOCAL_WORLD_ALIGNED},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); ++i)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].value) < 0) return -1;
    return 0;
}
