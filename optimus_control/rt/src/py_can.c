/* _rtcore.CanTransport and the MIT / SLCAN codecs exposed for tests and the hardware tools. */
#include <string.h>

#include "py_transport.h"
#include "rt_loop.h"

/* ---- codecs ------------------------------------------------------------------------------------------ */
int rtpy_parse_range(PyObject *obj, int damiao, rt_mit_range *r) {
    PyObject *seq = PySequence_Fast(obj, "range must be a sequence of 10 numbers "
                                         "(p_min, p_max, v_min, v_max, kp_min, kp_max, kd_min, kd_max, t_min, t_max)");
    if (!seq) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 10) {
        PyErr_Format(rtpy_RealTimeError, "range must have 10 numbers, got %zd", PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return -1;
    }
    double v[10];
    for (int i = 0; i < 10; ++i) {
        v[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (v[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    *r = (rt_mit_range){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], damiao ? 1 : 0};
    if (rt_mit_range_valid(r) < 0) {
        PyErr_SetString(rtpy_RealTimeError, "range: every max must be finite and greater than its min");
        return -1;
    }
    return 0;
}

static PyObject *py_mit_pack(PyObject *m, PyObject *args) {
    PyObject *range;
    rt_mit_cmd c;
    if (!PyArg_ParseTuple(args, "Oddddd:mit_pack", &range, &c.p, &c.v, &c.kp, &c.kd, &c.t)) return NULL;
    rt_mit_range r;
    if (rtpy_parse_range(range, 0, &r) < 0) return NULL;
    uint8_t out[8];
    const unsigned mask = rt_mit_pack(&r, &c, out);
    return Py_BuildValue("(y#I)", (const char *)out, (Py_ssize_t)8, mask);
}

static PyObject *py_mit_unpack(PyObject *m, PyObject *args) {
    PyObject *range;
    Py_buffer data;
    int damiao = 0;
    if (!PyArg_ParseTuple(args, "Oy*|p:mit_unpack", &range, &data, &damiao)) return NULL;
    rt_mit_range r;
    rt_mit_reply rep;
    PyObject *res = NULL;
    if (rtpy_parse_range(range, damiao, &r) < 0) goto done;
    if (rt_mit_unpack(&r, data.buf, (int)data.len, &rep) < 0) {
        PyErr_Format(rtpy_RealTimeError, "mit_unpack: a %s reply has %d bytes, got %zd", damiao ? "Damiao" : "MIT",
                     damiao ? 8 : 6, data.len);
        goto done;
    }
    res = Py_BuildValue("{s:i,s:d,s:d,s:d,s:i,s:i,s:i}", "id", rep.id, "p", rep.p, "v", rep.v, "t", rep.t, "error",
                        rep.error, "t_mos", rep.t_mos, "t_rotor", rep.t_rotor);
done:
    PyBuffer_Release(&data);
    return res;
}

static PyObject *py_mit_special(PyObject *m, PyObject *arg) {
    const long kind = PyLong_AsLong(arg);
    if (kind == -1 && PyErr_Occurred()) return NULL;
    if (kind != RT_MIT_ENTER && kind != RT_MIT_EXIT && kind != RT_MIT_ZERO) {
        PyErr_Format(rtpy_RealTimeError, "mit_special: kind must be 0xFC, 0xFD or 0xFE, got %ld", kind);
        return NULL;
    }
    uint8_t out[8];
    rt_mit_special((int)kind, out);
    return PyBytes_FromStringAndSize((const char *)out, 8);
}

static PyObject *py_mit_special_kind(PyObject *m, PyObject *arg) {
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    const int k = rt_mit_special_kind(data.buf, (int)data.len);
    PyBuffer_Release(&data);
    return PyLong_FromLong(k);
}

static PyObject *py_mit_models(PyObject *m, PyObject *unused) {
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    for (int i = 0; i < rt_mit_model_count; ++i) {
        const rt_mit_range *r = &rt_mit_models[i].range;
        PyObject *item = Py_BuildValue("(s(dddddddddd)s)", rt_mit_models[i].name, r->p_min, r->p_max, r->v_min,
                                       r->v_max, r->kp_min, r->kp_max, r->kd_min, r->kd_max, r->t_min, r->t_max,
                                       rt_mit_models[i].source);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *py_slcan_encode(PyObject *m, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"id", "data", "ext", "rtr", "dlc", NULL};
    unsigned int id;
    Py_buffer data = {0};
    int ext = 0, rtr = 0, dlc = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "I|y*ppi:slcan_encode", kwlist, &id, &data, &ext, &rtr, &dlc))
        return NULL;
    PyObject *res = NULL;
    if (data.buf && data.len > 8) {
        PyErr_SetString(rtpy_RealTimeError, "slcan_encode: at most 8 data bytes");
        goto done;
    }
    if (id > (ext ? 0x1FFFFFFFu : 0x7FFu)) {
        PyErr_Format(rtpy_RealTimeError, "slcan_encode: id 0x%X does not fit a %s id", id, ext ? "29-bit" : "11-bit");
        goto done;
    }
    rt_can_frame f;
    memset(&f, 0, sizeof(f));
    f.id = id;
    f.ext = (uint8_t)ext;
    f.rtr = (uint8_t)rtr;
    f.len = (uint8_t)(dlc >= 0 ? dlc : (data.buf ? data.len : 0));
    if (data.buf) memcpy(f.data, data.buf, (size_t)data.len);
    char out[40];
    const int n = rt_slcan_encode(&f, out);
    res = PyBytes_FromStringAndSize(out, n);
done:
    if (data.buf) PyBuffer_Release(&data);
    return res;
}

static PyObject *py_slcan_bitrate_code(PyObject *m, PyObject *arg) {
    const long b = PyLong_AsLong(arg);
    if (b == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(rt_slcan_bitrate_code(b));
}

/* SlcanParser: the C line parser, fed from Python (tests, the emulator's reading side). */
typedef struct {
    PyObject_HEAD
    rt_slcan_parser p;
} SlcanParserObject;

static const char *const kind_names[] = {"", "frame", "ack", "tx_ack", "error", "reply", "garbage"};

static void parser_event(void *ctx, int kind, const rt_can_frame *f, const char *line) {
    PyObject *list = ctx;
    PyObject *item;
    if (PyErr_Occurred()) return;
    if (kind == RT_SLCAN_FRAME)
        item = Py_BuildValue("(sIy#ii)", kind_names[kind], f->id, (const char *)f->data, (Py_ssize_t)(f->rtr ? 0 : f->len),
                             (int)f->ext, (int)f->rtr);
    else
        item = Py_BuildValue("(ss)", kind_names[kind], line);
    if (!item) return;
    PyList_Append(list, item);
    Py_DECREF(item);
}

static PyObject *parser_feed(SlcanParserObject *self, PyObject *arg) {
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *list = PyList_New(0);
    if (list) rt_slcan_feed(&self->p, data.buf, (int)data.len, parser_event, list);
    PyBuffer_Release(&data);
    if (list && PyErr_Occurred()) Py_CLEAR(list);
    return list;
}

static PyObject *parser_counts(SlcanParserObject *self, void *c) {
    const rt_slcan_parser *p = &self->p;
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K}", "frames", (unsigned long long)p->frames, "acks",
                         (unsigned long long)p->acks, "tx_acks", (unsigned long long)p->tx_acks, "errors",
                         (unsigned long long)p->errors, "replies", (unsigned long long)p->replies, "garbage",
                         (unsigned long long)p->garbage);
}

static int parser_init(SlcanParserObject *self, PyObject *args, PyObject *kwds) {
    rt_slcan_reset(&self->p);
    return 0;
}

static PyMethodDef parser_methods[] = {
    {"feed", (PyCFunction)parser_feed, METH_O,
     "feed(data) -> [events]: ('frame', id, data, ext, rtr) or (kind, line) for ack/tx_ack/error/reply/garbage"},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef parser_getset[] = {
    {"counts", (getter)parser_counts, NULL, "events seen so far, by kind", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
static PyTypeObject SlcanParserType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.SlcanParser",
    .tp_basicsize = sizeof(SlcanParserObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SlcanParser(): the SLCAN line parser of the CAN transport (split lines, garbage, \\a errors).",
    .tp_methods = parser_methods,
    .tp_getset = parser_getset,
    .tp_init = (initproc)parser_init,
    .tp_new = PyType_GenericNew,
};

/* ---- CanTransport ------------------------------------------------------------------------------------- */
static void can_dealloc(TransportObject *self) {
    if (self->can) rt_can_free(self->can); /* joins the bus threads */
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int can_init(TransportObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"buses", "joints", "n_feet", "bus_names", NULL};
    PyObject *buses, *joints, *names = NULL;
    int n_feet = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|iO:CanTransport", kwlist, &buses, &joints, &n_feet, &names))
        return -1;
    if (self->can) {
        PyErr_SetString(rtpy_RealTimeError, "CanTransport is already initialised");
        return -1;
    }
    PyObject *bs = PySequence_Fast(buses, "CanTransport: buses must be a list of (url, bitrate, rate_hz[, fault_after_missed_cycles])");
    if (!bs) return -1;
    PyObject *js = PySequence_Fast(joints, "CanTransport: joints must be a list of tuples");
    if (!js) {
        Py_DECREF(bs);
        return -1;
    }
    const Py_ssize_t nb = PySequence_Fast_GET_SIZE(bs), nj = PySequence_Fast_GET_SIZE(js);
    rt_can_bus_cfg *bc = PyMem_Calloc((size_t)nb + 1, sizeof(*bc));
    rt_can_joint_cfg *jc = PyMem_Calloc((size_t)nj + 1, sizeof(*jc));
    int rc = -1;
    if (!bc || !jc) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t b = 0; b < nb; ++b) {
        const char *url;
        bc[b].miss_limit = RT_CAN_MISS_LIMIT; /* optional 4th item: fault_after_missed_cycles */
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(bs, b), "sld|i:bus", &url, &bc[b].bitrate, &bc[b].rate_hz,
                              &bc[b].miss_limit))
            goto done;
        if (bc[b].miss_limit < 1) {
            PyErr_Format(PyExc_ValueError, "CanTransport: bus %zd: fault_after_missed_cycles %d must be >= 1", b,
                         bc[b].miss_limit);
            goto done;
        }
        snprintf(bc[b].url, sizeof(bc[b].url), "%s", url);
    }
    for (Py_ssize_t j = 0; j < nj; ++j) {
        rt_can_joint_cfg *J = &jc[j];
        PyObject *range;
        int damiao;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(js, j), "iiOpdddddd:joint", &J->bus, &J->motor_id, &range,
                              &damiao, &J->scale, &J->direction, &J->offset, &J->lower, &J->upper, &J->damping_kd))
            goto done;
        if (rtpy_parse_range(range, damiao, &J->range) < 0) goto done;
        J->joint = (int)j;
    }
    char err[256] = "";
    self->can = rt_can_create((int)nj, n_feet, bc, (int)nb, jc, err, sizeof(err));
    if (!self->can) {
        PyErr_Format(rtpy_RealTimeError, "CanTransport: %s", err);
        goto done;
    }
    self->tr = self->can->tr;
    if (names && names != Py_None) {
        self->name = PySequence_Tuple(names);
        if (!self->name) goto done;
    }
    rc = 0;
done:
    PyMem_Free(bc);
    PyMem_Free(jc);
    Py_DECREF(bs);
    Py_DECREF(js);
    return rc;
}

static int need(TransportObject *self, int started) {
    if (!self->can) {
        PyErr_SetString(rtpy_RealTimeError, "CanTransport is not initialised");
        return -1;
    }
    if (started && !self->can_started) {
        PyErr_SetString(rtpy_RealTimeError, "CanTransport is not started (call start())");
        return -1;
    }
    return 0;
}

static PyObject *can_start(TransportObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"rt_priority", "cpu", "open_timeout_s", NULL};
    int prio = 0, cpu = -1;
    double timeout = 1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iid:start", kwlist, &prio, &cpu, &timeout)) return NULL;
    if (need(self, 0) < 0) return NULL;
    if (self->can_started) {
        PyErr_SetString(rtpy_RealTimeError, "CanTransport is already started");
        return NULL;
    }
    char err[256] = "";
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = rt_can_start(self->can, prio, cpu, (int64_t)(timeout * 1e9), err, sizeof(err));
    Py_END_ALLOW_THREADS
    if (r < 0) {
        PyErr_Format(rtpy_RealTimeError, "CanTransport.start(): %s", err);
        return NULL;
    }
    self->can_started = 1;
    Py_RETURN_NONE;
}

static PyObject *can_stop(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    if (self->in_use) {
        PyErr_SetString(rtpy_RealTimeError, "CanTransport.stop(): a Loop still uses this transport (close it first)");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rt_can_stop(self->can);
    Py_END_ALLOW_THREADS
    self->can_started = 0;
    Py_RETURN_NONE;
}

static PyObject *can_set_mode(TransportObject *self, PyObject *arg) {
    long mode;
    if (need(self, 1) < 0 || rtpy_get_int(arg, RT_CAN_PASSIVE, RT_CAN_EXITING, "set_mode", "mode", &mode) < 0)
        return NULL;
    rt_can_set_mode(self->can, (int)mode);
    Py_RETURN_NONE;
}

static PyObject *can_select(TransportObject *self, PyObject *arg) {
    if (need(self, 0) < 0) return NULL;
    const int n = self->can->n_joints;
    PyObject *seq = PySequence_Fast(arg, "select(flags): a sequence of n_joints booleans");
    if (!seq) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(rtpy_RealTimeError, "select(): %zd flags given, the transport has %d joints",
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return NULL;
    }
    int flags[RT_CAN_MAX_MOTORS * 64];
    if (n > RT_CAN_MAX_MOTORS * 64) {
        Py_DECREF(seq);
        PyErr_SetString(rtpy_RealTimeError, "select(): too many joints");
        return NULL;
    }
    for (int j = 0; j < n; ++j) {
        const int t = PyObject_IsTrue(PySequence_Fast_GET_ITEM(seq, j));
        if (t < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        flags[j] = t;
    }
    Py_DECREF(seq);
    if (rt_can_select(self->can, flags) < 0) {
        PyErr_SetString(rtpy_RealTimeError, "select(): every bus must be PASSIVE (disable first)");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *can_modes(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    PyObject *list = PyList_New(self->can->n_buses);
    if (!list) return NULL;
    for (int b = 0; b < self->can->n_buses; ++b)
        PyList_SET_ITEM(list, b, PyLong_FromLong(atomic_load(&self->can->buses[b].mode)));
    return list;
}

static PyObject *can_set_manual(TransportObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "kp", "kd", "tau"};
    PyObject *o[5];
    if (need(self, 0) < 0 || rtpy_parse_args("set_manual", args, nargs, kwnames, names, 5, 5, o) < 0) return NULL;
    const int n = self->can->n_joints;
    Py_buffer b[5];
    int got = 0;
    for (; got < 5; ++got)
        if (rtpy_get_f64(o[got], &b[got], n, 0, "set_manual", names[got]) < 0) break;
    if (got == 5) rt_can_set_manual(self->can, b[0].buf, b[1].buf, b[2].buf, b[3].buf, b[4].buf);
    for (int i = 0; i < got; ++i) PyBuffer_Release(&b[i]);
    if (got < 5) return NULL;
    Py_RETURN_NONE;
}

static PyObject *can_use_loop(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    atomic_store(&self->can->source, RT_CAN_SOURCE_LOOP);
    Py_RETURN_NONE;
}

static PyObject *can_clear_fault(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    return PyBool_FromLong(rt_can_clear_fault(self->can) == 0);
}

static PyObject *can_fault(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    rt_can *c = self->can;
    return Py_BuildValue("(iiii)", atomic_load(&c->fault_kind), atomic_load(&c->fault_joint),
                         atomic_load(&c->fault_bus), atomic_load(&c->fault_flags));
}

static PyObject *can_fault_message(TransportObject *self, PyObject *unused) {
    static const char *kinds[] = {"", "no reply", "bus-off", "adapter gone", "motor error"};
    if (need(self, 0) < 0) return NULL;
    rt_can *c = self->can;
    const int kind = atomic_load(&c->fault_kind), joint = atomic_load(&c->fault_joint), bus = atomic_load(&c->fault_bus);
    if (kind <= 0 || kind > 4) return PyUnicode_FromString("");
    char no_reply[64]; /* the faulting bus's own limit */
    snprintf(no_reply, sizeof(no_reply), "no reply for %d cycles",
             bus >= 0 && bus < c->n_buses ? c->buses[bus].miss_limit : RT_CAN_MISS_LIMIT);
    const char *const kind_text[] = {kinds[0], no_reply, kinds[2], kinds[3], kinds[4]};
    PyObject *bname = NULL;
    if (self->name && bus >= 0 && bus < PyTuple_GET_SIZE(self->name)) bname = PyTuple_GET_ITEM(self->name, bus);
    if (kind == RT_CAN_FAULT_MOTOR && joint >= 0) {
        int code = 0;
        for (int b = 0; b < c->n_buses; ++b)
            for (int k = 0; k < c->buses[b].n; ++k)
                if (c->buses[b].joints[k] == joint) code = atomic_load(&c->buses[b].motor_error[k]);
        static const char *const names[] = {"over-voltage", "under-voltage", "over-current", "MOSFET over-temperature",
                                            "rotor over-temperature", "lost communication", "overload"};
        char text[96]; /* PyUnicode_FromFormat has no %X */
        snprintf(text, sizeof(text), "motor error 0x%X (%s)", code,
                 code >= 8 && code <= 14 ? names[code - 8] : "unknown code");
        if (bname)
            return PyUnicode_FromFormat("%s from motor %d (joint %d) on bus '%S'", text, c->joints[joint].motor_id,
                                        joint, bname);
        return PyUnicode_FromFormat("%s from motor %d (joint %d) on bus %d", text, c->joints[joint].motor_id, joint,
                                    bus);
    }
    if (joint >= 0) {
        if (bname) return PyUnicode_FromFormat("%s from motor %d (joint %d) on bus '%S'", kind_text[kind], c->joints[joint].motor_id, joint, bname);
        return PyUnicode_FromFormat("%s from motor %d (joint %d) on bus %d", kind_text[kind], c->joints[joint].motor_id, joint, bus);
    }
    if (bname) return PyUnicode_FromFormat("%s on bus '%S'", kind_text[kind], bname);
    return PyUnicode_FromFormat("%s on bus %d", kind_text[kind], bus);
}

static PyObject *can_monitor(TransportObject *self, PyObject *unused) {
    /* (q, v, tau) lists per joint from each bus's newest cycle with a reply, and each bus's cycle count */
    if (need(self, 0) < 0) return NULL;
    rt_can *c = self->can;
    const int n = c->n_joints;
    PyObject *q = PyList_New(n), *v = PyList_New(n), *t = PyList_New(n), *cyc = PyList_New(c->n_buses);
    if (!q || !v || !t || !cyc) goto fail;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        const double *s = rt_tbuf_read(&B->monitor_out, NULL);
        PyList_SET_ITEM(cyc, b, PyLong_FromLongLong((long long)s[0]));
        for (int k = 0; k < B->n; ++k) {
            const int j = B->joints[k];
            PyList_SET_ITEM(q, j, PyFloat_FromDouble(s[1 + k]));
            PyList_SET_ITEM(v, j, PyFloat_FromDouble(s[1 + B->n + k]));
            PyList_SET_ITEM(t, j, PyFloat_FromDouble(s[1 + 2 * B->n + k]));
        }
    }
    return Py_BuildValue("(NNNN)", q, v, t, cyc);
fail:
    Py_XDECREF(q);
    Py_XDECREF(v);
    Py_XDECREF(t);
    Py_XDECREF(cyc);
    return NULL;
}

static PyObject *can_motor_status(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    rt_can *c = self->can;
    PyObject *list = PyList_New(c->n_joints);
    if (!list) return NULL;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        for (int k = 0; k < B->n; ++k) {
            PyObject *d = Py_BuildValue("{s:K,s:i,s:i,s:i,s:i}", "replies",
                                        (unsigned long long)atomic_load(&B->motor_replies[k]), "missed_in_a_row",
                                        B->miss[k], "error", atomic_load(&B->motor_error[k]), "t_mos",
                                        atomic_load(&B->motor_t_mos[k]), "t_rotor", atomic_load(&B->motor_t_rotor[k]));
            if (!d) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, B->joints[k], d);
        }
    }
    return list;
}

static PyObject *can_bus_stats(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    rt_can *c = self->can;
    PyObject *list = PyList_New(c->n_buses);
    if (!list) return NULL;
    for (int b = 0; b < c->n_buses; ++b) {
        rt_can_bus *B = &c->buses[b];
        PyObject *d = Py_BuildValue(
            "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:d,s:d,s:d,s:i,s:i,s:s,s:s,s:K,s:K,s:K,s:i}", "cycles",
            (unsigned long long)atomic_load(&B->cycles), "complete_cycles",
            (unsigned long long)atomic_load(&B->complete_cycles), "replies", (unsigned long long)atomic_load(&B->replies),
            "missing", (unsigned long long)atomic_load(&B->missing), "late_replies",
            (unsigned long long)atomic_load(&B->late), "tx_errors", (unsigned long long)atomic_load(&B->tx_errors),
            "unknown_frames",
            (unsigned long long)atomic_load(&B->unknown), "reconnects", (unsigned long long)atomic_load(&B->reconnects),
            "overruns", (unsigned long long)atomic_load(&B->overruns), "clamped_frames",
            (unsigned long long)atomic_load(&B->clamps), "rtt_count", (unsigned long long)atomic_load(&B->rtt.count),
            "rtt_p50_us", rt_hist_quantile_us(&B->rtt, 0.5), "rtt_p99_us", rt_hist_quantile_us(&B->rtt, 0.99),
            "rtt_max_us", (double)atomic_load(&B->rtt.max_ns) / 1000.0, "connected", atomic_load(&B->connected), "mode",
            atomic_load(&B->mode), "last_error", B->last_error, "adapter_version", B->port.version, "adapter_errors",
            (unsigned long long)B->port.adapter_errors, "bytes_read", (unsigned long long)B->port.bytes_read, "log_dropped",
            (unsigned long long)atomic_load(&B->log_dropped), "fault_after_missed_cycles", B->miss_limit);
        if (!d) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, b, d);
    }
    return list;
}

static PyObject *can_enable_log(TransportObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    if (self->can_started) {
        PyErr_SetString(rtpy_RealTimeError, "CanTransport.enable_log(): call it before start()");
        return NULL;
    }
    if (rt_can_enable_log(self->can) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *can_drain_log(TransportObject *self, PyObject *unused) {
    /* [(t_s, bus, rx, id, ext, data)] of every bus, oldest first per bus */
    if (need(self, 0) < 0) return NULL;
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    rt_can_log_entry buf[256];
    for (int b = 0; b < self->can->n_buses; ++b) {
        int n;
        while ((n = rt_can_drain_log(self->can, b, buf, 256)) > 0) {
            for (int i = 0; i < n; ++i) {
                const rt_can_log_entry *e = &buf[i];
                PyObject *item = Py_BuildValue("(LiiIiy#)", (long long)e->t_ns, b, (int)e->rx, e->id & 0x1FFFFFFFu,
                                               (int)(e->id >> 31), (const char *)e->data, (Py_ssize_t)e->len);
                if (!item || PyList_Append(list, item) < 0) {
                    Py_XDECREF(item);
                    Py_DECREF(list);
                    return NULL;
                }
                Py_DECREF(item);
            }
        }
    }
    return list;
}

static PyObject *can_get_started(TransportObject *self, void *c) { return PyBool_FromLong(self->can_started); }

static PyMethodDef can_methods[] = {
    {"start", (PyCFunction)(void (*)(void))can_start, METH_VARARGS | METH_KEYWORDS,
     "start(rt_priority=0, cpu=-1, open_timeout_s=1.0): open every adapter, start the bus threads (PASSIVE)."},
    {"stop", (PyCFunction)can_stop, METH_NOARGS, "stop(): join the bus threads (no frame after) and close the adapters."},
    {"set_mode", (PyCFunction)can_set_mode, METH_O, "set_mode(mode): PASSIVE 0, ENTERING 1, ACTIVE 2, EXITING 3 (every bus)."},
    {"select", (PyCFunction)can_select, METH_O,
     "select(flags): which joints the next ENTERING puts in motor mode (the others only get zero frames); PASSIVE only."},
    {"modes", (PyCFunction)can_modes, METH_NOARGS, "modes() -> each bus's mode"},
    {"set_manual", (PyCFunction)(void (*)(void))can_set_manual, METH_FASTCALL | METH_KEYWORDS,
     "set_manual(q, v, kp, kd, tau): joint-side motor PD commands (source becomes manual)."},
    {"use_loop", (PyCFunction)can_use_loop, METH_NOARGS, "use_loop(): the loop's commands drive the motors."},
    {"clear_fault", (PyCFunction)can_clear_fault, METH_NOARGS, "clear_fault() -> False while the condition persists"},
    {"fault", (PyCFunction)can_fault, METH_NOARGS, "fault() -> (kind, joint, bus, flags) of the latched fault"},
    {"enable_log", (PyCFunction)can_enable_log, METH_NOARGS, "enable_log(): log every frame (before start())"},
    {"drain_log", (PyCFunction)can_drain_log, METH_NOARGS,
     "drain_log() -> [(t_ns realtime, bus, rx, id, ext, data)]: the frames logged since the last drain"},
    {"fault_message", (PyCFunction)can_fault_message, METH_NOARGS, "fault_message() -> the latched fault in words"},
    {"monitor", (PyCFunction)can_monitor, METH_NOARGS, "monitor() -> (q, v, tau, cycles per bus): newest replies, joint side"},
    {"motor_status", (PyCFunction)can_motor_status, METH_NOARGS, "motor_status() -> per joint: replies, errors, temperatures"},
    {"bus_stats", (PyCFunction)can_bus_stats, METH_NOARGS, "bus_stats() -> per bus counters and round-trip percentiles"},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef can_getset[] = {
    {"started", (getter)can_get_started, NULL, NULL, NULL},
    {"n_joints", (getter)rtpy_transport_n_joints, NULL, NULL, NULL},
    {"n_feet", (getter)rtpy_transport_n_feet, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
PyTypeObject rtpy_CanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.CanTransport",
    .tp_basicsize = sizeof(TransportObject),
    .tp_dealloc = (destructor)can_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CanTransport(buses, joints, n_feet=0): MIT-mode motors on CAN buses (see rt/README.md).",
    .tp_methods = can_methods,
    .tp_getset = can_getset,
    .tp_init = (initproc)can_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef codec_functions[] = {
    {"mit_pack", py_mit_pack, METH_VARARGS, "mit_pack(range10, p, v, kp, kd, t) -> (8 bytes, clamp mask)"},
    {"mit_unpack", py_mit_unpack, METH_VARARGS, "mit_unpack(range10, data, damiao=False) -> dict"},
    {"mit_special", py_mit_special, METH_O, "mit_special(kind) -> FF x7 kind"},
    {"mit_special_kind", py_mit_special_kind, METH_O, "mit_special_kind(data) -> 0xFC/0xFD/0xFE or 0"},
    {"mit_models", py_mit_models, METH_NOARGS, "mit_models() -> [(name, range10, source)]"},
    {"slcan_encode", (PyCFunction)(void (*)(void))py_slcan_encode, METH_VARARGS | METH_KEYWORDS,
     "slcan_encode(id, data=b'', ext=False, rtr=False, dlc=-1) -> the line, ending in '\\r'"},
    {"slcan_bitrate_code", py_slcan_bitrate_code, METH_O, "slcan_bitrate_code(bitrate) -> 0..8, -1 if none"},
    {NULL, NULL, 0, NULL},
};

int rtpy_init_can(PyObject *module) {
    if (PyType_Ready(&rtpy_CanType) < 0 || PyType_Ready(&SlcanParserType) < 0) return -1;
    if (PyModule_AddFunctions(module, codec_functions) < 0) return -1;
    Py_INCREF(&rtpy_CanType);
    if (PyModule_AddObject(module, "CanTransport", (PyObject *)&rtpy_CanType) < 0) return -1;
    Py_INCREF(&SlcanParserType);
    if (PyModule_AddObject(module, "SlcanParser", (PyObject *)&SlcanParserType) < 0) return -1;
    PyModule_AddIntConstant(module, "CAN_PASSIVE", RT_CAN_PASSIVE);
    PyModule_AddIntConstant(module, "CAN_ENTERING", RT_CAN_ENTERING);
    PyModule_AddIntConstant(module, "CAN_ACTIVE", RT_CAN_ACTIVE);
    PyModule_AddIntConstant(module, "CAN_EXITING", RT_CAN_EXITING);
    PyModule_AddIntConstant(module, "REASON_TRANSPORT_FAULT", RT_REASON_TRANSPORT_FAULT);
    return 0;
}
