/*
 * ping.c: unprivileged ICMP and ICMPv6 echo sockets ("ping sockets") for
 * echo requests from the guest to the outside (docs/architecture.md, Ping sockets).
 *
 * socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) and socket(AF_INET6, SOCK_DGRAM,
 * IPPROTO_ICMPV6) need no capability, only the caller's gid inside
 * net.ipv4.ping_group_range (per network namespace, and despite its name the
 * one sysctl for both families; "1 0", the default, excludes everyone:
 * EACCES). Kernels built without ping sockets give EPROTONOSUPPORT or
 * EAFNOSUPPORT, and so does a host without IPv6 for the AF_INET6 kind. What
 * the kernel does for us:
 *
 *   - send: we pass the ICMP message (8-byte header + payload). It must be an
 *     echo request (type 8 / ICMPv6 type 128, code 0; anything else is
 *     EINVAL). The kernel replaces the identifier with the socket's "port"
 *     (its ident) and computes the checksum (for ICMPv6 over the pseudo
 *     header too); whatever the caller put there is ignored.
 *   - receive: only echo replies (type 0 / 129) whose identifier is the
 *     socket's ident (and, when bound to an address, addressed to it) reach
 *     the socket, as the ICMP message without the IP header, identifier as
 *     it came on the wire (our ident). The relay restores the guest's id and
 *     fixes the checksum.
 *
 * pingOpen / pingOpen6 always bind (to the --outbound-addr, or the
 * wildcard), so the ident is assigned at open time and pingLocalId can
 * report it before the first send; an unbound socket would only autobind on
 * its first sendmsg. The AF_INET6 socket has IPV6_V6ONLY like every IPv6
 * socket of the addon (the kernel refuses v4-mapped destinations on ICMPv6
 * ping sockets anyway).
 *
 * IP_RECVERR / IPV6_RECVERR stay off: ICMP errors for our requests
 * (unreachable, TTL exceeded) are then not queued on the socket, and since
 * the socket is never connected they do not set sk_err either. Readiness is
 * the TAP's uv_poll (poll.c pollStart/pollStop/pollRef), which works on any
 * fd.
 *
 * Each operation is one implementation taking the family; IPv6 addresses go
 * in as 16 bytes at an offset and come out as four words (addon.h).
 * Error convention as in addon.h: bad arguments throw, I/O returns -errno.
 * No allocation per message: pingRecvBatch fills caller-owned slots.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The largest ICMP message a ping socket can deliver is 65535 - 20 = 65515
 * bytes over IPv4, 65535 over IPv6 (the payload length excludes the fixed
 * header): a slot of 64 KB never truncates. */
#define PING_MIN_SLOT_BYTES 65536

/* u32 per message in pingRecvBatch's meta: [address words (1 for IPv4, 4 for
 * IPv6), offset, length]. */
#define PING_META_STRIDE(family) (ADDR_WORDS(family) + 2)

/* pingOpen(localAddr) / pingOpen6(localAddr) -> fd, or -errno. localAddr: an
 * IPv4 address in host byte order (0 or absent: INADDR_ANY), or 16 bytes
 * (absent or null: ::). */
static napi_value ping_open(napi_env env, napi_callback_info info, int family) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_addr local;
  if (!arg_opt_local(env, argv, argc, 0, "localAddr", family, &local)) return NULL;
  int fd = open_socket(family, SOCK_DGRAM, family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
  if (fd < 0) return make_int(env, fd);
  /* Port 0: the kernel picks a free echo identifier. */
  int e = bind_addr(fd, &local);
  if (e != 0) {
    close(fd);
    return make_int(env, -e);
  }
  return make_fd_result(env, fd);
}

static napi_value js_ping_open(napi_env env, napi_callback_info info) { return ping_open(env, info, AF_INET); }
static napi_value js_ping_open6(napi_env env, napi_callback_info info) { return ping_open(env, info, AF_INET6); }

/* pingLocalId(fd) -> the socket's echo identifier (host order), or -errno:
 * js_sock_local_port (addon.c), a ping socket's port being its identifier. */

/* pingSend(fd, dst, buf, off, len) with dst in host byte order, or
 * pingSend6(fd, dst, dstOff, buf, off, len) with the IPv6 destination at
 * dst[dstOff, dstOff+16) -> bytes sent, or -errno. buf[off, off+len) is an
 * ICMP (ICMPv6) echo request, header included. */
static napi_value ping_send(napi_env env, napi_callback_info info, int family) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const size_t nargs = family == AF_INET6 ? 6 : 5;
  int32_t fd;
  uint32_t len;
  uint8_t *p;
  if (argc < nargs || !arg_int32(env, argv[0], "fd", &fd) ||
      !arg_slice(env, argv + nargs - 3, family == AF_INET6 ? "pingSend6" : "pingSend", &p, &len))
    return NULL;
  sock_addr dst;
  if (family == AF_INET6) {
    if (!arg_ipv6_at(env, argv[1], argv[2], "dst", 0, &dst)) return NULL;
  } else {
    uint32_t addr;
    if (!arg_uint32(env, argv[1], "dst", &addr)) return NULL;
    sock_addr_ipv4(&dst, addr, 0);
  }
  return make_int(env, send_to(fd, p, len, &dst));
}

static napi_value js_ping_send(napi_env env, napi_callback_info info) { return ping_send(env, info, AF_INET); }
static napi_value js_ping_send6(napi_env env, napi_callback_info info) { return ping_send(env, info, AF_INET6); }

/* pingRecvBatch(fd, buf, meta, maxMessages, slotSize) -> messages received
 * (>= 0), or -errno when the very first receive failed with something other
 * than EAGAIN. Message i is at buf[meta[3i+1]] with length meta[3i+2], from
 * the IPv4 address meta[3i] (host order); meta[3i+1] == i * slotSize.
 * pingRecvBatch6 likewise with six u32 per message: [source address words
 * 0..3, offset, length]. slotSize >= 65536 and a multiple of 64, so no
 * message is ever truncated. */
static napi_value ping_recv_batch(napi_env env, napi_callback_info info, int family) {
  const size_t stride = PING_META_STRIDE(family);
  const size_t aw = ADDR_WORDS(family);
  batch_args a;
  if (!arg_batch(env, info, family == AF_INET6 ? "pingRecvBatch6" : "pingRecvBatch", PING_MIN_SLOT_BYTES, stride, &a))
    return NULL;

  size_t n = 0;
  while (n < a.limit) {
    size_t off = n * (size_t)a.slot;
    struct sockaddr_in6 sa; /* room for either family */
    struct iovec iov = {.iov_base = a.buf + off, .iov_len = a.slot};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &sa;
    msg.msg_namelen = sizeof sa;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t r = recvmsg(a.fd, &msg, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* As readBatch: report the error only when it is all we have. */
      if (n == 0) return make_int(env, -errno);
      break;
    }
    /* Cannot happen with slots of 64 KB; a cut-off echo reply would be
     * useless to the guest, so it is dropped rather than delivered. */
    if ((msg.msg_flags & MSG_TRUNC) != 0) continue;
    uint32_t *m = a.meta + n * stride;
    put_addr_words(m, &sa, msg.msg_namelen, family);
    m[aw] = (uint32_t)off;
    m[aw + 1] = (uint32_t)r;
    n++;
  }
  return make_int(env, (int64_t)n);
}

static napi_value js_ping_recv_batch(napi_env env, napi_callback_info info) {
  return ping_recv_batch(env, info, AF_INET);
}
static napi_value js_ping_recv_batch6(napi_env env, napi_callback_info info) {
  return ping_recv_batch(env, info, AF_INET6);
}

/* pingClose(fd) -> 0 or -errno. Stop the fd's poll first (pollStop). */
static napi_value js_ping_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  /* Never retried on EINTR: Linux has released the fd either way. */
  return make_int(env, close(fd) < 0 ? -errno : 0);
}

napi_status ping_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "pingOpen", js_ping_open)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingOpen6", js_ping_open6)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingLocalId", js_sock_local_port)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingSend", js_ping_send)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingSend6", js_ping_send6)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingRecvBatch", js_ping_recv_batch)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingRecvBatch6", js_ping_recv_batch6)) != napi_ok) return s;
  return export_function(env, exports, "pingClose", js_ping_close);
}
