/* The compiled twin of trio.lowlevel.wait_task_rescheduled, for the first
 * reader of a socket on asock's trio hub (asock_core/drivers/trio_hub.py).
 *
 * trap_wait(trap) returns an awaitable that yields `trap` (a trio
 * WaitTaskRescheduled, made once per socket) to trio's scheduler and, when
 * trio resumes the task with the outcome of its wait, returns what that
 * outcome's unwrap() returns (or raises what it raises: Cancelled, for one).
 * trio's own function makes a coroutine, the generator it awaits and a new
 * trap on every wait (about 0.55 kB per waiting connection, 0.35 kB more than
 * this one small object and the socket's one trap).
 *
 * It is awaited by the async front's compiled calls (through am_send) and by
 * Python coroutines (through am_send, or on Python 3.12 and later through
 * __next__ and send()). It has no throw() or close(): a coroutine thrown into
 * while awaiting it raises the exception where it awaits, which is what a
 * generator without an except clause does too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_socket_state.h"

typedef struct {
    PyObject_HEAD
    PyObject *trap;  /* what to yield; NULL once the wait is over */
    int yielded;
} TrapWait;

static PyObject *str_unwrap;

static PySendResult
trap_step(TrapWait *w, PyObject *arg, PyObject **result)
{
    *result = NULL;
    if (w->trap == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited trap_wait");
        return PYGEN_ERROR;
    }
    if (!w->yielded) {
        if (arg != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started coroutine");
            return PYGEN_ERROR;
        }
        w->yielded = 1;
        *result = Py_NewRef(w->trap);
        return PYGEN_NEXT;
    }
    Py_CLEAR(w->trap);
    PyObject *value = PyObject_CallMethodNoArgs(arg, str_unwrap);
    if (value == NULL) {
        return PYGEN_ERROR;
    }
    *result = value;
    return PYGEN_RETURN;
}

AWAITABLE_ENTRIES(trap, TrapWait, trap_step)

static PyObject *
trap_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* A waiting task's coroutine holds this, and the trap holds the socket's
   queue, which holds the task: the collector must see the edge. */
static int
trap_traverse(TrapWait *w, visitproc visit, void *arg)
{
    Py_VISIT(w->trap);
    return 0;
}

static int
trap_clear(TrapWait *w)
{
    Py_CLEAR(w->trap);
    return 0;
}

static void
trap_dealloc(TrapWait *w)
{
    PyObject_GC_UnTrack(w);
    trap_clear(w);
    PyObject_GC_Del(w);
}

static PyMethodDef trap_methods[] = {
    {"send", (PyCFunction)trap_send, METH_O, "Resume the wait with trio's outcome."},
    {NULL}
};

static PyAsyncMethods trap_as_async = {
    .am_await = trap_await,
    .am_send = (sendfunc)trap_am_send,
};

static PyTypeObject TrapWaitType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asock_core.drivers.trio_hub.TrapWait",
    .tp_basicsize = sizeof(TrapWait),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One wait of a task on asock's trio hub: yields trio's trap, returns the outcome.",
    .tp_as_async = &trap_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)trap_iternext,
    .tp_methods = trap_methods,
    .tp_traverse = (traverseproc)trap_traverse,
    .tp_clear = (inquiry)trap_clear,
    .tp_dealloc = (destructor)trap_dealloc,
};

static PyObject *
trap_wait(PyObject *module, PyObject *trap)
{
    TrapWait *w = PyObject_GC_New(TrapWait, &TrapWaitType);
    if (w == NULL) {
        return NULL;
    }
    w->trap = Py_NewRef(trap);
    w->yielded = 0;
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

static PyMethodDef trap_wait_functions[] = {
    {"trap_wait", (PyCFunction)trap_wait, METH_O,
     "trap_wait(trap) -> awaitable\n\n"
     "Yield trio's trap to the scheduler once; return the unwrapped outcome trio resumes with."},
    {NULL}
};

int
trap_wait_init(PyObject *module)
{
    if ((str_unwrap = PyUnicode_InternFromString("unwrap")) == NULL) {
        return -1;
    }
    if (PyType_Ready(&TrapWaitType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, trap_wait_functions);
}
