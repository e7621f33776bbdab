/* The compiled twin of asock_core/kernel_calls.py: see that module.
 *
 * SocketState holds the four fields the sync front's blocking-mode calls
 * read (as a C struct, so reading them costs no attribute look-up), and
 * KernelCalls the calls a blocking program makes most: recv, recv_into,
 * recvfrom, send, sendall and sendto. In blocking mode each counts itself in, makes the
 * stdlib socket's own call (which blocks in the kernel, one system call),
 * counts itself out and reports a close() that happened meanwhile. Anything
 * else (a timeout, non-blocking mode, a descriptor another thread made
 * non-blocking) goes to the front's Python method that waits through the
 * operation layer. The Python twin in kernel_calls.py does the same, line
 * for line; the test suite runs on both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <sys/socket.h>

#include "_socket_state.h"

static PyObject *str_recv, *str_recv_into, *str_send, *str_recvfrom, *str_sendto;
static PyObject *str_recv_waiting, *str_recv_into_waiting, *str_send_waiting;
static PyObject *str_recvfrom_waiting, *str_sendto_waiting;
static PyObject *str_leave_closed, *str_sendall_waiting, *str_bytes_sent;
static PyObject *nosignal_flag;
static long dontwait_flag;

static int
state_traverse(SocketState *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sock);
    Py_VISIT(self->timeout);
    return 0;
}

static int
state_clear(SocketState *self)
{
    Py_CLEAR(self->sock);
    Py_CLEAR(self->timeout);
    return 0;
}

static void
state_dealloc(SocketState *self)
{
    /* The fronts' subclasses are heap types: their own dealloc runs __del__,
       clears their slots and drops the type; this frees the C fields. */
    PyObject_GC_UnTrack(self);
    state_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
state_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    SocketState *self = (SocketState *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->timeout = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static PyMemberDef state_members[] = {
    {"_sock", T_OBJECT_EX, offsetof(SocketState, sock), 0, "The stdlib socket underneath."},
    {"_timeout", T_OBJECT, offsetof(SocketState, timeout), 0, "The socket's own timeout."},
    {"_busy", T_PYSSIZET, offsetof(SocketState, busy), 0, "Calls under way (sync front)."},
    {"_closing", T_BOOL, offsetof(SocketState, closing), 0, "Whether close() has begun."},
    {NULL}
};

/* The front's method that waits through the operation layer. */
static PyObject *
call_waiting(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    PyObject *stack[8];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw + 1 > 8) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return NULL;
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) {
        stack[i + 1] = args[i];
    }
    return PyObject_VectorcallMethod(name, stack, (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                     kwnames);
}

/* One blocking-mode call: counted in, made by the stdlib socket, counted out. */
static PyObject *
kernel_call(SocketState *self, PyObject *method, PyObject *waiting, PyObject *const *args,
            Py_ssize_t nargs, PyObject *kwnames, int add_nosignal)
{
    if (self->timeout != Py_None || self->sock == NULL) {
        return call_waiting((PyObject *)self, waiting, args, nargs, kwnames);
    }
    PyObject *stack[8];
    PyObject *flags = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t n = nargs;
    if (nargs + nkw + 2 > 8) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return NULL;
    }
    stack[0] = self->sock;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) {
        stack[i + 1] = args[i];
    }
    if (add_nosignal && nkw == 0) {
        /* send(data[, flags]): flags plus MSG_NOSIGNAL; a non-int is left for
           the stdlib to reject. */
        if (nargs == 1) {
            stack[2] = nosignal_flag;
            n = 2;
        }
        else if (nargs == 2 && PyLong_CheckExact(args[1])) {
            flags = PyNumber_Or(args[1], nosignal_flag);
            if (flags == NULL) {
                return NULL;
            }
            stack[2] = flags;
        }
    }
    PyObject *sock = Py_NewRef(self->sock);
    self->busy++;
    PyObject *result = NULL;
    if (!self->closing) {
        result = PyObject_VectorcallMethod(method, stack, (n + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                           kwnames);
    }
    self->busy--;
    Py_DECREF(sock);
    Py_XDECREF(flags);
    if (self->closing) {
        /* Closed during (or before) the call: _leave_closed closes the
           descriptor if this was the last call out, and raises EBADF. */
        Py_XDECREF(result);
        PyErr_Clear();
        return PyObject_CallMethodNoArgs((PyObject *)self, str_leave_closed);
    }
    if (result == NULL && PyErr_ExceptionMatches(PyExc_BlockingIOError)) {
        /* Another thread made the descriptor non-blocking meanwhile. */
        PyErr_Clear();
        return call_waiting((PyObject *)self, waiting, args, nargs, kwnames);
    }
    return result;
}

static PyObject *
calls_recv(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return kernel_call(self, str_recv, str_recv_waiting, args, nargs, kwnames, 0);
}

static PyObject *
calls_recv_into(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return kernel_call(self, str_recv_into, str_recv_into_waiting, args, nargs, kwnames, 0);
}

static PyObject *
calls_send(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return kernel_call(self, str_send, str_send_waiting, args, nargs, kwnames, 1);
}

static PyObject *
calls_recvfrom(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return kernel_call(self, str_recvfrom, str_recvfrom_waiting, args, nargs, kwnames, 0);
}

static PyObject *
calls_sendto(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* sendto(data, address) with an address tuple, in blocking mode: the
       stdlib's sendto(data, MSG_NOSIGNAL, address); any other form waits. */
    if (self->timeout == Py_None && kwnames == NULL && nargs == 2 && PyTuple_CheckExact(args[1])) {
        PyObject *three[3] = {args[0], nosignal_flag, args[1]};
        return kernel_call(self, str_sendto, str_sendto_waiting, three, 3, NULL, 0);
    }
    return call_waiting((PyObject *)self, str_sendto_waiting, args, nargs, kwnames);
}

/* The front's _sendall_waiting(data, flags, sent), flags 0 when not given. */
static PyObject *
sendall_waiting(SocketState *self, PyObject *data, PyObject *flags, Py_ssize_t sent)
{
    PyObject *count = PyLong_FromSsize_t(sent);
    if (count == NULL) {
        return NULL;
    }
    PyObject *zero = NULL;
    if (flags == NULL) {
        flags = zero = PyLong_FromLong(0);
        if (zero == NULL) {
            Py_DECREF(count);
            return NULL;
        }
    }
    PyObject *stack[4] = {(PyObject *)self, data, flags, count};
    PyObject *done = PyObject_VectorcallMethod(str_sendall_waiting, stack,
                                               4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_XDECREF(zero);
    Py_DECREF(count);
    return done;
}

/* self._leave_closed(sent): closes the descriptor if last out, raises EBADF. */
static PyObject *
leave_closed(SocketState *self, Py_ssize_t sent)
{
    PyObject *count = PyLong_FromSsize_t(sent);
    if (count == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallMethodOneArg((PyObject *)self, str_leave_closed, count);
    Py_DECREF(count);
    return result;
}

/* sendall(data[, flags]): in blocking mode, for bytes and bytearray, one send
   that blocks in the kernel until all of it is queued, as the stdlib's
   sendall does; the rest (a signal, a mode switch) goes to _sendall_waiting. */
static PyObject *
calls_sendall(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL || nargs < 1 || nargs > 2) {
        /* The front's signature reports the bad call. */
        return call_waiting((PyObject *)self, str_sendall_waiting, args, nargs, kwnames);
    }
    PyObject *data = args[0];
    PyObject *user_flags = nargs == 2 ? args[1] : NULL;
    int fast = self->timeout == Py_None && self->sock != NULL &&
               (PyBytes_CheckExact(data) || PyByteArray_CheckExact(data));
    if (fast && user_flags != NULL) {
        if (!PyLong_CheckExact(user_flags)) {
            fast = 0;
        }
        else {
            long value = PyLong_AsLong(user_flags);
            if (value == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                fast = 0;
            }
            else if (value & dontwait_flag) {
                fast = 0;
            }
        }
    }
    if (!fast) {
        return sendall_waiting(self, data, user_flags, 0);
    }
    Py_ssize_t total = PyBytes_CheckExact(data) ? PyBytes_GET_SIZE(data) : PyByteArray_GET_SIZE(data);
    PyObject *flags = user_flags ? PyNumber_Or(user_flags, nosignal_flag) : Py_NewRef(nosignal_flag);
    if (flags == NULL) {
        return NULL;
    }
    PyObject *sock = Py_NewRef(self->sock);
    PyObject *stack[3] = {sock, data, flags};
    PyObject *result = NULL;
    self->busy++;
    if (!self->closing) {
        result = PyObject_VectorcallMethod(str_send, stack, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    self->busy--;
    Py_DECREF(sock);
    Py_DECREF(flags);
    Py_ssize_t sent = 0;
    if (result != NULL) {
        sent = PyLong_AsSsize_t(result);
        Py_DECREF(result);
        if (sent == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_BlockingIOError) && !self->closing) {
            PyErr_Clear(); /* another thread made the descriptor non-blocking meanwhile */
        }
        else {
            PyObject *type, *value, *traceback;
            PyErr_Fetch(&type, &value, &traceback);
            PyErr_NormalizeException(&type, &value, &traceback);
            if (value != NULL) {
                PyObject *zero = PyLong_FromLong(0);
                if (zero == NULL || PyObject_SetAttr(value, str_bytes_sent, zero) < 0) {
                    PyErr_Clear();
                }
                Py_XDECREF(zero);
            }
            if (self->closing) {
                Py_XDECREF(type);
                Py_XDECREF(value);
                Py_XDECREF(traceback);
                return leave_closed(self, 0);
            }
            PyErr_Restore(type, value, traceback);
            return NULL;
        }
    }
    if (self->closing) {
        return leave_closed(self, sent);
    }
    if (sent >= total) {
        Py_RETURN_NONE;
    }
    return sendall_waiting(self, data, user_flags, sent);
}

static PyMethodDef calls_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))calls_recv, METH_FASTCALL | METH_KEYWORDS,
     "recv(bufsize[, flags]) -> bytes\n\n"
     "Receive up to bufsize bytes; b\"\" once the peer has closed. Blocks until\n"
     "data or EOF arrives, as the timeout allows: raises BlockingIOError in\n"
     "non-blocking mode or with MSG_DONTWAIT, TimeoutError when the timeout\n"
     "expires, OSError otherwise (EBADF if closed meanwhile)."},
    {"recv_into", (PyCFunction)(void (*)(void))calls_recv_into, METH_FASTCALL | METH_KEYWORDS,
     "recv_into(buffer[, nbytes[, flags]]) -> int\n\n"
     "Receive into buffer; return the number of bytes received. Blocks like recv."},
    {"sendall", (PyCFunction)(void (*)(void))calls_sendall, METH_FASTCALL | METH_KEYWORDS,
     "sendall(data[, flags]) -> None\n\n"
     "Send all of data; the timeout bounds the whole call. The exception that\n"
     "ends it early carries bytes_sent."},
    {"recvfrom", (PyCFunction)(void (*)(void))calls_recvfrom, METH_FASTCALL | METH_KEYWORDS,
     "recvfrom(bufsize[, flags]) -> (bytes, address)\n\n"
     "Receive up to bufsize bytes and the sender's address. Blocks like recv."},
    {"sendto", (PyCFunction)(void (*)(void))calls_sendto, METH_FASTCALL | METH_KEYWORDS,
     "sendto(data[, flags], address) -> int\n\n"
     "Send data to address; return the number of bytes sent. Blocks like send."},
    {"send", (PyCFunction)(void (*)(void))calls_send, METH_FASTCALL | METH_KEYWORDS,
     "send(data[, flags]) -> int\n\n"
     "Send what fits of data; return the number of bytes sent (never 0). Blocks\n"
     "until at least one byte fits, as the timeout allows: raises BlockingIOError\n"
     "in non-blocking mode or with MSG_DONTWAIT, TimeoutError when the timeout\n"
     "expires, OSError (e.g. BrokenPipeError) otherwise."},
    {NULL}
};

static PyTypeObject SocketStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asock_core.kernel_calls.SocketState",
    .tp_basicsize = sizeof(SocketState),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The fields a socket's calls read: _sock, _timeout, _busy, _closing.",
    .tp_traverse = (traverseproc)state_traverse,
    .tp_clear = (inquiry)state_clear,
    .tp_dealloc = (destructor)state_dealloc,
    .tp_new = state_new,
    .tp_members = state_members,
};

static PyTypeObject KernelCallsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asock_core.kernel_calls.KernelCalls",
    .tp_basicsize = sizeof(SocketState),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "recv, recv_into, recvfrom, send, sendall and sendto for the sync front's blocking mode.",
    .tp_traverse = (traverseproc)state_traverse,
    .tp_clear = (inquiry)state_clear,
    .tp_methods = calls_methods,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "asock_core._speedups",
    .m_doc = "The compiled twins of asock_core.kernel_calls and asock_core.async_calls.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(str_recv, "recv");
    INTERN(str_recv_into, "recv_into");
    INTERN(str_send, "send");
    INTERN(str_recvfrom, "recvfrom");
    INTERN(str_sendto, "sendto");
    INTERN(str_recvfrom_waiting, "_recvfrom_waiting");
    INTERN(str_sendto_waiting, "_sendto_waiting");
    INTERN(str_recv_waiting, "_recv_waiting");
    INTERN(str_recv_into_waiting, "_recv_into_waiting");
    INTERN(str_send_waiting, "_send_waiting");
    INTERN(str_leave_closed, "_leave_closed");
    INTERN(str_sendall_waiting, "_sendall_waiting");
    INTERN(str_bytes_sent, "bytes_sent");
#undef INTERN
#ifdef MSG_DONTWAIT
    dontwait_flag = MSG_DONTWAIT;
#endif
#ifdef MSG_NOSIGNAL
    nosignal_flag = PyLong_FromLong(MSG_NOSIGNAL);
#else
    nosignal_flag = PyLong_FromLong(0);
#endif
    if (nosignal_flag == NULL) {
        return NULL;
    }
    if (PyType_Ready(&SocketStateType) < 0) {
        return NULL;
    }
    KernelCallsType.tp_base = &SocketStateType;
    if (PyType_Ready(&KernelCallsType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "SocketState", (PyObject *)&SocketStateType) < 0 ||
        PyModule_AddObjectRef(m, "KernelCalls", (PyObject *)&KernelCallsType) < 0 ||
        async_calls_init(m, &SocketStateType) < 0 || trap_wait_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
