/*
 * Shared declarations of the usernet native addon (usernet_native.node).
 *
 * The addon is plain N-API (NAPI_VERSION 8, set in binding.gyp) so one build
 * works on every Node >= 20 without node-addon-api. Each source file owns one
 * concern and registers its functions through a *_register() hook called from
 * addon.c:
 *
 *   tap.c   attach (wraps attach.c, plain C shared with the launcher: forked
 *           child, setns, TUNSETIFF, --configure with IPv4 ioctls and IPv6
 *           over rtnetlink, SCM_RIGHTS), TUNSETOFFLOAD, TUNGETIFF
 *   io.c    readBatch / writeBatch on the non-blocking TAP fd, checksum
 *   poll.c  uv_poll readiness on the main loop; watchHangup (exit-fd) thread
 *   ping.c  unprivileged ICMP / ICMPv6 echo sockets: open/bind, send,
 *           batched receive
 *   udp.c   the UDP relay's host sockets, IPv4 and IPv6: open/bind
 *           (IP_RECVERR / IPV6_RECVERR), send, batched receive (recvmmsg)
 *   udp-err.c  their ICMP and ICMPv6 errors: error-queue drain
 *   stream.c   host TCP sockets (IPv4 or IPv6) on raw fds for the relay:
 *              connect, read, write/writev, shutdown, RST close, dup
 *   seccomp.c  --enable-seccomp: the process-wide syscall denylist
 *
 * Addresses cross the boundary as numbers, never strings: an IPv4 address is
 * a uint32 in host byte order; an IPv6 address is 16 bytes of a Uint8Array
 * going in, and four uint32 "words" coming out (bytes 4k..4k+3 of the
 * address read big-endian, i.e. each word in host order like an IPv4
 * address), so a batch reports addresses without allocating anything.
 * Every AF_INET6 socket the addon opens has IPV6_V6ONLY=1: an IPv6 relay
 * socket must never reach IPv4 through a v4-mapped address (::ffff:a.b.c.d).
 *
 * Error convention: misuse of the API (wrong argument types, out-of-range
 * slices) throws a TypeError/RangeError; I/O results on the data path are
 * returned as numbers (counts, or -errno), never thrown, because a throw costs
 * far more than a frame's whole budget (docs/architecture.md, Errors).
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

/* argv[0..2] = (buf, off, len): the slice buf[off, off+len). Throws (a
 * RangeError naming `what` when it lies outside buf) and returns false on
 * misuse. *p is valid (possibly NULL for an empty view) for *len bytes. */
bool arg_slice(napi_env env, napi_value *argv, const char *what, uint8_t **p, uint32_t *len);

/* Socket helpers for ping.c, udp.c and stream.c. */

/* An IPv4 or IPv6 socket address and its length, as the syscalls take it. */
typedef struct {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } u;
  socklen_t len;
} sock_addr;

/* AF_INET: addr is a uint32 in host byte order. */
void sock_addr_ipv4(sock_addr *a, uint32_t addr, uint16_t port);
/* AF_INET6: the 16 bytes at `bytes` (scope 0, flow label 0). */
void sock_addr_ipv6(sock_addr *a, const uint8_t *bytes, uint16_t port);

/* argv[i] as the local address a `family` socket binds to, port 0. Absent,
 * undefined or null: the wildcard (0.0.0.0 / ::). AF_INET: a uint32 (host
 * order; 0 is the wildcard too); AF_INET6: a Uint8Array of exactly 16 bytes.
 * Throws and returns false otherwise. */
bool arg_opt_local(napi_env env, napi_value *argv, size_t argc, size_t i, const char *name, int family,
                   sock_addr *out);

/* An address of either family with `port`: a number is IPv4 (uint32, host
 * order), a 16-byte Uint8Array is IPv6. Throws and returns false otherwise. */
bool arg_ip(napi_env env, napi_value v, const char *name, uint16_t port, sock_addr *out);

/* The IPv6 address at buf[off, off+16), with `port`: (Uint8Array, offset)
 * so a caller can point into a packet without a subarray. Throws (a
 * RangeError when the 16 bytes lie outside buf) and returns false. */
bool arg_ipv6_at(napi_env env, napi_value buf, napi_value off, const char *name, uint16_t port, sock_addr *out);

/* Whether argv[i] is present and neither undefined nor null. */
bool arg_present(napi_env env, napi_value *argv, size_t argc, size_t i);

/* socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol), with
 * IPV6_V6ONLY=1 for AF_INET6: the fd, or -errno (nothing left open). */
int open_socket(int family, int type, int protocol);

/* bind(fd, a): 0, or the errno. */
int bind_addr(int fd, const sock_addr *a);
/* close(fd), first with SO_LINGER 0 when `reset` (an RST instead of a FIN);
 * 0 or an errno (the fd is released either way). */
int close_socket(int fd, bool reset);

/* sendto(MSG_DONTWAIT | MSG_NOSIGNAL), retried on EINTR: bytes sent, or
 * -errno. */
int64_t send_to(int fd, const uint8_t *p, size_t len, const sock_addr *dst);

/* A received socket address (msg_name, `namelen` bytes) as numbers: writes
 * the address of a `family` socket into words[0] (AF_INET, host order) or
 * words[0..3] (AF_INET6, see the top of this file), zeros when the name is
 * missing or of another family, and returns the port (host order, 0 then).
 * ADDR_WORDS(family) says how many words it writes. */
#define ADDR_WORDS(family) ((family) == AF_INET6 ? 4u : 1u)
uint16_t put_addr_words(uint32_t *words, const void *name, socklen_t namelen, int family);

/* sockLocalPort(fd) -> the bound port (host order) of an IPv4 or IPv6
 * socket, or -errno. Exported under each socket kind's name (pingLocalId: a
 * ping socket's port is its echo id). */
napi_value js_sock_local_port(napi_env env, napi_callback_info info);

napi_value make_int(napi_env env, int64_t v);

/* The result of a function that opens an fd: `fd` (or -errno, < 0) as a
 * number. When even that number cannot be made, nobody would ever learn the
 * fd: it is closed, and NULL returned with an exception pending. */
napi_value make_fd_result(napi_env env, int fd);
napi_value make_undefined(napi_env env);

/* An Error (not thrown) with `message` and string property `code`. */
napi_value make_error(napi_env env, const char *code, const char *message);

/* Reports an exception left pending by a callback into JS that ran outside any
 * JS frame (uv callback, threadsafe function): it becomes an
 * 'uncaughtException', as it would for any other Node callback. */
void report_pending_exception(napi_env env);

/* Registration hooks, one per source file. */
/* Bytes read from the TAP (readBatch) and host TCP sockets (tcpRead) since
 * poll.c's busy polling last looked: how it tells bulk traffic from
 * request/response. Main thread only. */
extern uint64_t addon_bytes_in;
/* busy-poll.c: set while the loop sleeps with busy polling on; a poller's
 * first event then calls busy_poll_event(). */
extern uint64_t busy_idle_ns;
void busy_poll_event(void);

napi_status tap_register(napi_env env, napi_value exports);
napi_status io_register(napi_env env, napi_value exports);
napi_status poll_register(napi_env env, napi_value exports);
napi_status busy_poll_register(napi_env env, napi_value exports);
napi_status ping_register(napi_env env, napi_value exports);
napi_status udp_register(napi_env env, napi_value exports);
napi_status udp_err_register(napi_env env, napi_value exports);
napi_status stream_register(napi_env env, napi_value exports);
napi_status seccomp_register(napi_env env, napi_value exports);

napi_status export_function(napi_env env, napi_value exports, const char *name, napi_callback cb);

#endif
