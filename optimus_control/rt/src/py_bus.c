/* Robot side of the joint bus for Python (optimus_control.rt.bus.RobotBus): header set-up, seqlocked
 * state publication, command reads and the futex wait for a command, on a mapped segment passed in as
 * any writable buffer (a mmap.mmap). */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "py_common.h"
#include "rt_bus.h"

typedef struct {
    Py_buffer view;
    rt_bus_header *h;
} mapped_bus;

static int get_bus(PyObject *obj, mapped_bus *mb, const char *fname, int check) {
    if (PyObject_GetBuffer(obj, &mb->view, PyBUF_WRITABLE) < 0) return -1;
    mb->h = mb->view.buf;
    if (check) {
        const char *bad = rt_bus_check(mb->h, (size_t)mb->view.len);
        if (bad) {
            PyErr_Format(rtpy_RealTimeError, "%s(): %s", fname, bad);
            PyBuffer_Release(&mb->view);
            return -1;
        }
    }
    return 0;
}

static PyObject *bus_layout(PyObject *mod, PyObject *args) {
    unsigned int n, nf;
    if (!PyArg_ParseTuple(args, "II:bus_layout", &n, &nf)) return NULL;
    rt_bus_header h;
    size_t total = rt_bus_layout(&h, n, nf);
    return Py_BuildValue("{s:I,s:I,s:I,s:I,s:I,s:n,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "header_bytes", h.header_bytes,
                         "state_offset", h.state_offset, "state_words", h.state_words, "command_offset",
                         h.command_offset, "command_words", h.command_words, "total_bytes", (Py_ssize_t)total,
                         "word_time", 1 + rt_sw_time(), "word_q", 1 + rt_sw_q((int)n), "word_v", 1 + rt_sw_v((int)n),
                         "word_tau_measured", 1 + rt_sw_tau((int)n), "word_imu_orientation", 1 + rt_sw_quat((int)n),
                         "word_imu_angular_velocity", 1 + rt_sw_gyro((int)n), "word_imu_linear_acceleration",
                         1 + rt_sw_acc((int)n), "word_foot_wrench", 1 + rt_sw_feet((int)n));
}

static PyObject *bus_init(PyObject *mod, PyObject *args) {
    PyObject *buf;
    unsigned int n, nf;
    if (!PyArg_ParseTuple(args, "OII:bus_init", &buf, &n, &nf)) return NULL;
    mapped_bus mb;
    if (get_bus(buf, &mb, "bus_init", 0) < 0) return NULL;
    rt_bus_header h;
    size_t total = rt_bus_layout(&h, n, nf);
    if ((size_t)mb.view.len < total) {
        PyBuffer_Release(&mb.view);
        return PyErr_Format(rtpy_RealTimeError, "bus_init(): segment of %zd bytes, %zu needed", mb.view.len, total);
    }
    memset(mb.view.buf, 0, total);
    h.robot_pid = (int32_t)getpid();
    memcpy(mb.h, &h, sizeof(h));
    /* no command yet: tick -1; an upright resting IMU in the initial state */
    int64_t none = -1;
    memcpy(rt_bus_words(mb.view.buf, h.command_offset), &none, sizeof(none));
    double *st = (double *)rt_bus_words(mb.view.buf, h.state_offset) + 1;
    st[rt_sw_quat((int)n) + 3] = 1.0;
    st[rt_sw_acc((int)n) + 2] = 9.81;
    PyBuffer_Release(&mb.view);
    Py_RETURN_NONE;
}

static PyObject *bus_check(PyObject *mod, PyObject *arg) {
    mapped_bus mb;
    if (get_bus(arg, &mb, "bus_check", 1) < 0) return NULL;
    PyObject *r = Py_BuildValue("(II)", mb.h->n_joints, mb.h->n_feet);
    PyBuffer_Release(&mb.view);
    return r;
}

static PyObject *bus_publish_state(PyObject *mod, PyObject *args) {
    PyObject *buf, *words;
    double sim_time;
    if (!PyArg_ParseTuple(args, "OOd:bus_publish_state", &buf, &words, &sim_time)) return NULL;
    mapped_bus mb;
    if (get_bus(buf, &mb, "publish_state", 1) < 0) return NULL;
    const uint32_t nw = mb.h->state_words;
    Py_buffer wb;
    if (rtpy_get_f64(words, &wb, nw - 1u, 0, "publish_state", "state words") < 0) {
        PyBuffer_Release(&mb.view);
        return NULL;
    }
    uint64_t *packet = rt_bus_words(mb.view.buf, mb.h->state_offset);
    uint64_t scratch[1024];
    uint64_t *w = nw <= 1024 ? scratch : PyMem_Malloc(sizeof(uint64_t) * nw);
    if (!w) {
        PyBuffer_Release(&wb);
        PyBuffer_Release(&mb.view);
        return PyErr_NoMemory();
    }
    int64_t tick;
    memcpy(&tick, packet, sizeof(tick)); /* this process is the only writer of the state packet */
    tick += 1;
    memcpy(&w[0], &tick, sizeof(tick));
    memcpy(&w[1], wb.buf, sizeof(double) * (nw - 1u));
    memcpy(&w[1 + rt_sw_time()], &sim_time, sizeof(double));
    rt_bus_write(&mb.h->state_seq, &mb.h->state_waiters, packet, w, nw);
    if (w != scratch) PyMem_Free(w);
    PyBuffer_Release(&wb);
    PyBuffer_Release(&mb.view);
    return PyLong_FromLongLong(tick);
}

static PyObject *bus_read_command(PyObject *mod, PyObject *args) {
    PyObject *buf, *out;
    if (!PyArg_ParseTuple(args, "OO:bus_read_command", &buf, &out)) return NULL;
    mapped_bus mb;
    if (get_bus(buf, &mb, "read_command", 1) < 0) return NULL;
    const uint32_t nw = mb.h->command_words;
    Py_buffer ob;
    if (rtpy_get_f64(out, &ob, nw - 1u, 1, "read_command", "out") < 0) {
        PyBuffer_Release(&mb.view);
        return NULL;
    }
    uint64_t scratch[1024];
    int64_t tick = -1;
    int ok = 0;
    if (nw <= 1024) {
        /* A writer preempted in the middle of a command (a loaded machine) keeps the packet busy for as
         * long as it is descheduled: spin briefly, then yield the CPU to it, for up to 5 ms. */
        const uint64_t *words = rt_bus_words(mb.view.buf, mb.h->command_offset);
        for (int attempt = 0; attempt < 1000 && !ok; ++attempt) ok = rt_bus_read(&mb.h->command_seq, words, scratch, nw);
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!ok) {
            sched_yield();
            ok = rt_bus_read(&mb.h->command_seq, words, scratch, nw);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - t0.tv_sec) * 1000000000LL + (now.tv_nsec - t0.tv_nsec) > 5000000LL) break;
        }
    }
    if (ok) {
        memcpy(&tick, &scratch[0], sizeof(tick));
        memcpy(ob.buf, &scratch[1], sizeof(double) * (nw - 1u));
    }
    PyBuffer_Release(&ob);
    PyBuffer_Release(&mb.view);
    if (!ok) return PyErr_Format(rtpy_RealTimeError, "read_command(): the command packet stayed busy");
    return PyLong_FromLongLong(tick);
}

static PyObject *bus_wait_command(PyObject *mod, PyObject *args) {
    PyObject *buf;
    long long tick;
    double timeout;
    if (!PyArg_ParseTuple(args, "OLd:bus_wait_command", &buf, &tick, &timeout)) return NULL;
    mapped_bus mb;
    if (get_bus(buf, &mb, "wait_command", 1) < 0) return NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = rt_bus_wait_tick(&mb.h->command_seq, &mb.h->command_waiters, rt_bus_words(mb.view.buf, mb.h->command_offset),
                         (int64_t)tick, (int64_t)(timeout * 1e9), NULL);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&mb.view);
    return PyBool_FromLong(r == 1);
}

static PyObject *bus_status(PyObject *mod, PyObject *arg) {
    mapped_bus mb;
    if (get_bus(arg, &mb, "bus_status", 1) < 0) return NULL;
    uint64_t w = 0;
    int64_t tick = -1;
    for (int attempt = 0; attempt < 1000; ++attempt)
        if (rt_bus_read(&mb.h->command_seq, rt_bus_words(mb.view.buf, mb.h->command_offset), &w, 1)) {
            memcpy(&tick, &w, sizeof(tick));
            break;
        }
    const int64_t hb = atomic_load(&mb.h->controller_heartbeat_ns);
    PyObject *r = Py_BuildValue("{s:L,s:i,s:i,s:L,s:L,s:i}", "command_tick", (long long)tick, "controller_state",
                                (int)atomic_load(&mb.h->controller_state), "controller_fault",
                                (int)atomic_load(&mb.h->controller_fault), "heartbeat_ns", (long long)hb, "now_ns",
                                (long long)rt_now_ns(), "controller_pid", (int)mb.h->controller_pid);
    PyBuffer_Release(&mb.view);
    return r;
}

static int get_side(PyObject *args, const char *fname, int *fd, int *side, const char **name) {
    if (!PyArg_ParseTuple(args, "iis", fd, side, name)) return -1;
    if (*side != RT_BUS_ROBOT && *side != RT_BUS_CONTROLLER) {
        PyErr_Format(rtpy_RealTimeError, "%s(): side %d must be BUS_ROBOT (0) or BUS_CONTROLLER (1)", fname, *side);
        return -1;
    }
    return 0;
}

static PyObject *owned_error(int fd, const char *name, int side) {
    char err[512];
    rt_bus_owned_message(fd, name, side, err, sizeof(err));
    PyErr_SetString(rtpy_BusInUseError, err);
    return NULL;
}

static PyObject *bus_claim(PyObject *mod, PyObject *args) {
    int fd, side;
    const char *name;
    if (get_side(args, "bus_claim", &fd, &side, &name) < 0) return NULL;
    const int r = rt_bus_claim(fd, side);
    if (r == RT_BUS_OWNED) return owned_error(fd, name, side);
    if (r != 0)
        return PyErr_Format(rtpy_RealTimeError, "joint bus '%s': cannot lock its %s side: %s", name,
                            side == RT_BUS_ROBOT ? "robot" : "controller", strerror(r));
    Py_RETURN_NONE;
}

static PyObject *bus_require_free(PyObject *mod, PyObject *args) {
    int fd, side;
    const char *name;
    if (get_side(args, "bus_require_free", &fd, &side, &name) < 0) return NULL;
    const int r = rt_bus_side_held(fd, side);
    if (r > 0) return owned_error(fd, name, side);
    if (r < 0) return PyErr_Format(rtpy_RealTimeError, "joint bus '%s': cannot test its locks: %s", name, strerror(-r));
    Py_RETURN_NONE;
}

static PyMethodDef bus_methods[] = {
    {"bus_claim", bus_claim, METH_VARARGS,
     "bus_claim(fd, side, name): own one side of the bus open on fd (until fd and its dups close, or the process\n"
     "dies), recording this pid; BusInUseError if a live process owns it"},
    {"bus_require_free", bus_require_free, METH_VARARGS,
     "bus_require_free(fd, side, name): BusInUseError if a live process owns that side"},
    {"bus_layout", bus_layout, METH_VARARGS, "bus_layout(n_joints, n_feet) -> dict of offsets (bytes, words)"},
    {"bus_init", bus_init, METH_VARARGS, "bus_init(segment, n_joints, n_feet): write a fresh header"},
    {"bus_check", bus_check, METH_O, "bus_check(segment) -> (n_joints, n_feet), or RealTimeError"},
    {"bus_publish_state", bus_publish_state, METH_VARARGS,
     "bus_publish_state(segment, state_words, sim_time_s) -> tick (seqlocked write + futex wake)"},
    {"bus_read_command", bus_read_command, METH_VARARGS, "bus_read_command(segment, out) -> tick answered (-1: none)"},
    {"bus_wait_command", bus_wait_command, METH_VARARGS,
     "bus_wait_command(segment, tick, timeout_s) -> bool (GIL released, futex wait)"},
    {"bus_status", bus_status, METH_O, "bus_status(segment) -> dict (command tick, controller state, heartbeat)"},
    {NULL, NULL, 0, NULL},
};

int rtpy_init_bus(PyObject *module) {
    if (PyModule_AddFunctions(module, bus_methods) < 0) return -1;
    if (PyModule_AddIntConstant(module, "BUS_ROBOT", RT_BUS_ROBOT) < 0) return -1;
    return PyModule_AddIntConstant(module, "BUS_CONTROLLER", RT_BUS_CONTROLLER);
}
