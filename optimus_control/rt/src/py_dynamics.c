/* _rtcore.Model: the dynamics kernels for Python. optimus_control.rt.Dynamics subclasses it, so a call
 * like dyn.rnea(q, v, a) goes straight to C (no Python frame on the hot path). Kernels hold the GIL:
 * they take about a microsecond, less than releasing and re-taking it would cost. */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "py_common.h"
#include "py_dynamics.h"
#include "rt_dynamics.h"

static int parse_reference(PyObject *obj, const char *fname, int *ref) {
    if (!obj) {
        *ref = RT_LOCAL;
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (!s) return -1;
        if (strcasecmp(s, "world") == 0) *ref = RT_WORLD;
        else if (strcasecmp(s, "local") == 0) *ref = RT_LOCAL;
        else if (strcasecmp(s, "local_world_aligned") == 0) *ref = RT_LOCAL_WORLD_ALIGNED;
        else {
            PyErr_Format(rtpy_RealTimeError,
                         "%s(): reference '%s' is not one of 'WORLD', 'LOCAL', 'LOCAL_WORLD_ALIGNED'", fname, s);
            return -1;
        }
        return 0;
    }
    long v;
    if (rtpy_get_int(obj, 0, 2, fname, "reference", &v) < 0) return -1;
    *ref = (int)v;
    return 0;
}

static void model_dealloc(ModelObject *self) {
    rt_model_free(self->m);
    PyMem_Free(self->fext);
    Py_XDECREF(self->shape_v);
    Py_XDECREF(self->shape_M);
    Py_XDECREF(self->shape_J);
    Py_XDECREF(self->shape_44);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int model_init(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"nq", "nv", "joints", "frames", "gravity", NULL};
    int nq, nv;
    PyObject *joints, *frames, *gravity;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iiOOO:Model", kwlist, &nq, &nv, &joints, &frames, &gravity))
        return -1;
    if (self->m) {
        PyErr_SetString(rtpy_RealTimeError, "Model is already initialised");
        return -1;
    }
    Py_buffer jb, fb, gb;
    if (PyObject_GetBuffer(joints, &jb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    Py_ssize_t nj = jb.len / (8 * RT_JS_COLS);
    PyBuffer_Release(&jb);
    if (rtpy_get_f64(joints, &jb, nj * RT_JS_COLS, 0, "Model", "joints") < 0) return -1;
    if (PyObject_GetBuffer(frames, &fb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&jb);
        return -1;
    }
    Py_ssize_t nf = fb.len / (8 * RT_FS_COLS);
    PyBuffer_Release(&fb);
    if (rtpy_get_f64(frames, &fb, nf * RT_FS_COLS, 0, "Model", "frames") < 0) {
        PyBuffer_Release(&jb);
        return -1;
    }
    if (rtpy_get_f64(gravity, &gb, 6, 0, "Model", "gravity") < 0) {
        PyBuffer_Release(&jb);
        PyBuffer_Release(&fb);
        return -1;
    }
    char err[256] = "";
    self->m = rt_model_create(nq, nv, (int)nj, jb.buf, (int)nf, fb.buf, gb.buf, err, sizeof(err));
    PyBuffer_Release(&jb);
    PyBuffer_Release(&fb);
    PyBuffer_Release(&gb);
    if (!self->m) {
        PyErr_Format(rtpy_RealTimeError, "cannot build the kinematic tree: %s", err);
        return -1;
    }
    self->fext = PyMem_Calloc((size_t)self->m->nb * 6, sizeof(double));
    self->shape_v = Py_BuildValue("(i)", nv);
    self->shape_M = Py_BuildValue("(ii)", nv, nv);
    self->shape_J = Py_BuildValue("(ii)", 6, nv);
    self->shape_44 = Py_BuildValue("(ii)", 4, 4);
    if (!self->fext || !self->shape_v || !self->shape_M || !self->shape_J || !self->shape_44) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int ready(ModelObject *self) {
    if (!self->m) {
        PyErr_SetString(rtpy_RealTimeError, "Model is not initialised (build it with Dynamics.from_*())");
        return 0;
    }
    return 1;
}

/* Shared body of rnea / gravity / nonlinear_effects. */
static PyObject *call_rnea(ModelObject *self, const char *fname, PyObject *qo, PyObject *vo, PyObject *ao,
                           PyObject *outo) {
    if (!ready(self)) return NULL;
    rt_model *m = self->m;
    Py_buffer q, v = {0}, a = {0}, out;
    if (rtpy_get_f64(qo, &q, m->nq, 0, fname, "q") < 0) return NULL;
    if (vo && rtpy_get_f64(vo, &v, m->nv, 0, fname, "v") < 0) goto fail_q;
    if (ao && rtpy_get_f64(ao, &a, m->nv, 0, fname, "a") < 0) goto fail_v;
    PyObject *res = rtpy_output(outo, self->shape_v, &out, m->nv, fname);
    if (!res) goto fail_a;
    rt_rnea(m, q.buf, vo ? v.buf : NULL, ao ? a.buf : NULL, NULL, out.buf);
    PyBuffer_Release(&out);
    if (ao) PyBuffer_Release(&a);
    if (vo) PyBuffer_Release(&v);
    PyBuffer_Release(&q);
    return res;
fail_a:
    if (ao) PyBuffer_Release(&a);
fail_v:
    if (vo) PyBuffer_Release(&v);
fail_q:
    PyBuffer_Release(&q);
    return NULL;
}

static PyObject *model_rnea(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "a", "out"};
    PyObject *o[4];
    if (rtpy_parse_args("rnea", args, nargs, kwnames, names, 4, 3, o) < 0) return NULL;
    return call_rnea(self, "rnea", o[0], o[1], o[2], o[3]);
}

static PyObject *model_gravity(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"q", "out"};
    PyObject *o[2];
    if (rtpy_parse_args("gravity", args, nargs, kwnames, names, 2, 1, o) < 0) return NULL;
    return call_rnea(self, "gravity", o[0], NULL, NULL, o[1]);
}

static PyObject *model_nle(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "out"};
    PyObject *o[3];
    if (rtpy_parse_args("nonlinear_effects", args, nargs, kwnames, names, 3, 2, o) < 0) return NULL;
    return call_rnea(self, "nonlinear_effects", o[0], o[1], NULL, o[2]);
}

static PyObject *model_rnea_wrenches(ModelObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "a", "frame_ids", "wrenches", "reference", "out"};
    static const char *fname = "rnea_with_wrenches";
    PyObject *o[7];
    if (rtpy_parse_args(fname, args, nargs, kwnames, names, 7, 5, o) < 0) return NULL;
    if (!ready(self)) return NULL;
    rt_model *m = self->m;
    int ref;
    if (parse_reference(o[5], fname, &ref) < 0) return NULL;
    PyObject *ids = PySequence_Fast(o[3], "rnea_with_wrenches(): frame_ids must be a sequence of frame ids");
    if (!ids) return NULL;
    const Py_ssize_t k = PySequence_Fast_GET_SIZE(ids);
    PyObject *res = NULL;
    Py_buffer q, v, a, w, out;
    int got = 0;
    if (rtpy_get_f64(o[0], &q, m->nq, 0, fname, "q") < 0) goto done;
    got = 1;
    if (rtpy_get_f64(o[1], &v, m->nv, 0, fname, "v") < 0) goto done;
    got = 2;
    if (rtpy_get_f64(o[2], &a, m->nv, 0, fname, "a") < 0) goto done;
    got = 3;
    if (rtpy_get_f64(o[4], &w, k * 6, 0, fname, "wrenches (one [force, torque] row per frame id)") < 0) goto done;
    got = 4;
    memset(self->fext, 0, sizeof(double) * 6 * (size_t)m->nb);
    const double *wr = w.buf;
    if (ref != RT_LOCAL) rt_forward_kinematics(m, q.buf);
    for (Py_ssize_t i = 0; i < k; ++i) {
        long fid;
        if (rtpy_get_int(PySequence_Fast_GET_ITEM(ids, i), 0, m->nframes - 1, fname, "frame id", &fid) < 0) goto done;
        rt_add_frame_wrench(m, (int)fid, ref, wr + 6 * i, self->fext);
    }
    res = rtpy_output(o[6], self->shape_v, &out, m->nv, fname);
    if (!res) goto done;
    rt_rnea(m, q.buf, v.buf, a.buf, self->fext, out.buf);
    PyBuffer_Release(&out);
done:
    if (got >= 4) PyBuffer_Release(&w);
    if (got >= 3) PyBuffer_Release(&a);
    if (got >= 2) PyBuffer_Release(&v);
    if (got >= 1) PyBuffer_Release(&q);
    Py_DECREF(ids);
    return res;
}

static PyObject *model_crba(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"q", "out"};
    PyObject *o[2];
    if (rtpy_parse_args("crba", args, nargs, kwnames, names, 2, 1, o) < 0) return NULL;
    if (!ready(self)) return NULL;
    Py_buffer q, out;
    if (rtpy_get_f64(o[0], &q, self->m->nq, 0, "crba", "q") < 0) return NULL;
    PyObject *res = rtpy_output(o[1], self->shape_M, &out, (Py_ssize_t)self->m->nv * self->m->nv, "crba");
    if (res) {
        rt_crba(self->m, q.buf, out.buf);
        PyBuffer_Release(&out);
    }
    PyBuffer_Release(&q);
    return res;
}

static PyObject *model_frame_placement(ModelObject *self, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames) {
    static const char *const names[] = {"q", "frame_id", "out"};
    PyObject *o[3];
    if (rtpy_parse_args("frame_placement", args, nargs, kwnames, names, 3, 2, o) < 0) return NULL;
    if (!ready(self)) return NULL;
    long fid;
    if (rtpy_get_int(o[1], 0, self->m->nframes - 1, "frame_placement", "frame_id", &fid) < 0) return NULL;
    Py_buffer q, out;
    if (rtpy_get_f64(o[0], &q, self->m->nq, 0, "frame_placement", "q") < 0) return NULL;
    PyObject *res = rtpy_output(o[2], self->shape_44, &out, 16, "frame_placement");
    if (res) {
        rt_se3 X;
        rt_forward_kinematics(self->m, q.buf);
        rt_frame_placement(self->m, (int)fid, &X);
        double *H = out.buf;
        for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 3; ++j) H[4 * i + j] = X.R[3 * i + j];
            H[4 * i + 3] = X.p[i];
        }
        H[12] = H[13] = H[14] = 0.0;
        H[15] = 1.0;
        PyBuffer_Release(&out);
    }
    PyBuffer_Release(&q);
    return res;
}

static PyObject *model_frame_jacobian(ModelObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames) {
    static const char *const names[] = {"q", "frame_id", "reference", "out"};
    PyObject *o[4];
    if (rtpy_parse_args("frame_jacobian", args, nargs, kwnames, names, 4, 2, o) < 0) return NULL;
    if (!ready(self)) return NULL;
    long fid;
    int ref;
    if (rtpy_get_int(o[1], 0, self->m->nframes - 1, "frame_jacobian", "frame_id", &fid) < 0) return NULL;
    if (parse_reference(o[2], "frame_jacobian", &ref) < 0) return NULL;
    Py_buffer q, out;
    if (rtpy_get_f64(o[0], &q, self->m->nq, 0, "frame_jacobian", "q") < 0) return NULL;
    PyObject *res = rtpy_output(o[3], self->shape_J, &out, 6 * (Py_ssize_t)self->m->nv, "frame_jacobian");
    if (res) {
        rt_forward_kinematics(self->m, q.buf);
        rt_frame_jacobian(self->m, (int)fid, ref, out.buf);
        PyBuffer_Release(&out);
    }
    PyBuffer_Release(&q);
    return res;
}

static PyObject *model_time_rnea(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"q", "v", "a", "iterations"};
    PyObject *o[4];
    if (rtpy_parse_args("time_rnea", args, nargs, kwnames, names, 4, 4, o) < 0) return NULL;
    if (!ready(self)) return NULL;
    long iters;
    if (rtpy_get_int(o[3], 1, 1000000000L, "time_rnea", "iterations", &iters) < 0) return NULL;
    rt_model *m = self->m;
    Py_buffer q, v, a;
    if (rtpy_get_f64(o[0], &q, m->nq, 0, "time_rnea", "q") < 0) return NULL;
    if (rtpy_get_f64(o[1], &v, m->nv, 0, "time_rnea", "v") < 0) {
        PyBuffer_Release(&q);
        return NULL;
    }
    if (rtpy_get_f64(o[2], &a, m->nv, 0, "time_rnea", "a") < 0) {
        PyBuffer_Release(&q);
        PyBuffer_Release(&v);
        return NULL;
    }
    double *tau = PyMem_Malloc(sizeof(double) * (size_t)m->nv);
    rt_model *clone = rt_model_clone(m);
    struct timespec t0, t1;
    double checksum = 0.0;
    if (tau && clone) {
        /* thread CPU time: on a shared machine, time slices given to other processes do not count */
        Py_BEGIN_ALLOW_THREADS
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        for (long i = 0; i < iters; ++i) {
            rt_rnea(clone, q.buf, v.buf, a.buf, NULL, tau);
            checksum += tau[i % clone->nv];
        }
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(tau);
    rt_model_free(clone);
    PyBuffer_Release(&q);
    PyBuffer_Release(&v);
    PyBuffer_Release(&a);
    if (!tau || !clone) return PyErr_NoMemory();
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    (void)checksum;
    return PyFloat_FromDouble(secs / (double)iters);
}

static PyObject *model_get_int(ModelObject *self, void *which) {
    if (!ready(self)) return NULL;
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLong(self->m->nq);
    case 1: return PyLong_FromLong(self->m->nv);
    case 2: return PyLong_FromLong(self->m->nb);
    default: return PyLong_FromLong(self->m->nframes);
    }
}

static PyMethodDef model_methods[] = {
    {"rnea", (PyCFunction)(void (*)(void))model_rnea, METH_FASTCALL | METH_KEYWORDS,
     "rnea(q, v, a, out=None) -> tau (nv,): inverse dynamics M(q) a + C(q, v) v + g(q), as pinocchio.rnea."},
    {"gravity", (PyCFunction)(void (*)(void))model_gravity, METH_FASTCALL | METH_KEYWORDS,
     "gravity(q, out=None) -> g (nv,): generalized gravity, as pinocchio.computeGeneralizedGravity."},
    {"nonlinear_effects", (PyCFunction)(void (*)(void))model_nle, METH_FASTCALL | METH_KEYWORDS,
     "nonlinear_effects(q, v, out=None) -> C(q, v) v + g(q) (nv,), as pinocchio.nonLinearEffects."},
    {"rnea_with_wrenches", (PyCFunction)(void (*)(void))model_rnea_wrenches, METH_FASTCALL | METH_KEYWORDS,
     "rnea_with_wrenches(q, v, a, frame_ids, wrenches, reference='LOCAL', out=None) -> tau (nv,):\n"
     "rnea(q, v, a) - sum_k J_k(q)^T w_k, the wrenches w_k (k x 6, [force; torque] at the frame origin,\n"
     "in `reference` axes) being applied by the environment to frames frame_ids[k]."},
    {"crba", (PyCFunction)(void (*)(void))model_crba, METH_FASTCALL | METH_KEYWORDS,
     "crba(q, out=None) -> M (nv, nv): joint-space inertia matrix, full and symmetric."},
    {"frame_placement", (PyCFunction)(void (*)(void))model_frame_placement, METH_FASTCALL | METH_KEYWORDS,
     "frame_placement(q, frame_id, out=None) -> (4, 4) homogeneous placement of the frame in the world."},
    {"frame_jacobian", (PyCFunction)(void (*)(void))model_frame_jacobian, METH_FASTCALL | METH_KEYWORDS,
     "frame_jacobian(q, frame_id, reference='LOCAL', out=None) -> J (6, nv), as\n"
     "pinocchio.computeFrameJacobian; reference is 'LOCAL', 'LOCAL_WORLD_ALIGNED', 'WORLD' or a\n"
     "pinocchio.ReferenceFrame."},
    {"time_rnea", (PyCFunction)(void (*)(void))model_time_rnea, METH_FASTCALL | METH_KEYWORDS,
     "time_rnea(q, v, a, iterations) -> thread CPU seconds per call of the C RNEA in a tight C loop."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef model_getset[] = {
    {"nq", (getter)model_get_int, NULL, "configuration size", (void *)0},
    {"nv", (getter)model_get_int, NULL, "velocity size", (void *)1},
    {"nbodies", (getter)model_get_int, NULL, "number of joints/bodies (universe excluded)", (void *)2},
    {"nframes", (getter)model_get_int, NULL, "number of frames", (void *)3},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject rtpy_ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "optimus_control.rt._rtcore.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Model(nq, nv, joints, frames, gravity): flattened kinematic tree and its dynamics kernels.",
    .tp_methods = model_methods,
    .tp_getset = model_getset,
    .tp_init = (initproc)model_init,
    .tp_new = PyType_GenericNew,
};

int rtpy_init_dynamics(PyObject *module) {
    if (PyType_Ready(&rtpy_ModelType) < 0) return -1;
    Py_INCREF(&rtpy_ModelType);
    if (PyModule_AddObject(module, "Model", (PyObject *)&rtpy_ModelType) < 0) return -1;
    return 0;
}
