/* _rtcore.LoopCore (wrapped by optimus_control.rt.Loop) and the loop's constants. */
#include <string.h>

#include "py_dynamics.h"
#include "py_transport.h"
#include "rt_loop.h"
#include "rt_tbuf.h"

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
                             "lock_memory", "sync_period_ticks", "motor_pd", "state_triggered", NULL};
    PyObject *model, *transport, *kd, *effort, *lower, *upper, *contacts;
    rt_loop_config cfg = {1000.0, 0, 0.05, 20, 1.0, 0.0, RT_LOCAL, 80, -1, 1, 0, 0, 0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOO|dpdiddiiipipp:Loop", kwlist, &model, &transport, &kd, &effort,
                                     &lower, &upper, &contacts, &cfg.rate_hz, &cfg.lockstep, &cfg.stale_timeout_s,
                                     &cfg.silent_ticks, &cfg.lockstep_timeout_s, &cfg.joint_limit_margin,
                                     &cfg.contact_reference, &cfg.rt_priority, &cfg.cpu, &cfg.lock_memory,
                                     &cfg.sync_period_ticks, &cfg.motor_pd, &cfg.state_triggered))
        return -1;
    if (self->L) {
        PyErr_SetString(rtpy_RealTimeError, "Loop is already initialised");
        return -1;
    }
    if (!PyObject_TypeCheck(model, &rtpy_ModelType) || !((ModelObject *)model)->m) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: model must be a built optimus_control.rt.Dynamics");
        return -1;
    }
    if (!PyObject_TypeCheck(transport, &rtpy_LoopbackType) && !PyObject_TypeCheck(transport, &rtpy_ShmType) &&
        !PyObject_TypeCheck(transport, &rtpy_CanType)) {
        PyErr_SetString(rtpy_RealTimeError, "Loop: transport must be a LoopbackTransport, ShmTransport or CanTransport");
        return -1;
    }
    TransportObject *tr = (TransportObject *)transport;
    if (!rtpy_transport_open(tr)) {
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

int rtpy_init_loop(PyObject *module) {
    if (PyType_Ready(&LoopType) < 0) return -1;
    Py_INCREF(&LoopType);
    if (PyModule_AddObject(module, "LoopCore", (PyObject *)&LoopType) < 0) return -1;
    static const struct { const char *name; int value; } consts[] = {
        {"INIT", RT_INIT}, {"RUNNING", RT_RUNNING}, {"DAMPING", RT_DAMPING}, {"FAULT", RT_FAULT},
        {"STOPPED", RT_STOPPED}, {"WORLD", RT_WORLD}, {"LOCAL", RT_LOCAL},
        {"LOCAL_WORLD_ALIGNED", RT_LOCAL_WORLD_ALIGNED},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); ++i)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].value) < 0) return -1;
    return 0;
}
