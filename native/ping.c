/*
 * ping.c: unprivileged ICMP echo sockets ("ping sockets") for echo requests
 * from the guest to the outside (DESIGN.md, ping sockets; compat §4.4).
 *
 * socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) needs no capability, only the
 * caller's gid inside net.ipv4.ping_group_range (per network namespace;
 * "1 0", the default, excludes everyone: EACCES). Kernels built without ping
 * sockets give EPROTONOSUPPORT or EAFNOSUPPORT. What the kernel does for us:
 *
 *   - send: we pass the ICMP message (8-byte header + payload). It must be an
 *     echo request (type 8, code 0; anything else is EINVAL). The kernel
 *     replaces the identifier with the socket's "port" (its ident) and
 *     computes the checksum; whatever the caller put there is ignored.
 *   - receive: only echo replies whose identifier is the socket's ident (and,
 *     when bound to an address, addressed to it) reach the socket, as the ICMP
 *     message without the IP header, identifier as it came on the wire (our
 *     ident). The relay restores the guest's id and fixes the checksum.
 *
 * pingOpen always binds (to the --outbound-addr, or INADDR_ANY), so the ident
 * is assigned at open time and pingLocalId can report it before the first
 * send; an unbound socket would only autobind on its first sendmsg.
 *
 * IP_RECVERR stays off: ICMP errors for our requests (unreachable, TTL
 * exceeded) are then not queued on the socket, and since the socket is never
 * connected they do not set sk_err either. Readiness is the TAP's uv_poll
 * (poll.c pollStart/pollStop/pollRef), which works on any fd.
 *
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

/* The largest ICMP message an IPv4 ping socket can deliver is 65535 - 20 =
 * 65515 bytes: a slot of 64 KB never truncates. */
#define PING_MIN_SLOT_BYTES 65536

/* pingOpen(localAddr) -> fd, or -errno. localAddr is an IPv4 address in host
 * byte order; 0 (or no argument) binds to INADDR_ANY. */
static napi_value js_ping_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t local = 0;
  if (!arg_opt_ipv4(env, argv, argc, 0, "localAddr", &local)) return NULL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return make_int(env, -errno);
  /* Port 0: the kernel picks a free echo identifier. */
  int e = bind_ipv4(fd, local);
  if (e != 0) {
    close(fd);
    return make_int(env, -e);
  }
  return make_int(env, fd);
}

/* pingLocalId(fd) -> the socket's echo identifier (host order), or -errno:
 * js_sock_local_port (addon.c), a ping socket's port being its identifier. */

/* pingSend(fd, dst, buf, off, len) -> bytes sent, or -errno. dst in host byte
 * order. buf[off, off+len) is an ICMP echo request, header included. */
static napi_value js_ping_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t dst, off, len;
  uint8_t *buf;
  size_t buf_len;
  if (argc < 5 || !arg_int32(env, argv[0], "fd", &fd) || !arg_uint32(env, argv[1], "dst", &dst) ||
      !arg_bytes(env, argv[2], "buf", &buf, &buf_len) || !arg_uint32(env, argv[3], "off", &off) ||
      !arg_uint32(env, argv[4], "len", &len))
    return NULL;
  if ((size_t)off > buf_len || (size_t)len > buf_len - off) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "pingSend: range outside the buffer");
    return NULL;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(dst);
  ssize_t r;
  do {
    r = sendto(fd, len != 0 ? buf + off : buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa);
  } while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : (int64_t)r);
}

/* pingRecvBatch(fd, buf, meta, maxMessages, slotSize) -> messages received
 * (>= 0), or -errno when the very first receive failed with something other
 * than EAGAIN. Message i is at buf[meta[3i+1]] with length meta[3i+2], from
 * the IPv4 address meta[3i] (host order); meta[3i+1] == i * slotSize.
 * slotSize >= 65536 and a multiple of 64, so no message is ever truncated. */
static napi_value js_ping_recv_batch(napi_env env, napi_callback_info info) {
  batch_args a;
  if (!arg_batch(env, info, "pingRecvBatch", PING_MIN_SLOT_BYTES, 3, &a)) return NULL;
  const int32_t fd = a.fd;
  uint8_t *const buf = a.buf;
  uint32_t *const meta = a.meta;
  const uint32_t slot = a.slot;
  const size_t limit = a.limit;

  size_t n = 0;
  while (n < limit) {
    size_t off = n * (size_t)slot;
    struct sockaddr_in sa;
    struct iovec iov = {.iov_base = buf + off, .iov_len = slot};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    sa.sin_family = AF_UNSPEC;
    sa.sin_addr.s_addr = 0;
    msg.msg_name = &sa;
    msg.msg_namelen = sizeof sa;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t r = recvmsg(fd, &msg, MSG_DONTWAIT);
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
    meta[3 * n] = msg.msg_namelen >= sizeof sa && sa.sin_family == AF_INET ? ntohl(sa.sin_addr.s_addr) : 0;
    meta[3 * n + 1] = (uint32_t)off;
    meta[3 * n + 2] = (uint32_t)r;
    n++;
  }
  return make_int(env, (int64_t)n);
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
  if ((s = export_function(env, exports, "pingLocalId", js_sock_local_port)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingSend", js_ping_send)) != napi_ok) return s;
  if ((s = export_function(env, exports, "pingRecvBatch", js_ping_recv_batch)) != napi_ok) return s;
  return export_function(env, exports, "pingClose", js_ping_close);
}
