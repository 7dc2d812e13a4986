/*
 * udp-err.c: ICMP errors for the UDP relay's unconnected host sockets
 * (issue 4: port unreachable to the guest when the host refuses a datagram).
 *
 * The relay's sockets (udp.c) stay unconnected (endpoint-independent mapping
 * and filtering, udp-nat.ts), and Linux tells an unconnected UDP socket about
 * ICMP errors only when IP_RECVERR is on (udpOpen sets it); then
 * __udp4_lib_err both queues a struct sock_extended_err on the socket's error
 * queue and sets sk_err. What that does to sends, receives and poll, and why
 * the queue must be drained, is in src/nat/native-udp.ts. This file only has
 * the drain:
 *
 *   udpReadErrors     recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT) until EAGAIN
 *
 * Draining the queue also clears sk_err: dequeuing an entry sets sk_err to
 * the next ICMP entry's errno, and to 0 after the last (sock_dequeue_err_skb).
 *
 * Error convention as in addon.h: bad arguments throw, I/O returns numbers.
 * No allocation per entry: results go to a caller-owned Float64Array.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Numbers per entry in udpReadErrors's output. */
#define UDP_ERR_FIELDS 6

/* udpReadErrors(fd, out, max) -> entries written (>= 0), or -errno when the
 * very first recvmsg failed with something other than EAGAIN (EBADF,
 * ENOTSOCK, ...). Drains the error queue until it is empty or `max` entries
 * (capped by out.length / 6) were written. Entry i is out[6i .. 6i+5]:
 *
 *   [0] destination address of the datagram that failed (IPv4, host order)
 *   [1] its destination port
 *   [2] ee_errno (ECONNREFUSED for port unreachable, EHOSTUNREACH, ...)
 *   [3] ICMP type   [4] ICMP code
 *   [5] the address that sent the ICMP error (SO_EE_OFFENDER), 0 if none
 *
 * Entries of other origins (SO_EE_ORIGIN_LOCAL: e.g. EMSGSIZE from a too-big
 * send) are consumed and not reported. The quoted payload is not copied. */
static napi_value js_udp_read_errors(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t max;
  if (argc < 3 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  napi_typedarray_type type;
  size_t out_len = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &out_len, &ptr, NULL, NULL) != napi_ok ||
      type != napi_float64_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'out' must be a Float64Array");
    return NULL;
  }
  if (!arg_uint32(env, argv[2], "max", &max)) return NULL;
  double *out = ptr;
  size_t limit = max;
  if (limit > out_len / UDP_ERR_FIELDS) limit = out_len / UDP_ERR_FIELDS;

  /* Room for one IP_RECVERR message (extended error + offender address) and
   * slack for anything else the kernel might add. */
  union {
    char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in)) + 64];
    struct cmsghdr align;
  } control;

  size_t n = 0;
  bool first = true;
  while (n < limit) {
    struct sockaddr_in dst;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&dst, 0, sizeof dst);
    msg.msg_name = &dst;
    msg.msg_namelen = sizeof dst;
    /* No payload buffer: the quoted datagram is truncated away (MSG_TRUNC). */
    msg.msg_iov = NULL;
    msg.msg_iovlen = 0;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t r = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (first) return make_int(env, -errno);
      break;
    }
    first = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) continue;
      if (c->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err))) continue;
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      if (ee.ee_origin != SO_EE_ORIGIN_ICMP) continue;
      uint32_t offender = 0;
      if (c->cmsg_len >= CMSG_LEN(sizeof ee + sizeof(struct sockaddr_in))) {
        struct sockaddr_in off;
        memcpy(&off, CMSG_DATA(c) + sizeof ee, sizeof off);
        if (off.sin_family == AF_INET) offender = ntohl(off.sin_addr.s_addr);
      }
      bool named = msg.msg_namelen >= sizeof dst && dst.sin_family == AF_INET;
      double *e = out + n * UDP_ERR_FIELDS;
      e[0] = named ? ntohl(dst.sin_addr.s_addr) : 0;
      e[1] = named ? ntohs(dst.sin_port) : 0;
      e[2] = ee.ee_errno;
      e[3] = ee.ee_type;
      e[4] = ee.ee_code;
      e[5] = offender;
      n++;
      break; /* one extended error per queued datagram */
    }
  }
  return make_int(env, (int64_t)n);
}

napi_status udp_err_register(napi_env env, napi_value exports) {
  return export_function(env, exports, "udpReadErrors", js_udp_read_errors);
}
