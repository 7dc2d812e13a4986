/*
 * poll.c: readiness of the TAP fd on the main loop, and the exit-fd watcher.
 *
 * Poller (pollStart/pollSetEvents/pollStop/pollClose/pollRef)
 * ------------------------------------------------------------
 * A uv_poll_t on Node's own loop (napi_get_uv_event_loop). On readiness it
 * calls the JS callback once; the callback drains the fd with readBatch. So a
 * wake-up costs two JS<->C crossings (~30 ns each) and no thread hop: a
 * threadsafe function would cost ~2.6 µs per call (docs/architecture.md, Measured techniques).
 *
 * The TAP and the ping sockets only ever ask for UV_READABLE. The host TCP
 * streams (stream.c, src/nat/native-stream.ts) also wait for UV_WRITABLE, and
 * drop UV_READABLE while paused: pollSetEvents changes the mask of a running
 * poller, and a mask of 0 stops the uv handle without closing it (a stopped
 * uv_poll does not keep the loop alive). libuv stops the handle by itself
 * when it reports POLLERR (status UV_EBADF, events 0); pollSetEvents starts it
 * again.
 * The callback runs through napi_make_callback under an async context, so
 * microtasks run after it and async_hooks/AsyncLocalStorage see a resource.
 *
 * Lifetime: the context is shared by the uv handle and the JS handle (an
 * external) and freed when both are done: the uv handle after uv_close's
 * callback, the external when it is garbage collected. A stop requested from
 * inside the JS callback (a link closing itself) is finished after
 * napi_make_callback returns, because the async context must not be destroyed
 * while the callback scope that uses it is still open.
 *
 * watchHangup
 * -----------
 * slirp4netns's --exit-fd: the parent of slirp4netns keeps the write end of a
 * pipe and closes it (or dies) to stop us. slirp4netns polls that fd with
 * events = POLLHUP, which the kernel treats as 0 requested events: POLLHUP,
 * POLLERR and POLLNVAL are always reported, POLLIN never. So data written into
 * the pipe does not stop it, a closed write end does, and an fd that is not
 * open (POLLNVAL) stops it at once. uv_poll cannot express "no events" and
 * reports a closed fd as an error in other ways, so a small thread does
 * exactly slirp4netns's poll() and hands the event to JS through a threadsafe
 * function (one call per process lifetime: its cost does not matter).
 *
 * The tsfn is unref'd: the watcher alone must not keep Node alive (the TAP
 * poller does that). Stopping writes to an eventfd that the thread also polls;
 * the tsfn's finalizer (on the main thread, after the thread released it)
 * joins the thread and closes the eventfd.
 */
#include "addon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

/* ------------------------------------------------------------------------- */
/* Poller */

struct poller {
  uv_poll_t handle; /* first member: the uv callbacks cast back */
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  bool in_callback;
  bool hook_registered; /* env cleanup hook (worker teardown) */
  bool stop_requested;  /* pollStop called (idempotence) */
  bool released;        /* JS resources released, uv_close issued */
  bool uv_closed;       /* uv_close callback ran */
  bool external_gone;   /* the JS external was finalized */
  int close_fd;         /* pollClose: the fd to close once libuv has dropped it, else -1 */
  bool close_reset;     /* ... with SO_LINGER 0 */
};

static void poller_maybe_free(struct poller *p) {
  if (p->uv_closed && p->external_gone) free(p);
}

static void poller_on_close(uv_handle_t *h) {
  struct poller *p = (struct poller *)h;
  p->uv_closed = true;
  poller_maybe_free(p);
}

static void poller_cleanup_hook(void *arg);

/* Drops the JS callback and async context and closes the uv handle. Main
 * thread, never while napi_make_callback for this poller is on the stack. */
static void poller_release(struct poller *p) {
  if (p->released) return;
  p->released = true;
  if (p->hook_registered) napi_remove_env_cleanup_hook(p->env, poller_cleanup_hook, p);
  p->hook_registered = false;
  if (p->callback != NULL) napi_delete_reference(p->env, p->callback);
  if (p->async != NULL) napi_async_destroy(p->env, p->async);
  p->callback = NULL;
  p->async = NULL;
  uv_close((uv_handle_t *)&p->handle, poller_on_close);
  /* After uv_close, which took the fd out of the epoll set: closed first, the
   * fd would cost libuv an EPOLL_CTL_DEL failing with EBADF. */
  if (p->close_fd >= 0) {
    (void)close_socket(p->close_fd, p->close_reset);
    p->close_fd = -1;
  }
}

/* The env is being torn down (a worker thread ending) with the poll running. */
static void poller_cleanup_hook(void *arg) {
  struct poller *p = arg;
  p->hook_registered = false;
  p->stop_requested = true;
  poller_release(p);
}

static void poller_on_ready(uv_poll_t *h, int status, int events) {
  struct poller *p = (struct poller *)h;
  if (p->stop_requested || p->callback == NULL) return;
  if (busy_idle_ns != 0) busy_poll_event();
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2];
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok) {
    p->in_callback = true;
    napi_status s = napi_make_callback(env, p->async, recv, cb, 2, argv, NULL);
    p->in_callback = false;
    if (s != napi_ok) report_pending_exception(env);
  }
  if (p->stop_requested) poller_release(p);
  napi_close_handle_scope(env, scope);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct poller *p = data;
  p->external_gone = true;
  poller_maybe_free(p);
}

static bool get_poller(napi_env env, napi_value v, struct poller **out) {
  napi_valuetype t;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok ||
      data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'handle' must be a poll handle");
    return false;
  }
  *out = data;
  return true;
}

#define POLL_EVENT_MASK (UV_READABLE | UV_WRITABLE | UV_DISCONNECT | UV_PRIORITIZED)

/* Reads an optional uv_poll event mask; throws a RangeError on unknown bits. */
static bool arg_events(napi_env env, napi_value v, int *out) {
  uint32_t events;
  if (!arg_uint32(env, v, "events", &events)) return false;
  if ((events & ~(uint32_t)POLL_EVENT_MASK) != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "argument 'events' has bits other than uv_poll_event");
    return false;
  }
  *out = (int)events;
  return true;
}

/* pollStart(fd, callback(status, events), events = UV_READABLE) -> handle.
 * While its mask is not 0 the handle keeps the loop alive, until pollStop or
 * pollRef(handle, false). */
static napi_value js_poll_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  int events = UV_READABLE;
  if (argc < 2 || !arg_int32(env, argv[0], "fd", &fd) || !arg_function(env, argv[1], "callback")) return NULL;
  if (argc >= 3) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[2], &t));
    if (t != napi_undefined && !arg_events(env, argv[2], &events)) return NULL;
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  struct poller *p = calloc(1, sizeof *p);
  if (p == NULL) {
    napi_throw_error(env, "ERR_USERNET_NATIVE", "pollStart: out of memory");
    return NULL;
  }
  p->env = env;
  p->close_fd = -1;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r != 0) {
    free(p);
    char msg[128];
    snprintf(msg, sizeof msg, "pollStart: uv_poll_init: %s", uv_strerror(r));
    napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
    return NULL;
  }
  /* From here on the uv handle exists and must be closed, never just freed. */
  napi_value resource, name, ext;
  if (napi_create_reference(env, argv[1], 1, &p->callback) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "usernet:poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &p->async) != napi_ok ||
      napi_create_external(env, p, poller_finalize, NULL, &ext) != napi_ok) {
    p->external_gone = true;
    poller_release(p);
    addon_throw_last_error(env, "pollStart");
    return NULL;
  }
  r = events != 0 ? uv_poll_start(&p->handle, events, poller_on_ready) : 0;
  if (r != 0) {
    p->stop_requested = true;
    poller_release(p);
    char msg[128];
    snprintf(msg, sizeof msg, "pollStart: uv_poll_start: %s", uv_strerror(r));
    napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
    return NULL;
  }
  /* A worker thread's env can be torn down with the poll still running. */
  if (napi_add_env_cleanup_hook(env, poller_cleanup_hook, p) == napi_ok) p->hook_registered = true;
  return ext;
}

/* pollStop(handle): idempotent; safe from inside the callback. */
static napi_value js_poll_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct poller *p;
  if (argc < 1 || !get_poller(env, argv[0], &p)) return NULL;
  if (p->stop_requested) return make_undefined(env);
  p->stop_requested = true;
  if (!p->released) uv_poll_stop(&p->handle);
  if (!p->in_callback) poller_release(p);
  return make_undefined(env);
}

/* pollClose(handle, fd, reset): pollStop, then close(fd) (with SO_LINGER 0
 * when reset) once libuv has taken the fd out of its epoll set: at once, or,
 * from inside this poller's callback, when the callback returns. The caller
 * forgets fd at once; nothing else can be given its number before the close. */
static napi_value js_poll_close(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct poller *p;
  int32_t fd;
  bool reset;
  if (argc < 3 || !get_poller(env, argv[0], &p) || !arg_int32(env, argv[1], "fd", &fd)) return NULL;
  if (napi_get_value_bool(env, argv[2], &reset) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'reset' must be a boolean");
    return NULL;
  }
  if (p->released || p->close_fd >= 0) {
    (void)close_socket(fd, reset);
    return make_undefined(env);
  }
  p->stop_requested = true;
  p->close_fd = fd;
  p->close_reset = reset;
  /* No uv_poll_stop first: uv_close stops the handle, and stop_requested
   * keeps the callback from running in between. */
  if (!p->in_callback) poller_release(p);
  return make_undefined(env);
}

/* pollSetEvents(handle, events) -> 0, or a negative uv error (the mask is then
 * unchanged). events 0 stops the uv handle but keeps it for a later mask.
 * After pollStop it is a no-op returning 0. Safe inside the callback. */
static napi_value js_poll_set_events(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct poller *p;
  int events;
  if (argc < 2 || !get_poller(env, argv[0], &p) || !arg_events(env, argv[1], &events)) return NULL;
  if (p->stop_requested || p->released) return make_int(env, 0);
  int r = events == 0 ? uv_poll_stop(&p->handle) : uv_poll_start(&p->handle, events, poller_on_ready);
  return make_int(env, r);
}

/* pollRef(handle, ref): whether the poll keeps the event loop alive. */
static napi_value js_poll_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct poller *p;
  bool ref;
  if (argc < 2 || !get_poller(env, argv[0], &p)) return NULL;
  if (napi_get_value_bool(env, argv[1], &ref) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'ref' must be a boolean");
    return NULL;
  }
  if (!p->released) {
    if (ref)
      uv_ref((uv_handle_t *)&p->handle);
    else
      uv_unref((uv_handle_t *)&p->handle);
  }
  return make_undefined(env);
}

/* ------------------------------------------------------------------------- */
/* watchHangup */

struct hangup_watch {
  napi_threadsafe_function tsfn;
  pthread_t thread;
  bool has_thread;
  int fd;
  int cancel_fd;       /* eventfd; -1 when no thread was started */
  bool stop_requested; /* main thread only */
  bool finalized;      /* main thread only: tsfn gone, thread joined */
  int refs;            /* main thread only: the JS external + the tsfn */
  int revents;         /* written by the thread before it calls the tsfn */
};

static void watch_unref(struct hangup_watch *w) {
  if (--w->refs == 0) free(w);
}

static void *hangup_thread(void *arg) {
  struct hangup_watch *w = arg;
  struct pollfd pfd[2] = {
      /* events = 0: only POLLHUP/POLLERR/POLLNVAL can wake us, never data. */
      {.fd = w->fd, .events = 0, .revents = 0},
      {.fd = w->cancel_fd, .events = POLLIN, .revents = 0},
  };
  for (;;) {
    int r = poll(pfd, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      /* poll itself failing (ENOMEM) must not be mistaken for a hangup;
       * there is nothing better to do than to stop watching. */
      break;
    }
    if (pfd[1].revents != 0) break;
    if (pfd[0].revents != 0) {
      w->revents = pfd[0].revents;
      napi_call_threadsafe_function(w->tsfn, NULL, napi_tsfn_nonblocking);
      break;
    }
  }
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  return NULL;
}

static void hangup_call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)data;
  struct hangup_watch *w = context;
  if (env == NULL || cb == NULL || w->stop_requested) return;
  napi_value recv, arg;
  if (napi_get_undefined(env, &recv) != napi_ok || napi_create_int32(env, w->revents, &arg) != napi_ok) return;
  if (napi_call_function(env, recv, cb, 1, &arg, NULL) != napi_ok) report_pending_exception(env);
}

static void hangup_tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct hangup_watch *w = data;
  if (w->has_thread) {
    /* Normally the thread released the tsfn as its last act and is exiting.
     * At env teardown Node finalizes the tsfn while the thread still polls:
     * wake it first, or the join would hang the exit. */
    uint64_t one = 1;
    ssize_t r;
    do {
      r = write(w->cancel_fd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
    pthread_join(w->thread, NULL);
  }
  if (w->cancel_fd >= 0) close(w->cancel_fd);
  w->cancel_fd = -1;
  w->finalized = true;
  watch_unref(w);
}

static void hangup_external_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watch_unref(data);
}

/* watchHangup(fd, callback(revents)) -> handle. The callback fires at most once. */
static napi_value js_watch_hangup(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 2 || !arg_int32(env, argv[0], "fd", &fd) || !arg_function(env, argv[1], "callback")) return NULL;

  struct hangup_watch *w = calloc(1, sizeof *w);
  if (w == NULL) {
    napi_throw_error(env, "ERR_USERNET_NATIVE", "watchHangup: out of memory");
    return NULL;
  }
  w->fd = fd;
  w->cancel_fd = -1;
  w->refs = 1; /* the tsfn's; the external adds its own below */

  napi_value name, ext;
  if (napi_create_string_utf8(env, "usernet:exit-fd", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, w, hangup_tsfn_finalize, w, hangup_call_js,
                                      &w->tsfn) != napi_ok) {
    free(w);
    addon_throw_last_error(env, "watchHangup");
    return NULL;
  }
  napi_unref_threadsafe_function(env, w->tsfn);
  if (napi_create_external(env, w, hangup_external_finalize, NULL, &ext) != napi_ok) {
    w->stop_requested = true;
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    addon_throw_last_error(env, "watchHangup");
    return NULL;
  }
  w->refs++;

  /* An fd that is not open: poll() would report POLLNVAL at once. Decide it
   * here instead, because the eventfd created below could otherwise take that
   * very fd number and be watched in its place. */
  if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
    w->revents = POLLNVAL;
    napi_call_threadsafe_function(w->tsfn, NULL, napi_tsfn_nonblocking);
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
    return ext;
  }

  w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->cancel_fd < 0) {
    int e = errno;
    w->stop_requested = true;
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    char msg[128];
    snprintf(msg, sizeof msg, "watchHangup: eventfd: %s", strerror(e));
    napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
    return NULL;
  }

  /* The thread must not take process signals: Node handles them on the main
   * thread, and a blocked poll() has no use for them. */
  pthread_attr_t attr;
  sigset_t all, old;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(&w->thread, &attr, hangup_thread, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (r != 0) {
    w->stop_requested = true;
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    char msg[128];
    snprintf(msg, sizeof msg, "watchHangup: pthread_create: %s", strerror(r));
    napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
    return NULL;
  }
  w->has_thread = true;
  return ext;
}

/* watchHangupStop(handle): the callback will not fire after this returns.
 * Idempotent. */
static napi_value js_watch_hangup_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  void *data = NULL;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'handle' must be a watchHangup handle");
    return NULL;
  }
  struct hangup_watch *w = data;
  if (w->stop_requested || w->finalized) {
    w->stop_requested = true;
    return make_undefined(env);
  }
  w->stop_requested = true;
  if (w->cancel_fd >= 0) {
    uint64_t one = 1;
    ssize_t r;
    do {
      r = write(w->cancel_fd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
  }
  return make_undefined(env);
}

napi_status poll_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "pollStart", js_poll_start)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pollSetEvents", js_poll_set_events)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pollClose", js_poll_close)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pollStop", js_poll_stop)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pollRef", js_poll_ref)) != napi_ok) return s;
  if ((s = export_function(env, exports, "watchHangup", js_watch_hangup)) != napi_ok) return s;
  return export_function(env, exports, "watchHangupStop", js_watch_hangup_stop);
}
