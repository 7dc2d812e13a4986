/*
 * busy-poll.c: adaptive busy polling of Node's loop (setBusyPoll).
 *
 * A request/response exchange wakes the helper twice per round trip, and on a
 * VM each sleep and wake-up is expensive: the scheduler's work, an IPI, the
 * vCPU's halt and resume, and caches and TLBs gone cold by the time the
 * JavaScript runs again (measured: user time per round trip grows from ~20 µs
 * on a busy machine to ~70 µs on an idle one). So before the loop blocks, a
 * uv_prepare callback polls Node's epoll fd (level-triggered: poll() does not
 * consume its events) for up to `window` ns, and the loop does not sleep if
 * the next event comes that soon.
 *
 * The window adapts as KVM's halt polling does: it grows (doubling, from
 * BUSY_GROW_MIN_NS, up to the configured maximum) when the loop slept but the
 * next event came within the maximum anyway, and halves (to 0 below the
 * minimum) when it came later. So a flow whose events are further apart than
 * the maximum costs nothing, and spinning stops within a few sleeps once
 * traffic turns slow. The loop never spins while work is pending
 * (uv_backend_timeout 0), nor during bulk traffic (BUSY_BULK_BYTES), and the
 * gap is measured only up to the first poller event: a wake-up by anything
 * else (a timer) counts as a long gap.
 *
 * One loop: the first env that calls setBusyPoll owns it (the main thread). */
#include "addon.h"

#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <uv.h>

#define BUSY_GROW_MIN_NS 10000u
/* A moving average (over about 8 loop turns) of the bytes read per turn above
 * which the traffic is bulk: no round trip to bridge, and polling would take
 * the CPU the transfer's endpoints need (before this rule, one repetition of
 * bench/run.js: guest→host 6.0 against 7.3 Gbit/s, host→guest 7.2 against 8.3,
 * at MTU 1500; with it the bulk rows match USERNET_BUSY_POLL_US=0's). */
#define BUSY_BULK_BYTES 16384u

uint64_t addon_bytes_in;
static uint64_t busy_avg_bytes;

static uv_prepare_t busy_prepare;
static uv_loop_t *busy_loop;
static uint64_t busy_max_ns;    /* 0: off */
static uint64_t busy_window_ns; /* the current spin budget, 0 .. busy_max_ns */
uint64_t busy_idle_ns;          /* when the loop went to sleep; 0: not asleep since */
static struct busy_stats {
  double spins, hits, sleeps, spin_ns, bulk;
} busy_stats;

/* The next event came late (or was not a poller's): halve the window, to 0 under the minimum. */
static void busy_shrink(void) {
  busy_idle_ns = 0;
  busy_window_ns /= 2;
  if (busy_window_ns < BUSY_GROW_MIN_NS) busy_window_ns = 0;
}

/* A poller's first event since the loop went to sleep at busy_idle_ns. */
static void busy_adapt(uint64_t now) {
  if (now - busy_idle_ns > busy_max_ns) {
    busy_shrink();
    return;
  }
  busy_idle_ns = 0;
  uint64_t w = busy_window_ns * 2;
  if (w < BUSY_GROW_MIN_NS) w = BUSY_GROW_MIN_NS;
  busy_window_ns = w < busy_max_ns ? w : busy_max_ns;
}

static void busy_on_prepare(uv_prepare_t *h) {
  if (busy_max_ns == 0) return;
  /* Woken by something other than a poller (a timer): as good as a long gap. */
  if (busy_idle_ns != 0) busy_shrink();
  busy_avg_bytes = busy_avg_bytes - busy_avg_bytes / 8 + addon_bytes_in / 8;
  addon_bytes_in = 0;
  if (uv_backend_timeout(h->loop) == 0) return;
  if (busy_avg_bytes > BUSY_BULK_BYTES) {
    busy_stats.bulk++;
    return;
  }
  uint64_t start = uv_hrtime();
  if (busy_window_ns > 0) {
    struct pollfd pfd = {.fd = uv_backend_fd(h->loop), .events = POLLIN};
    busy_stats.spins++;
    uint64_t now;
    do {
      if (poll(&pfd, 1, 0) > 0) {
        busy_stats.hits++;
        busy_stats.spin_ns += (double)(uv_hrtime() - start);
        return;
      }
      /* Let whatever else is runnable on this CPU (the guest's or the host's end of
       * the exchange, on a small machine) go first: poll only with a CPU to spare. */
      sched_yield();
      now = uv_hrtime();
    } while (now - start < busy_window_ns);
    busy_stats.spin_ns += (double)(now - start);
  }
  busy_stats.sleeps++;
  busy_idle_ns = start;
}

/* setBusyPoll(maxMicroseconds): 0 turns it off; no argument only reads.
 * -> { spins, hits, sleeps, bulk, spinNs, windowNs } */
static napi_value js_set_busy_poll(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t us = 0;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_undefined) {
    if (!arg_uint32(env, argv[0], "maxMicroseconds", &us)) return NULL;
    if (us > 1000000) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "argument 'maxMicroseconds' must be at most 1000000");
      return NULL;
    }
    uv_loop_t *loop;
    NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
    if (busy_loop == NULL && us > 0) {
      int r = uv_prepare_init(loop, &busy_prepare);
      if (r == 0) r = uv_prepare_start(&busy_prepare, busy_on_prepare);
      if (r != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "setBusyPoll: uv_prepare: %s", uv_strerror(r));
        napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
        return NULL;
      }
      uv_unref((uv_handle_t *)&busy_prepare);
      busy_loop = loop;
    }
    if (busy_loop != NULL && busy_loop != loop) {
      napi_throw_error(env, "ERR_USERNET_NATIVE", "setBusyPoll: busy polling belongs to another thread's loop");
      return NULL;
    }
    busy_max_ns = (uint64_t)us * 1000;
    busy_window_ns = 0;
    busy_idle_ns = 0;
  }
  napi_value out, v;
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_create_double(env, busy_stats.spins, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "spins", v));
  NAPI_CALL(env, napi_create_double(env, busy_stats.hits, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "hits", v));
  NAPI_CALL(env, napi_create_double(env, busy_stats.sleeps, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "sleeps", v));
  NAPI_CALL(env, napi_create_double(env, busy_stats.bulk, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "bulk", v));
  NAPI_CALL(env, napi_create_double(env, busy_stats.spin_ns, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "spinNs", v));
  NAPI_CALL(env, napi_create_double(env, (double)busy_window_ns, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "windowNs", v));
  return out;
}

/* The first poller event since the loop went to sleep (poll.c, hot path: only
 * when busy_idle_ns is set). */
void busy_poll_event(void) { busy_adapt(uv_hrtime()); }

napi_status busy_poll_register(napi_env env, napi_value exports) {
  return export_function(env, exports, "setBusyPoll", js_set_busy_poll);
}
