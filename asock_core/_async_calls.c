/* The compiled twin of asock_core/async_calls.py: see that module.
 *
 * AsyncCalls gives the async front recv, recv_into, send, sendall, recvfrom
 * and sendto as methods that return an AsyncCall: an awaitable that makes the
 * operation layer's try-first call when it is first awaited, without a
 * Python frame. What it does, in order, is what the Python operations in
 * asock_core/operations.py do:
 *
 *   1. count the fairness budget, and when it runs out hand the whole call
 *      to operations.checkpoint_then (which yields, then runs the Python
 *      operation);
 *   2. attempt the call with MSG_DONTWAIT (MSG_NOSIGNAL for sends); recv,
 *      recv_into and send make the system call on the descriptor directly,
 *      so an attempt that would block costs no Python exception; so do
 *      recvfrom and sendto on an AF_INET socket (sendto for an address the
 *      stdlib would parse as the same numeric one; recvfrom returning the
 *      stdlib's (host, port), the same tuple again while the sender is);
 *   3. if it would block: raise BlockingIOError in non-blocking mode or with
 *      MSG_DONTWAIT; with a timeout, hand the rest to operations._retry,
 *      which owns the deadline (sendall: one send of everything, and what
 *      it leaves goes to operations.sendall_after); with no timeout, await the front's
 *      _wait(event, None) and attempt again after each wake-up, in the
 *      awaiting task, so a cancelled wait has taken nothing from the kernel.
 *
 * Anything unusual (keyword arguments, a non-int size or flags, a buffer the
 * stdlib would refuse, a zero size) goes to the Python operation itself, so
 * errors and messages are the stdlib's. The suite runs on both twins.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include "_socket_state.h"

#ifndef MSG_DONTWAIT
#define MSG_DONTWAIT 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

enum kind { K_RECV, K_RECV_INTO, K_SEND, K_RECVFROM, K_SENDTO, K_SENDALL };
enum stage { FRESH, WAITING, DELEGATING, DONE };

typedef struct {
    PyObject_HEAD
    SocketState *owner;
    PyObject *arg;      /* recv/recvfrom: bufsize; recv_into: buffer; send/sendto/sendall: data */
    PyObject *address;  /* sendto's address; NULL otherwise */
    PyObject *inner;    /* what is awaited now: a wait (WAITING) or the rest (DELEGATING) */
    Py_ssize_t size;    /* recv/recvfrom: bufsize; recv_into: nbytes (0: the buffer's); send/sendall: length */
    int flags;          /* the caller's flags */
    char kind;
    char stage;
    char running;   /* inside send/throw/close: a nested one is refused */
    char retrying;  /* waited once: the timeout was read at the first would-block */
} AsyncCall;

/* Linked from asock_core.operations by AsyncCalls._link. */
static PyObject *op_fallback[6];  /* recv, recv_into, send, recvfrom, sendto, sendall */
static PyObject *op_retry, *op_checkpoint_then, *op_sendall_after, *numeric_hosts;
static PyObject *event_read, *event_write;
/* This path's own fairness count (operations keeps the pure-Python one): a
   task that keeps succeeding still yields at least once every FAIRNESS_BUDGET
   of its calls on either path. */
static long fairness_budget = 128, budget = 128;
static int linked;

static PyObject *str_wait, *str_throw, *str_close, *str_bytes_sent;
static PyObject *str_recv, *str_recv_into, *str_send, *str_recvfrom, *str_sendto;
static PyTypeObject *stdlib_socket_type, *socket_socket_type;
/* Whether the stdlib socket object holds its descriptor as the first field
   after the object header (checked against fileno() when linking); without
   it, every attempt calls the stdlib socket's own method. */
static int direct_fd;
/* Whether its family follows the descriptor (checked the same way): then
   recvfrom and sendto on an AF_INET socket are direct system calls too. */
static int direct_family;

typedef struct {
    PyObject_HEAD
    int fd;
    int family;
} StdlibSocketHead;

static PyTypeObject AsyncCallType;
static Py_ssize_t buffer_length(PyObject *data, int writable);

/* obj.name, or *out = NULL (and 0) when there is no such attribute. */
static int
optional_attr(PyObject *obj, PyObject *name, PyObject **out)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, out);
#else
    return _PyObject_LookupAttr(obj, name, out);
#endif
}

static PyObject *
kind_name(int kind)
{
    switch (kind) {
    case K_RECV: return str_recv;
    case K_RECV_INTO: return str_recv_into;
    case K_SEND: return str_send;
    case K_RECVFROM: return str_recvfrom;
    case K_SENDTO: return str_sendto;
    default: return str_send;  /* sendall's attempt is one send */
    }
}

static int
kernel_flags(AsyncCall *c)
{
    int extra = c->kind >= K_SEND && c->kind != K_RECVFROM ? MSG_DONTWAIT | MSG_NOSIGNAL
                                                           : MSG_DONTWAIT;
    return c->flags | extra;
}

/* The call's arguments as new references in `stack`: (arg[, nbytes], flags[,
   address]); `with_flags` 0 leaves the flags out (sendto(data, address)).
   Returns how many, or -1. */
static Py_ssize_t
call_args(AsyncCall *c, int flags_value, int with_flags, PyObject **stack)
{
    Py_ssize_t n = 0;
    stack[n++] = Py_NewRef(c->arg);
    if (c->kind == K_RECV_INTO && (stack[n++] = PyLong_FromSsize_t(c->size)) == NULL) {
        n--;
        goto error;
    }
    if (with_flags && (stack[n++] = PyLong_FromLong(flags_value)) == NULL) {
        n--;
        goto error;
    }
    if (c->kind == K_SENDTO) {
        stack[n++] = Py_NewRef(c->address);
    }
    return n;
error:
    while (n > 0) {
        Py_DECREF(stack[--n]);
    }
    return -1;
}

/* The arguments of the stdlib call an attempt makes, as operations passes them. */
static Py_ssize_t
kernel_args(AsyncCall *c, PyObject **stack)
{
    return call_args(c, kernel_flags(c), 1, stack);
}

static void
release_args(PyObject **stack, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(stack[i]);
    }
}

/* A failed system call's outcome: NULL with *would_block set for EAGAIN,
   else NULL with OSError set from `err`. */
static PyObject *
failed(int err, int *would_block)
{
    if (err == EAGAIN || err == EWOULDBLOCK) {
        *would_block = 1;
        return NULL;
    }
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* recv(2) into a new bytes object of `size` (recvfrom(2) when `sender` is
   not NULL, filling it and *sender_len): the bytes, trimmed to what came;
   or NULL with an exception, or with *would_block set. */
static PyObject *
received_bytes(int fd, Py_ssize_t size, int flags, struct sockaddr_in *sender,
               socklen_t *sender_len, int *would_block)
{
    PyObject *buf = PyBytes_FromStringAndSize(NULL, size);
    if (buf == NULL) {
        return NULL;
    }
    ssize_t n;
    int err;
    for (;;) {
        if (sender != NULL) {
            *sender_len = sizeof *sender;
        }
        n = recvfrom(fd, PyBytes_AS_STRING(buf), (size_t)size, flags, (struct sockaddr *)sender,
                     sender_len);
        err = errno;  /* before anything that may change it */
        if (n >= 0 || err != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            Py_DECREF(buf);
            return NULL;
        }
    }
    if (n < 0) {
        Py_DECREF(buf);
        return failed(err, would_block);
    }
    if (n != size && _PyBytes_Resize(&buf, n) < 0) {
        return NULL;
    }
    return buf;
}

/* The system call itself, on the descriptor: bytes, an int, or NULL. */
static PyObject *
direct_attempt(AsyncCall *c, int fd, int *would_block)
{
    int flags = kernel_flags(c);
    ssize_t n;
    if (c->kind == K_RECV) {
        return received_bytes(fd, c->size, flags, NULL, NULL, would_block);
    }
    Py_buffer view;
    int writable = c->kind == K_RECV_INTO;
    if (PyObject_GetBuffer(c->arg, &view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t len = view.len;
    if (writable && c->size != 0) {
        if (c->size > view.len) {
            /* shrunk since the call was made: the stdlib's refusal */
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "buffer too small for requested bytes");
            return NULL;
        }
        len = c->size;
    }
    if (c->kind == K_SENDALL) {
        c->size = len;  /* what this send tries: a buffer may have grown since the call */
    }
    int err = 0;
    for (;;) {
        n = writable ? recv(fd, view.buf, (size_t)len, flags) : send(fd, view.buf, (size_t)len, flags);
        err = errno;  /* before the release, which may run Python code (PEP 688) */
        if (n >= 0 || err != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    PyBuffer_Release(&view);
    if (n < 0) {
        return failed(err, would_block);
    }
    return PyLong_FromSsize_t(n);
}

/* recvfrom's last sender and the address tuple made for it. A datagram
   socket mostly hears from one peer, and making the tuple (inet_ntop, a
   str, an int) is a good part of a datagram's cost; tuples are immutable,
   so handing out the same one again is safe. */
static struct sockaddr_in last_sender;
static PyObject *last_sender_address;

static PyObject *
sender_address(const struct sockaddr_in *sin)
{
    if (last_sender_address != NULL && sin->sin_port == last_sender.sin_port &&
        sin->sin_addr.s_addr == last_sender.sin_addr.s_addr) {
        return Py_NewRef(last_sender_address);
    }
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == NULL) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *address = Py_BuildValue("(si)", text, (int)ntohs(sin->sin_port));
    if (address != NULL) {
        last_sender = *sin;
        Py_XSETREF(last_sender_address, Py_NewRef(address));
    }
    return address;
}

/* The sockaddr the stdlib's parser makes of `address` on an AF_INET socket,
   when that is a plain one: a (str, int) tuple, a port in 0-65535 and a host
   inet_pton reads (which is the first thing the stdlib tries). 0 otherwise
   ("", "<broadcast>", a bad port: the stdlib's own call handles those). */
static int
plain_ipv4_address(PyObject *address, struct sockaddr_in *sin)
{
    if (PyTuple_GET_SIZE(address) != 2) {
        return 0;
    }
    PyObject *host = PyTuple_GET_ITEM(address, 0), *port_obj = PyTuple_GET_ITEM(address, 1);
    if (!PyUnicode_CheckExact(host) || !PyLong_CheckExact(port_obj)) {
        return 0;
    }
    long port = PyLong_AsLong(port_obj);
    Py_ssize_t size;
    const char *text = port < 0 || port > 65535 ? NULL : PyUnicode_AsUTF8AndSize(host, &size);
    if (text == NULL || (Py_ssize_t)strlen(text) != size) {
        PyErr_Clear();  /* an overflowing port, a host that is no UTF-8 or holds a NUL */
        return 0;
    }
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)port);
    return inet_pton(AF_INET, text, &sin->sin_addr) == 1;
}

/* recvfrom, or sendto to a plain address, on the AF_INET stdlib socket
   `sock` (descriptor `fd`), as the system call itself: as direct_attempt, or
   NULL with *declined set (and no exception) for an address the stdlib's own
   call must parse. sendto raises the stdlib's audit event, as its call does. */
static PyObject *
direct_datagram_attempt(AsyncCall *c, PyObject *sock, int fd, int *would_block, int *declined)
{
    int flags = kernel_flags(c);
    ssize_t n;
    int err;
    if (c->kind == K_RECVFROM) {
        struct sockaddr_in sin;
        socklen_t len;
        PyObject *buf = received_bytes(fd, c->size, flags, &sin, &len, would_block);
        if (buf == NULL) {
            return NULL;
        }
        /* No address (a connected stream socket's recvfrom) is None, as in the stdlib. */
        PyObject *address = len >= sizeof sin && sin.sin_family == AF_INET
                                ? sender_address(&sin)
                                : Py_NewRef(Py_None);
        if (address == NULL) {
            Py_DECREF(buf);
            return NULL;
        }
        PyObject *result = PyTuple_Pack(2, buf, address);
        Py_DECREF(buf);
        Py_DECREF(address);
        return result;
    }
    struct sockaddr_in sin;
    Py_buffer view;
    if (!plain_ipv4_address(c->address, &sin)) {
        *declined = 1;
        return NULL;
    }
    if (PyObject_GetBuffer(c->arg, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();  /* the stdlib's call raises its own TypeError */
        *declined = 1;
        return NULL;
    }
    if (PySys_Audit("socket.sendto", "OO", sock, c->address) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    for (;;) {
        n = sendto(fd, view.buf, (size_t)view.len, flags, (struct sockaddr *)&sin, sizeof sin);
        err = errno;
        if (n >= 0 || err != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    PyBuffer_Release(&view);
    if (n < 0) {
        return failed(err, would_block);
    }
    return PyLong_FromSsize_t(n);
}

/* One attempt: the call's value; or NULL with an exception; or NULL with
   *would_block set and no exception. */
static PyObject *
attempt(AsyncCall *c, int *would_block)
{
    PyObject *sock = c->owner->sock;
    *would_block = 0;
    if (sock == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_sock");
        return NULL;
    }
    /* Exactly the stdlib's classes: a subclass may have its own recv or send. */
    if (direct_fd && (Py_IS_TYPE(sock, stdlib_socket_type) || Py_IS_TYPE(sock, socket_socket_type))) {
        StdlibSocketHead *head = (StdlibSocketHead *)sock;
        if (c->kind <= K_SEND || c->kind == K_SENDALL) {
            return direct_attempt(c, head->fd, would_block);
        }
        if (direct_family && head->family == AF_INET) {
            int declined = 0;
            PyObject *value = direct_datagram_attempt(c, sock, head->fd, would_block, &declined);
            if (!declined) {
                return value;
            }
        }
    }
    if (c->kind == K_SENDALL) {
        /* what the send tries (the direct attempt measures it as it sends) */
        Py_ssize_t len = buffer_length(c->arg, 0);
        if (len >= 0) {
            c->size = len;
        }
    }
    PyObject *stack[4];
    Py_ssize_t n = kernel_args(c, stack + 1);
    if (n < 0) {
        return NULL;
    }
    stack[0] = sock;
    Py_INCREF(sock);
    PyObject *result = PyObject_VectorcallMethod(kind_name(c->kind), stack,
                                                 (n + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(sock);
    release_args(stack + 1, n);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_BlockingIOError)) {
        PyErr_Clear();
        *would_block = 1;
    }
    return result;
}

/* The iterator that awaiting `awaitable` steps (stolen reference). */
static PyObject *
awaited_iterator(PyObject *awaitable)
{
    if (PyCoro_CheckExact(awaitable) || PyGen_CheckExact(awaitable)) {
        return awaitable;
    }
    PyAsyncMethods *am = Py_TYPE(awaitable)->tp_as_async;
    if (am == NULL || am->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "_wait returned %.100s, which is not awaitable",
                     Py_TYPE(awaitable)->tp_name);
        Py_DECREF(awaitable);
        return NULL;
    }
    PyObject *it = am->am_await(awaitable);
    Py_DECREF(awaitable);
    return it;
}

static PySendResult after_inner(AsyncCall *c, PySendResult status, PyObject **result);

/* Hand the rest of the call to `coro` (a new reference, or NULL after an
   error), a Python coroutine whose outcome is the call's. */
static PySendResult
run_rest(AsyncCall *c, PyObject *coro, PyObject **result)
{
    if (coro == NULL || (c->inner = awaited_iterator(coro)) == NULL) {
        c->stage = DONE;
        return PYGEN_ERROR;
    }
    c->stage = DELEGATING;
    return after_inner(c, PyIter_Send(c->inner, Py_None, result), result);
}

/* run_rest with fn(owner, *prefix, *args): the attempt's kernel arguments,
   or (own_args) the arguments the call was made with. */
static PySendResult
delegate(AsyncCall *c, PyObject *fn, PyObject *const *prefix, Py_ssize_t nprefix, int own_args,
         PyObject **result)
{
    PyObject *stack[8];
    stack[0] = (PyObject *)c->owner;
    for (Py_ssize_t i = 0; i < nprefix; i++) {
        stack[1 + i] = prefix[i];
    }
    Py_ssize_t n = own_args ? call_args(c, c->flags, c->kind != K_SENDTO, stack + 1 + nprefix)
                            : kernel_args(c, stack + 1 + nprefix);
    if (n < 0) {
        c->stage = DONE;
        return PYGEN_ERROR;
    }
    PyObject *coro = PyObject_Vectorcall(fn, stack, 1 + nprefix + n, NULL);
    release_args(stack + 1 + nprefix, n);
    return run_rest(c, coro, result);
}

/* The exception being raised says how many bytes left (as operations does). */
static void
note_bytes_sent(Py_ssize_t sent)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    PyObject *count = PyLong_FromSsize_t(sent);
    if (count == NULL || value == NULL || PyObject_SetAttr(value, str_bytes_sent, count) < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(count);
    PyErr_Restore(type, value, traceback);
}

static int would_block_now(AsyncCall *c);

/* sendall: one send of all of it; what it leaves goes to operations.sendall_after. */
static PySendResult
sendall_step(AsyncCall *c, PyObject **result)
{
    int would_block;
    Py_ssize_t sent = 0;
    PyObject *value = attempt(c, &would_block);  /* sets c->size to what it tried */
    if (value != NULL) {
        sent = PyLong_AsSsize_t(value);
        Py_DECREF(value);
        if (sent == -1 && PyErr_Occurred()) {
            c->stage = DONE;
            return PYGEN_ERROR;
        }
        if (sent >= c->size) {
            c->stage = DONE;
            *result = Py_NewRef(Py_None);
            return PYGEN_RETURN;
        }
    }
    else if (!would_block || would_block_now(c)) {
        note_bytes_sent(0);
        c->stage = DONE;
        return PYGEN_ERROR;
    }
    PyObject *flags = PyLong_FromLong(c->flags);
    PyObject *count = flags ? PyLong_FromSsize_t(sent) : NULL;
    PyObject *coro = NULL;
    if (count != NULL) {
        PyObject *stack[4] = {(PyObject *)c->owner, c->arg, flags, count};
        coro = PyObject_Vectorcall(op_sendall_after, stack, 4, NULL);
    }
    Py_XDECREF(flags);
    Py_XDECREF(count);
    return run_rest(c, coro, result);
}

/* After an attempt would have blocked: whether the call raises instead of
   waiting (non-blocking mode, MSG_DONTWAIT); if so BlockingIOError is set. */
static int
would_block_now(AsyncCall *c)
{
    PyObject *timeout = c->owner->timeout;
    if (timeout == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_timeout");
        c->stage = DONE;
        return 1;
    }
    if ((PyFloat_CheckExact(timeout) && PyFloat_AS_DOUBLE(timeout) == 0.0) ||
        (c->flags & MSG_DONTWAIT)) {
        c->stage = DONE;
        errno = EAGAIN;
        PyErr_SetFromErrno(PyExc_OSError);
        return 1;
    }
    return 0;
}

/* Attempts until the call completes, raises, or has to wait. */
static PySendResult
attempt_or_wait(AsyncCall *c, PyObject **result)
{
    if (c->kind == K_SENDALL) {
        return sendall_step(c, result);
    }
    for (;;) {
        int would_block;
        PyObject *value = attempt(c, &would_block);
        if (value != NULL) {
            c->stage = DONE;
            *result = value;
            return PYGEN_RETURN;
        }
        if (!would_block) {
            c->stage = DONE;
            return PYGEN_ERROR;
        }
        PyObject *event = (c->kind == K_SEND || c->kind == K_SENDTO) ? event_write : event_read;
        /* The mode is read once, at the first attempt that would block, as the
           Python operation does: a settimeout() while the call waits does not
           change this call. */
        if (!c->retrying && would_block_now(c)) {
            return PYGEN_ERROR;
        }
        if (!c->retrying && c->owner->timeout != Py_None) {
            /* One deadline for the whole call: _retry owns the arithmetic. */
            if (c->owner->sock == NULL) {
                PyErr_SetString(PyExc_AttributeError, "_sock");
                c->stage = DONE;
                return PYGEN_ERROR;
            }
            PyObject *fn = PyObject_GetAttr(c->owner->sock, kind_name(c->kind));
            if (fn == NULL) {
                c->stage = DONE;
                return PYGEN_ERROR;
            }
            PyObject *prefix[2] = {event, fn};
            PySendResult status = delegate(c, op_retry, prefix, 2, 0, result);
            Py_DECREF(fn);
            return status;
        }
        PyObject *stack[3] = {(PyObject *)c->owner, event, Py_None};
        PyObject *awaitable = PyObject_VectorcallMethod(str_wait, stack,
                                                        3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (awaitable == NULL || (c->inner = awaited_iterator(awaitable)) == NULL) {
            c->stage = DONE;
            return PYGEN_ERROR;
        }
        c->stage = WAITING;
        c->retrying = 1;
        PySendResult status = PyIter_Send(c->inner, Py_None, result);
        if (status == PYGEN_NEXT) {
            return PYGEN_NEXT;
        }
        Py_CLEAR(c->inner);
        if (status == PYGEN_ERROR) {
            c->stage = DONE;
            return PYGEN_ERROR;
        }
        Py_CLEAR(*result);  /* woken at once (a closed socket): attempt again */
    }
}

/* What follows a step of `inner`: yield what it yields; after a wait,
   attempt again; after the delegated rest, its outcome is the call's. */
static PySendResult
after_inner(AsyncCall *c, PySendResult status, PyObject **result)
{
    if (status == PYGEN_NEXT) {
        return PYGEN_NEXT;
    }
    Py_CLEAR(c->inner);
    if (status == PYGEN_ERROR || c->stage == DELEGATING) {
        c->stage = DONE;
        return status;
    }
    Py_CLEAR(*result);  /* the wait's own value */
    return attempt_or_wait(c, result);
}

static PySendResult
step(AsyncCall *c, PyObject *arg, PyObject **result)
{
    switch (c->stage) {
    case FRESH:
        if (arg != Py_None) {
            c->stage = DONE;
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started coroutine");
            return PYGEN_ERROR;
        }
        if (--budget <= 0) {
            /* The yield comes before the system call, so a cancellation
               delivered there costs no data: checkpoint_then(owner, op, *the
               call's own arguments). */
            budget = fairness_budget;
            PyObject *op = op_fallback[(int)c->kind];
            return delegate(c, op_checkpoint_then, &op, 1, 1, result);
        }
        return attempt_or_wait(c, result);
    case WAITING:
    case DELEGATING:
        return after_inner(c, PyIter_Send(c->inner, arg, result), result);
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return PYGEN_ERROR;
    }
}

/* Every way in (send, __next__, throw, close) is refused while another is
   under way: inner must not be stepped, or dropped, while it runs. */
static int
refuse_nested(AsyncCall *c)
{
    if (c->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return 1;
    }
    return 0;
}

static PySendResult
call_step(AsyncCall *c, PyObject *arg, PyObject **result)
{
    *result = NULL;
    if (refuse_nested(c)) {
        return PYGEN_ERROR;
    }
    c->running = 1;
    PySendResult status = step(c, arg, result);
    c->running = 0;
    return status;
}

AWAITABLE_ENTRIES(call, AsyncCall, call_step)

/* Raise what throw() was given, checked as a generator's throw() checks it. */
static PyObject *
raise_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *type = args[0];
    PyObject *value = nargs > 1 ? args[1] : Py_None;
    PyObject *traceback = nargs > 2 ? args[2] : Py_None;
    if (traceback != Py_None && !PyTraceBack_Check(traceback)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionClass_Check(type)) {
        PyErr_SetObject(type, value);
    }
    else if (PyExceptionInstance_Check(type)) {
        if (value != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return NULL;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(type), type);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from BaseException, not %s",
                     Py_TYPE(type)->tp_name);
        return NULL;
    }
    if (traceback != Py_None) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        Py_XDECREF(tb);
        if (v != NULL) {
            PyException_SetTraceback(v, traceback);
        }
        PyErr_Restore(t, v, Py_NewRef(traceback));
    }
    return NULL;
}

/* Close inner (if it can be closed); 0 on success. */
static int
close_inner(PyObject *inner)
{
    PyObject *close = NULL;
    if (optional_attr(inner, str_close, &close) < 0) {
        return -1;
    }
    if (close == NULL) {
        return 0;  /* an iterator that cannot be closed: dropping it is all */
    }
    PyObject *result = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static PyObject *
throw_step(AsyncCall *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (c->stage != WAITING && c->stage != DELEGATING) {
        /* Not started (or over): the exception comes straight out, and the
           call is over without having made any system call. */
        c->stage = DONE;
        return raise_thrown(args, nargs);
    }
    PyObject *inner = c->inner;
    PyObject *throw = NULL;
    int is_exit = PyErr_GivenExceptionMatches(args[0], PyExc_GeneratorExit);
    if (!is_exit && optional_attr(inner, str_throw, &throw) < 0) {
        return NULL;
    }
    if (throw == NULL) {
        /* GeneratorExit closes what is awaited, as a generator's throw()
           does; an awaitable with no throw() is dropped. Then it is raised here. */
        c->inner = NULL;
        c->stage = DONE;
        int closed = is_exit ? close_inner(inner) : 0;
        Py_DECREF(inner);
        return closed < 0 ? NULL : raise_thrown(args, nargs);
    }
    PyObject *result = PyObject_Vectorcall(throw, args, nargs, NULL);
    Py_DECREF(throw);
    if (result != NULL) {
        return result;  /* inner caught it and waits again */
    }
    PySendResult status = PYGEN_ERROR;
    if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
        /* inner caught it and finished */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        result = Py_NewRef(((PyStopIterationObject *)value)->value);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        status = PYGEN_RETURN;
    }
    status = after_inner(c, status, &result);
    return as_method_result(status, result);
}

static PyObject *
call_throw(AsyncCall *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (refuse_nested(c)) {
        return NULL;
    }
    c->running = 1;
    PyObject *result = throw_step(c, args, nargs);
    c->running = 0;
    return result;
}

static PyObject *
call_close(AsyncCall *c, PyObject *unused)
{
    if (refuse_nested(c)) {
        return NULL;
    }
    c->stage = DONE;
    PyObject *inner = c->inner;
    c->inner = NULL;
    if (inner == NULL) {
        Py_RETURN_NONE;
    }
    c->running = 1;
    int closed = close_inner(inner);
    c->running = 0;
    Py_DECREF(inner);
    if (closed < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A call dropped before it was ever awaited warns, as a coroutine does. */
static void
call_finalize(AsyncCall *c)
{
    if (c->stage != FRESH) {
        return;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "coroutine '%U' was never awaited",
                         kind_name(c->kind)) < 0) {
        PyErr_WriteUnraisable((PyObject *)c);
    }
    PyErr_Restore(type, value, traceback);
}

static PyObject *
call_await(PyObject *self)
{
    return Py_NewRef(self);
}

static int
call_traverse(AsyncCall *c, visitproc visit, void *arg)
{
    Py_VISIT(c->owner);
    Py_VISIT(c->arg);
    Py_VISIT(c->address);
    Py_VISIT(c->inner);
    return 0;
}

static int
call_clear(AsyncCall *c)
{
    Py_CLEAR(c->owner);
    Py_CLEAR(c->arg);
    Py_CLEAR(c->address);
    Py_CLEAR(c->inner);
    return 0;
}

static void
call_dealloc(AsyncCall *c)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)c) < 0) {
        return;  /* resurrected by a warning filter */
    }
    PyObject_GC_UnTrack(c);
    call_clear(c);
    PyObject_GC_Del(c);
}

static PyMethodDef call_methods[] = {
    {"send", (PyCFunction)call_send, METH_O, "Resume the call with a value (as coroutines do)."},
    {"throw", (PyCFunction)(void (*)(void))call_throw, METH_FASTCALL,
     "Raise an exception inside the call (as coroutines do)."},
    {"close", (PyCFunction)call_close, METH_NOARGS, "End the call where it stands."},
    {NULL}
};

static PyAsyncMethods call_as_async = {
    .am_await = call_await,
    .am_send = (sendfunc)call_am_send,
};

static PyTypeObject AsyncCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asock_core.async_calls.AsyncCall",
    .tp_basicsize = sizeof(AsyncCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One awaitable socket call of the async front (a collections.abc.Coroutine).",
    .tp_traverse = (traverseproc)call_traverse,
    .tp_clear = (inquiry)call_clear,
    .tp_dealloc = (destructor)call_dealloc,
    .tp_as_async = &call_as_async,
    .tp_iter = PyObject_SelfIter,  /* `yield from` in a generator-based coroutine */
    .tp_iternext = (iternextfunc)call_iternext,
    .tp_finalize = (destructor)call_finalize,
    .tp_methods = call_methods,
};

static PyObject *
new_call(SocketState *owner, int kind, PyObject *arg, Py_ssize_t size, int flags,
         PyObject *address)
{
    AsyncCall *c = PyObject_GC_New(AsyncCall, &AsyncCallType);
    if (c == NULL) {
        return NULL;
    }
    c->owner = (SocketState *)Py_NewRef(owner);
    c->arg = Py_NewRef(arg);
    c->address = Py_XNewRef(address);
    c->inner = NULL;
    c->size = size;
    c->flags = flags;
    c->kind = (char)kind;
    c->stage = FRESH;
    c->running = 0;
    c->retrying = 0;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* The Python operation, for every call the fast path does not take. */
static PyObject *
fallback(int kind, SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (!linked) {
        PyErr_SetString(PyExc_RuntimeError, "asock_core.async_calls is not linked");
        return NULL;
    }
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **stack = total + 1 <= 8 ? small : PyMem_New(PyObject *, total + 1);
    if (stack == NULL) {
        return PyErr_NoMemory();
    }
    stack[0] = (PyObject *)self;
    for (Py_ssize_t i = 0; i < total; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *result = PyObject_Vectorcall(op_fallback[kind], stack, nargs + 1, kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return result;
}

/* A positive Py_ssize_t from an exact int; 0 if it is anything else. */
static Py_ssize_t
exact_size(PyObject *value)
{
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    Py_ssize_t size = PyLong_AsSsize_t(value);
    if (size == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return size > 0 ? size : 0;
}

/* Flags from an exact int that fits a C int; 0 on success, -1 if not. */
static int
exact_flags(PyObject *value, int *flags)
{
    if (!PyLong_CheckExact(value)) {
        return -1;
    }
    long v = PyLong_AsLong(value);
    if ((v == -1 && PyErr_Occurred()) || v < INT_MIN || v > INT_MAX) {
        PyErr_Clear();
        return -1;
    }
    *flags = (int)v;
    return 0;
}

/* Whether `data` exports a buffer as the stdlib's call would take it. */
static Py_ssize_t
buffer_length(PyObject *data, int writable)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t len = view.len;
    PyBuffer_Release(&view);
    return len;
}

/* recv(bufsize[, flags]) and recvfrom(bufsize[, flags]) take the same arguments. */
static PyObject *
sized_call(int kind, SocketState *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    int flags = 0;
    Py_ssize_t size;
    if (!linked || kwnames != NULL || nargs < 1 || nargs > 2 || (size = exact_size(args[0])) == 0 ||
        (nargs == 2 && exact_flags(args[1], &flags) < 0)) {
        return fallback(kind, self, args, nargs, kwnames);
    }
    return new_call(self, kind, args[0], size, flags, NULL);
}

static PyObject *
calls_recv(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return sized_call(K_RECV, self, args, nargs, kwnames);
}

static PyObject *
calls_recvfrom(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return sized_call(K_RECVFROM, self, args, nargs, kwnames);
}

static PyObject *
calls_recv_into(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int flags = 0;
    Py_ssize_t nbytes = 0, len;
    if (!linked || kwnames != NULL || nargs < 1 || nargs > 3 ||
        (len = buffer_length(args[0], 1)) <= 0 ||
        (nargs >= 2 && ((nbytes = exact_size(args[1])) == 0 || nbytes > len)) ||
        (nargs == 3 && exact_flags(args[2], &flags) < 0)) {
        return fallback(K_RECV_INTO, self, args, nargs, kwnames);
    }
    return new_call(self, K_RECV_INTO, args[0], nbytes, flags, NULL);
}

/* send(data[, flags]) and sendall(data[, flags]) take the same arguments. */
static PyObject *
data_call(int kind, SocketState *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    int flags = 0;
    Py_ssize_t len;
    if (!linked || kwnames != NULL || nargs < 1 || nargs > 2 ||
        (len = buffer_length(args[0], 0)) <= 0 ||
        (nargs == 2 && exact_flags(args[1], &flags) < 0)) {
        return fallback(kind, self, args, nargs, kwnames);
    }
    return new_call(self, kind, args[0], len, flags, NULL);
}

static PyObject *
calls_send(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return data_call(K_SEND, self, args, nargs, kwnames);
}

static PyObject *
calls_sendall(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return data_call(K_SENDALL, self, args, nargs, kwnames);
}

static PyObject *
calls_sendto(SocketState *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* sendto(data, address) to a numeric host seen before, as the Python
       operation's own fast path takes it; the rest (flags, a host name, a
       UNIX path) goes to the Python operation. */
    if (!linked || kwnames != NULL || nargs != 2 || !PyTuple_CheckExact(args[1]) ||
        PyTuple_GET_SIZE(args[1]) == 0) {
        return fallback(K_SENDTO, self, args, nargs, kwnames);
    }
    int known = PySet_Contains(numeric_hosts, PyTuple_GET_ITEM(args[1], 0));
    if (known <= 0) {
        PyErr_Clear();
        return fallback(K_SENDTO, self, args, nargs, kwnames);
    }
    return new_call(self, K_SENDTO, args[0], 0, 0, args[1]);
}

/* Whether a stdlib socket of `family` holds its descriptor as the first
   field after the header (*with_family: and its family as the next). */
static int
check_direct_fd(int family, int *with_family)
{
    *with_family = 0;
    PyObject *sock = PyObject_CallFunction((PyObject *)stdlib_socket_type, "iii", family,
                                           SOCK_DGRAM, 0);
    if (sock == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *fileno = PyObject_CallMethod(sock, "fileno", NULL);
    int ok = 0;
    if (fileno != NULL) {
        long fd = PyLong_AsLong(fileno);
        ok = fd >= 0 && fd == ((StdlibSocketHead *)sock)->fd;
        *with_family = ok && ((StdlibSocketHead *)sock)->family == family;
        Py_DECREF(fileno);
    }
    PyErr_Clear();
    PyObject *closed = PyObject_CallMethod(sock, "close", NULL);
    Py_XDECREF(closed);
    PyErr_Clear();
    Py_DECREF(sock);
    return ok;
}

static PyObject *
calls_link(PyObject *cls, PyObject *operations)
{
    static const char *names[6] = {"recv", "recv_into", "send", "recvfrom", "sendto", "sendall"};
    PyObject *budget_obj = NULL;
    for (int i = 0; i < 6; i++) {
        Py_XSETREF(op_fallback[i], PyObject_GetAttrString(operations, names[i]));
        if (op_fallback[i] == NULL) {
            return NULL;
        }
    }
    Py_XSETREF(op_retry, PyObject_GetAttrString(operations, "_retry"));
    Py_XSETREF(op_checkpoint_then, PyObject_GetAttrString(operations, "checkpoint_then"));
    Py_XSETREF(op_sendall_after, PyObject_GetAttrString(operations, "sendall_after"));
    Py_XSETREF(numeric_hosts, PyObject_GetAttrString(operations, "_numeric_hosts"));
    Py_XSETREF(event_read, PyObject_GetAttrString(operations, "READ"));
    Py_XSETREF(event_write, PyObject_GetAttrString(operations, "WRITE"));
    budget_obj = PyObject_GetAttrString(operations, "FAIRNESS_BUDGET");
    if (op_retry == NULL || op_checkpoint_then == NULL || op_sendall_after == NULL ||
        numeric_hosts == NULL ||
        event_read == NULL || event_write == NULL || budget_obj == NULL) {
        Py_XDECREF(budget_obj);
        return NULL;
    }
    if (!PySet_Check(numeric_hosts)) {
        Py_DECREF(budget_obj);
        PyErr_SetString(PyExc_TypeError, "operations._numeric_hosts must be a set");
        return NULL;
    }
    fairness_budget = budget = PyLong_AsLong(budget_obj);
    Py_DECREF(budget_obj);
    if (fairness_budget == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *socket_module = PyImport_ImportModule("_socket");
    if (socket_module == NULL) {
        return NULL;
    }
    PyObject *type = PyObject_GetAttrString(socket_module, "socket");
    Py_DECREF(socket_module);
    if (type == NULL) {
        return NULL;
    }
    if (!PyType_Check(type)) {
        Py_DECREF(type);
        PyErr_SetString(PyExc_TypeError, "_socket.socket is not a type");
        return NULL;
    }
    Py_XSETREF(stdlib_socket_type, (PyTypeObject *)type);
    PyObject *socket_py = PyImport_ImportModule("socket");
    if (socket_py == NULL) {
        return NULL;
    }
    type = PyObject_GetAttrString(socket_py, "socket");
    Py_DECREF(socket_py);
    if (type == NULL) {
        return NULL;
    }
    if (!PyType_Check(type)) {
        Py_DECREF(type);
        PyErr_SetString(PyExc_TypeError, "socket.socket is not a type");
        return NULL;
    }
    Py_XSETREF(socket_socket_type, (PyTypeObject *)type);
    int unix_family, inet_family;
    direct_fd = check_direct_fd(AF_UNIX, &unix_family);
    direct_family = direct_fd && unix_family && check_direct_fd(AF_INET, &inet_family) &&
                    inet_family;
    linked = 1;
    return PyBool_FromLong(direct_fd);
}

static PyMethodDef calls_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))calls_recv, METH_FASTCALL | METH_KEYWORDS,
     "recv(bufsize[, flags]) -> awaitable bytes\n\n"
     "Receive up to bufsize bytes; b\"\" once the peer has closed. Waits until\n"
     "data or EOF arrives, as the timeout allows: raises BlockingIOError in\n"
     "non-blocking mode or with MSG_DONTWAIT, TimeoutError when the timeout\n"
     "expires, OSError otherwise."},
    {"recv_into", (PyCFunction)(void (*)(void))calls_recv_into, METH_FASTCALL | METH_KEYWORDS,
     "recv_into(buffer[, nbytes[, flags]]) -> awaitable int\n\n"
     "Receive into buffer; return the number of bytes received. Waits like recv."},
    {"recvfrom", (PyCFunction)(void (*)(void))calls_recvfrom, METH_FASTCALL | METH_KEYWORDS,
     "recvfrom(bufsize[, flags]) -> awaitable (bytes, address)\n\n"
     "Receive up to bufsize bytes and the sender's address. Waits like recv."},
    {"send", (PyCFunction)(void (*)(void))calls_send, METH_FASTCALL | METH_KEYWORDS,
     "send(data[, flags]) -> awaitable int\n\n"
     "Send what fits of data; return the number of bytes sent. Waits until at\n"
     "least one byte fits, as the timeout allows: raises BlockingIOError in\n"
     "non-blocking mode or with MSG_DONTWAIT, TimeoutError when the timeout\n"
     "expires, OSError (e.g. BrokenPipeError) otherwise."},
    {"sendall", (PyCFunction)(void (*)(void))calls_sendall, METH_FASTCALL | METH_KEYWORDS,
     "sendall(data[, flags]) -> awaitable None\n\n"
     "Send all of data, waiting as often as needed within one deadline. Raises\n"
     "BlockingIOError in non-blocking mode (or with MSG_DONTWAIT) when it does\n"
     "not fit, TimeoutError past the deadline, OSError if the connection fails;\n"
     "the exception carries bytes_sent."},
    {"sendto", (PyCFunction)(void (*)(void))calls_sendto, METH_FASTCALL | METH_KEYWORDS,
     "sendto(data[, flags], address) -> awaitable int\n\n"
     "Send a datagram to address (a host name is looked up first, off the\n"
     "event loop). Waits and raises like send."},
    {"_link", (PyCFunction)calls_link, METH_O | METH_CLASS,
     "Take the Python operations this twin hands unusual calls to; True when\n"
     "attempts make the system call on the descriptor directly."},
    {NULL}
};

static PyTypeObject AsyncCallsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asock_core.async_calls.AsyncCalls",
    .tp_basicsize = sizeof(SocketState),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "recv, recv_into, recvfrom, send, sendall and sendto for the async front.",
    .tp_methods = calls_methods,
};

int
async_calls_init(PyObject *module, PyTypeObject *state)
{
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return -1
    INTERN(str_wait, "_wait");
    INTERN(str_throw, "throw");
    INTERN(str_close, "close");
    INTERN(str_bytes_sent, "bytes_sent");
    INTERN(str_recv, "recv");
    INTERN(str_recv_into, "recv_into");
    INTERN(str_send, "send");
    INTERN(str_recvfrom, "recvfrom");
    INTERN(str_sendto, "sendto");
#undef INTERN
    if (PyType_Ready(&AsyncCallType) < 0) {
        return -1;
    }
    AsyncCallsType.tp_base = state;
    AsyncCallsType.tp_traverse = state->tp_traverse;
    AsyncCallsType.tp_clear = state->tp_clear;
    if (PyType_Ready(&AsyncCallsType) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "AsyncCalls", (PyObject *)&AsyncCallsType) < 0 ||
        PyModule_AddObjectRef(module, "AsyncCall", (PyObject *)&AsyncCallType) < 0) {
        return -1;
    }
    return 0;
}
