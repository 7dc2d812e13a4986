/*
 * Shared declarations of the usernet native addon (usernet_native.node).
 *
 * The addon is plain N-API (NAPI_VERSION 8, set in binding.gyp) so one build
 * works on every Node >= 20 without node-addon-api. Each source file owns one
 * concern and registers its functions through a *_register() hook called from
 * addon.c:
 *
 *   tap.c   attach (forked child: setns, TUNSETIFF, --configure, SCM_RIGHTS),
 *           TUNSETOFFLOAD, TUNGETIFF
 *   io.c    readBatch / writeBatch on the non-blocking TAP fd, checksum
 *   poll.c  uv_poll readiness on the main loop; watchHangup (exit-fd) thread
 *   ping.c  unprivileged ICMP echo sockets: open/bind, send, batched receive
 *   udp.c   the UDP relay's host sockets: open/bind (IP_RECVERR), send,
 *           batched receive (recvmmsg)
 *   udp-err.c  their ICMP errors: error-queue drain
 *   stream.c   host TCP sockets on raw fds for the relay: connect, read,
 *              write/writev, shutdown, RST close, dup
 *
 * Error convention: misuse of the API (wrong argument types, out-of-range
 * slices) throws a TypeError/RangeError; I/O results on the data path are
 * returned as numbers (counts, or -errno), never thrown, because a throw costs
 * far more than a frame's whole budget (DESIGN.md, Errors).
 */
#ifndef USERNET_ADDON_H
#define USERNET_ADDON_H

#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns NULL from the calling napi_callback when an N-API call fails; the
 * failing call has already thrown (or left an exception pending). */
#define NAPI_CALL(env, call)                                  \
  do {                                                        \
    if ((call) != napi_ok) {                                  \
      addon_throw_last_error((env), #call);                   \
      return NULL;                                            \
    }                                                         \
  } while (0)

void addon_throw_last_error(napi_env env, const char *what);

/* Argument helpers: on a type mismatch they throw a TypeError naming the
 * argument and return false. */
bool arg_int32(napi_env env, napi_value v, const char *name, int32_t *out);
bool arg_uint32(napi_env env, napi_value v, const char *name, uint32_t *out);
bool arg_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len);
bool arg_u32array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len);
bool arg_function(napi_env env, napi_value v, const char *name);

/* The arguments of a batched receive, (fd, buf, meta, maxCount, slotSize):
 * slot i of `buf` starts at i * slot, and each entry takes `meta_stride` u32
 * of `meta`. `limit` is how many entries fit in all three. */
typedef struct {
  int32_t fd;
  uint8_t *buf;
  uint32_t *meta;
  uint32_t slot;
  size_t limit;
} batch_args;

/* Parses and checks them (slotSize >= min_slot and a multiple of 64); on
 * failure throws (naming `what`) and returns false. */
bool arg_batch(napi_env env, napi_callback_info info, const char *what, uint32_t min_slot, size_t meta_stride,
               batch_args *out);

/* Socket helpers for ping.c, udp.c and stream.c. */

/* argv[i], when present and not undefined, as an IPv4 address in host byte
 * order (`*out` stays as given otherwise); throws and returns false when it is
 * not a uint32. */
bool arg_opt_ipv4(napi_env env, napi_value *argv, size_t argc, size_t i, const char *name, uint32_t *out);

/* An AF_INET socket address for `addr` (host byte order) and `port`. */
void ipv4_sockaddr(struct sockaddr_in *sa, uint32_t addr, uint16_t port);

/* bind(fd, addr:0): 0, or the errno. */
int bind_ipv4(int fd, uint32_t addr);

/* sockLocalPort(fd) -> the bound port (host order), or -errno. Exported under
 * each socket kind's name (pingLocalId: a ping socket's port is its echo id). */
napi_value js_sock_local_port(napi_env env, napi_callback_info info);

napi_value make_int(napi_env env, int64_t v);
napi_value make_undefined(napi_env env);

/* An Error (not thrown) with `message` and string property `code`. */
napi_value make_error(napi_env env, const char *code, const char *message);

/* Reports an exception left pending by a callback into JS that ran outside any
 * JS frame (uv callback, threadsafe function): it becomes an
 * 'uncaughtException', as it would for any other Node callback. */
void report_pending_exception(napi_env env);

/* Registration hooks, one per source file. */
napi_status tap_register(napi_env env, napi_value exports);
napi_status io_register(napi_env env, napi_value exports);
napi_status poll_register(napi_env env, napi_value exports);
napi_status ping_register(napi_env env, napi_value exports);
napi_status udp_register(napi_env env, napi_value exports);
napi_status udp_err_register(napi_env env, napi_value exports);
napi_status stream_register(napi_env env, napi_value exports);

napi_status export_function(napi_env env, napi_value exports, const char *name, napi_callback cb);

#endif
