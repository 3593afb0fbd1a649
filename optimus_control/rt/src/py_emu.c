/* MotorEmulator: the HIL actuator emulator (rt_emu) over a ShmTransport to the simulator. */
#include "py_transport.h"
#include "rt_emu.h"

#include <math.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    rt_emu *emu;
    TransportObject *transport;
    int started;
} EmuObject;

/* Threads stopped, ptys closed, the emulator freed and the transport given back (close() and dealloc). */
static void emu_release(EmuObject *self) {
    if (self->emu) {
        if (self->started) {
            Py_BEGIN_ALLOW_THREADS
            rt_emu_stop(self->emu);
            Py_END_ALLOW_THREADS
            self->started = 0;
        }
        rt_emu_free(self->emu);
        self->emu = NULL;
    }
    if (self->transport) {
        self->transport->in_use = 0;
        Py_CLEAR(self->transport);
    }
}

static void emu_dealloc(EmuObject *self) {
    emu_release(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* MotorEmulator(transport, motors): motors per joint (bus order) as
 * (bus, motor_id, range10, damiao, scale, direction, offset, timeout_s, timeout_kd). */
static int emu_init(EmuObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"transport", "motors", NULL};
    PyObject *transport, *motors;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:MotorEmulator", kwlist, &transport, &motors)) return -1;
    if (!PyObject_TypeCheck(transport, &rtpy_ShmType) || !rtpy_transport_open((TransportObject *)transport)) {
        PyErr_SetString(rtpy_RealTimeError, "MotorEmulator: transport must be an open ShmTransport (the sim's bus)");
        return -1;
    }
    TransportObject *tr = (TransportObject *)transport;
    if (tr->in_use) {
        PyErr_SetString(rtpy_RealTimeError, "MotorEmulator: the transport is already in use");
        return -1;
    }
    PyObject *seq = PySequence_Fast(motors, "motors must be a sequence of tuples");
    if (!seq) return -1;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    rt_emu_motor_cfg *cfg = calloc((size_t)(n ? n : 1), sizeof(rt_emu_motor_cfg));
    int n_buses = 0, ok = cfg != NULL;
    for (Py_ssize_t j = 0; ok && j < n; ++j) {
        PyObject *range;
        int damiao;
        rt_emu_motor_cfg *M = &cfg[j];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, j), "iiOpddddd", &M->bus, &M->motor_id, &range, &damiao,
                              &M->scale, &M->direction, &M->offset, &M->timeout_s, &M->timeout_kd) ||
            rtpy_parse_range(range, damiao, &M->range) < 0) {
            ok = 0;
            break;
        }
        if (M->bus + 1 > n_buses) n_buses = M->bus + 1;
    }
    Py_DECREF(seq);
    if (!ok) {
        free(cfg);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    char err[256] = "";
    self->emu = rt_emu_create(&tr->tr, cfg, (int)n, n_buses, err, sizeof(err));
    free(cfg);
    if (!self->emu) {
        PyErr_Format(rtpy_RealTimeError, "MotorEmulator: %s", err);
        return -1;
    }
    tr->in_use = 1;
    Py_INCREF(transport);
    self->transport = tr;
    return 0;
}

static int need(EmuObject *self, int started) {
    if (!self->emu) {
        PyErr_SetString(rtpy_RealTimeError, "MotorEmulator is not initialised");
        return -1;
    }
    if (started && !self->started) {
        PyErr_SetString(rtpy_RealTimeError, "MotorEmulator is not started");
        return -1;
    }
    return 0;
}

static int joint_arg(EmuObject *self, PyObject *obj, const char *fname) {
    long j;
    if (rtpy_get_int(obj, 0, self->emu->n_joints - 1, fname, "joint", &j) < 0) return -1;
    return (int)j;
}

static PyObject *emu_start(EmuObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"paths", "rt_priority", "first_state_timeout_s", NULL};
    PyObject *paths;
    int prio = 0;
    double first_state_timeout_s = 10.0;
    if (need(self, 0) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O|id:start", kwlist, &paths, &prio, &first_state_timeout_s))
        return NULL;
    if (self->started) Py_RETURN_NONE;
    const int nb = self->emu->n_buses;
    PyObject *seq = PySequence_Fast(paths, "paths must be a sequence of strings (one per bus)");
    if (!seq) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != nb) {
        PyErr_Format(rtpy_RealTimeError, "start(): %zd paths for %d buses", PySequence_Fast_GET_SIZE(seq), nb);
        Py_DECREF(seq);
        return NULL;
    }
    const char *cpaths[64];
    for (int b = 0; b < nb && b < 64; ++b) {
        cpaths[b] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, b));
        if (!cpaths[b]) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    char err[256] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rt_emu_start(self->emu, cpaths, prio, first_state_timeout_s, err, sizeof(err));
    Py_END_ALLOW_THREADS
    Py_DECREF(seq);
    if (rc < 0) {
        PyErr_Format(rtpy_RealTimeError, "MotorEmulator.start(): %s", err);
        return NULL;
    }
    self->started = 1;
    Py_RETURN_NONE;
}

static PyObject *emu_stop(EmuObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    if (self->started) {
        Py_BEGIN_ALLOW_THREADS
        rt_emu_stop(self->emu);
        Py_END_ALLOW_THREADS
        self->started = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *emu_close(EmuObject *self, PyObject *unused) {
    emu_release(self);
    Py_RETURN_NONE;
}

static PyObject *emu_ttys(EmuObject *self, PyObject *unused) {
    if (need(self, 1) < 0) return NULL;
    PyObject *list = PyList_New(self->emu->n_buses);
    for (int b = 0; list && b < self->emu->n_buses; ++b)
        PyList_SET_ITEM(list, b, PyUnicode_FromString(self->emu->buses[b].tty));
    return list;
}

static PyObject *emu_motor_status(EmuObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    PyObject *list = PyList_New(self->emu->n_joints);
    for (int j = 0; list && j < self->emu->n_joints; ++j) {
        rt_emu_motor_status *S = &self->emu->status[j];
        PyObject *d = Py_BuildValue(
            "{s:i,s:i,s:i,s:i,s:i,s:i,s:K,s:K,s:K,s:K,s:K,s:K}", "enabled", atomic_load(&S->enabled), "silent",
            atomic_load(&S->silent), "error", atomic_load(&S->error_code), "t_mos", atomic_load(&S->t_mos), "t_rotor",
            atomic_load(&S->t_rotor), "timed_out", atomic_load(&S->timed_out), "frames",
            (unsigned long long)atomic_load(&S->frames), "commands", (unsigned long long)atomic_load(&S->commands),
            "enters", (unsigned long long)atomic_load(&S->enters), "exits", (unsigned long long)atomic_load(&S->exits),
            "zeros", (unsigned long long)atomic_load(&S->zeros), "replies", (unsigned long long)atomic_load(&S->replies));
        if (!d) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, j, d);
    }
    return list;
}

static PyObject *emu_set(EmuObject *self, PyObject *args) {
    PyObject *joint;
    const char *what;
    int value, value2 = -1;
    if (need(self, 0) < 0 || !PyArg_ParseTuple(args, "Osi|i:set", &joint, &what, &value, &value2)) return NULL;
    const int j = joint_arg(self, joint, "set");
    if (j < 0) return NULL;
    rt_emu_motor_status *S = &self->emu->status[j];
    if (strcmp(what, "silent") == 0) {
        atomic_store(&S->silent, value != 0);
    } else if (strcmp(what, "error") == 0) {
        atomic_store(&S->error_code, value & 0xF);
    } else if (strcmp(what, "temperature") == 0) {
        atomic_store(&S->t_mos, value);
        atomic_store(&S->t_rotor, value2 >= 0 ? value2 : value);
    } else {
        PyErr_Format(rtpy_RealTimeError, "set(): unknown property '%s' (silent, error, temperature)", what);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *emu_set_zero_shift(EmuObject *self, PyObject *args) {
    PyObject *joint;
    double shift;
    if (need(self, 0) < 0 || !PyArg_ParseTuple(args, "Od:set_zero_shift", &joint, &shift)) return NULL;
    const int j = joint_arg(self, joint, "set_zero_shift");
    if (j < 0) return NULL;
    if (!isfinite(shift)) {
        PyErr_SetString(rtpy_RealTimeError, "set_zero_shift(): the shift must be finite");
        return NULL;
    }
    rt_emu_set_zero_shift(self->emu, j, shift);
    Py_RETURN_NONE;
}

static PyObject *emu_set_wire(EmuObject *self, PyObject *args) {
    int b, latency_us = 0, jitter_us = 0;
    long bitrate;
    if (need(self, 0) < 0 || !PyArg_ParseTuple(args, "il|ii:set_wire", &b, &bitrate, &latency_us, &jitter_us)) return NULL;
    if (b < 0 || b >= self->emu->n_buses || bitrate < 0 || latency_us < 0 || jitter_us < 0) {
        PyErr_SetString(rtpy_RealTimeError, "set_wire(bus, bitrate, latency_us=0, jitter_us=0): bus out of range or a "
                                            "negative value");
        return NULL;
    }
    rt_emu_set_wire(self->emu, b, bitrate, latency_us, jitter_us);
    Py_RETURN_NONE;
}

static PyObject *emu_set_bus_faults(EmuObject *self, PyObject *args) {
    int b, drop_ppm, corrupt_ppm, silent;
    if (need(self, 0) < 0 || !PyArg_ParseTuple(args, "iiip:set_bus_faults", &b, &drop_ppm, &corrupt_ppm, &silent))
        return NULL;
    if (b < 0 || b >= self->emu->n_buses || drop_ppm < 0 || drop_ppm > 1000000 || corrupt_ppm < 0 ||
        corrupt_ppm > 1000000) {
        PyErr_SetString(rtpy_RealTimeError, "set_bus_faults(bus, drop_ppm, corrupt_ppm, silent): bus out of range or "
                                            "a rate outside [0, 1e6]");
        return NULL;
    }
    rt_emu_set_bus_faults(self->emu, b, drop_ppm, corrupt_ppm, silent);
    Py_RETURN_NONE;
}

static PyObject *emu_vanish(EmuObject *self, PyObject *arg) {
    long b;
    if (need(self, 1) < 0 || rtpy_get_int(arg, 0, self->emu->n_buses - 1, "vanish", "bus", &b) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rt_emu_vanish(self->emu, (int)b);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *emu_reappear(EmuObject *self, PyObject *arg) {
    long b;
    if (need(self, 1) < 0 || rtpy_get_int(arg, 0, self->emu->n_buses - 1, "reappear", "bus", &b) < 0) return NULL;
    if (rt_emu_reappear(self->emu, (int)b) < 0) {
        PyErr_SetString(rtpy_RealTimeError, "reappear(): no pseudo-terminal");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* snapshot() -> (tick, state words, joint torques) of the last answered state, or None before the first. */
static PyObject *emu_snapshot(EmuObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    rt_emu *e = self->emu;
    const double *s = rt_tbuf_read(&e->snapshot, NULL);
    if (s[0] < 1.0 && atomic_load(&e->answers) == 0) Py_RETURN_NONE;
    PyObject *words = PyList_New(e->n_words), *tau = PyList_New(e->n_joints);
    if (!words || !tau) {
        Py_XDECREF(words);
        Py_XDECREF(tau);
        return NULL;
    }
    for (int i = 0; i < e->n_words; ++i) PyList_SET_ITEM(words, i, PyFloat_FromDouble(s[1 + i]));
    for (int j = 0; j < e->n_joints; ++j) PyList_SET_ITEM(tau, j, PyFloat_FromDouble(s[1 + e->n_words + j]));
    return Py_BuildValue("(LNN)", (long long)s[0], words, tau);
}

static PyObject *emu_stats(EmuObject *self, PyObject *unused) {
    if (need(self, 0) < 0) return NULL;
    rt_emu *e = self->emu;
    PyObject *buses = PyList_New(e->n_buses);
    for (int b = 0; buses && b < e->n_buses; ++b) {
        rt_emu_bus *B = &e->buses[b];
        PyObject *d = Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:i,s:i,s:K,s:K}", "lines", (unsigned long long)atomic_load(&B->lines),
                                    "frames", (unsigned long long)atomic_load(&B->frames_in), "replies",
                                    (unsigned long long)atomic_load(&B->replies_out), "bad_lines",
                                    (unsigned long long)atomic_load(&B->bad_lines), "unknown_ids",
                                    (unsigned long long)atomic_load(&B->unknown_ids), "open", atomic_load(&B->open),
                                    "bitrate_code", B->bitrate_code, "dropped",
                                    (unsigned long long)atomic_load(&B->dropped), "corrupted",
                                    (unsigned long long)atomic_load(&B->corrupted));
        if (!d) {
            Py_DECREF(buses);
            return NULL;
        }
        PyList_SET_ITEM(buses, b, d);
    }
    if (!buses) return NULL;
    return Py_BuildValue("{s:K,s:K,s:N}", "states", (unsigned long long)atomic_load(&e->states), "answers",
                         (unsigned long long)atomic_load(&e->answers), "buses", buses);
}

static PyMethodDef emu_methods[] = {
    {"start", (PyCFunction)(void (*)(void))emu_start, METH_VARARGS | METH_KEYWORDS,
     "start(paths, rt_priority=0, first_state_timeout_s=10): waits for the robot side's first state, then one pty per "
     "bus, its slave linked at paths[b] ('': none), threads started"},
    {"stop", (PyCFunction)emu_stop, METH_NOARGS, "stop(): threads joined, ptys closed, links removed"},
    {"close", (PyCFunction)emu_close, METH_NOARGS, "close(): stop, free, release the transport"},
    {"ttys", (PyCFunction)emu_ttys, METH_NOARGS, "ttys() -> the slave device of each bus's pty"},
    {"motor_status", (PyCFunction)emu_motor_status, METH_NOARGS, "motor_status() -> per joint: enabled, counters, ..."},
    {"set", (PyCFunction)emu_set, METH_VARARGS,
     "set(joint, 'silent'|'error'|'temperature', value[, rotor]): fault injection on one motor"},
    {"set_zero_shift", (PyCFunction)emu_set_zero_shift, METH_VARARGS,
     "set_zero_shift(joint, shift): the motor's encoder reads shifted by shift [rad, motor side]"},
    {"set_wire", (PyCFunction)emu_set_wire, METH_VARARGS,
     "set_wire(bus, bitrate, latency_us=0, jitter_us=0): frame times at the bitrate (0: none), latency, jitter"},
    {"set_bus_faults", (PyCFunction)emu_set_bus_faults, METH_VARARGS,
     "set_bus_faults(bus, drop_ppm, corrupt_ppm, silent): replies lost / garbled per million, the whole bus silent"},
    {"vanish", (PyCFunction)emu_vanish, METH_O, "vanish(bus): the adapter is unplugged (pty closed, link removed)"},
    {"reappear", (PyCFunction)emu_reappear, METH_O, "reappear(bus): plugged back in at the same path"},
    {"snapshot", (PyCFunction)emu_snapshot, METH_NOARGS, "snapshot() -> (tick, state words, joint torques) or None"},
    {"stats", (PyCFunction)emu_stats, METH_NOARGS, "stats() -> states taken, answers, per bus counters"},
    {NULL, NULL, 0, NULL},
};

static PyObject *emu_get_started(EmuObject *self, void *c) { return PyBool_FromLong(self->started); }

static PyGetSetDef emu_getset[] = {
    {"started", (getter)emu_get_started, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EmuType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.MotorEmulator",
    .tp_basicsize = sizeof(EmuObject),
    .tp_dealloc = (destructor)emu_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "MotorEmulator(transport, motors): MIT motors behind SLCAN ptys on the sim's joint bus (rt_emu.h).",
    .tp_methods = emu_methods,
    .tp_getset = emu_getset,
    .tp_init = (initproc)emu_init,
    .tp_new = PyType_GenericNew,
};

int rtpy_init_emu(PyObject *module) {
    if (PyType_Ready(&EmuType) < 0) return -1;
    Py_INCREF(&EmuType);
    return PyModule_AddObject(module, "MotorEmulator", (PyObject *)&EmuType);
}
