/*
 * stream.c: host TCP sockets on raw non-blocking fds, for the TCP relay
 * (src/nat/native-stream.ts).
 *
 * Why not net.Socket: per read, Node's stream machinery allocates a 64 KiB
 * buffer (malloc, then page faults on first touch), runs onStreamRead,
 * readableAddChunk and emit; per write it builds a WriteWrap and a Writable
 * state entry and defers the callback with nextTick. For the relay, which
 * moves every byte of every flow, that machinery is most of the cost of a
 * small request/response exchange. Here a read is one recv() into a slab the
 * caller owns and a write is one send(): the readiness comes from the same
 * uv_poll the TAP uses (poll.c), with UV_WRITABLE for connect completion and
 * for flushing what the kernel did not take.
 *
 * Every function is a thin syscall wrapper. Error convention as in addon.h:
 * bad arguments throw, I/O returns counts or -errno (EAGAIN included), never
 * throws. Nothing here keeps a pointer into a JS buffer after returning.
 *
 * tcpConnect dials IPv4 or IPv6 literals (the address the guest named, or
 * --outbound-addr / --outbound-addr6 as the source). An AF_INET6 socket has
 * IPV6_V6ONLY=1 (addon.c open_socket): a v4-mapped destination fails with
 * ENETUNREACH instead of reaching IPv4. A source of the other family than the
 * destination is refused as misuse (TypeError) rather than bound wrongly.
 * Everything after the connect is family-blind, so an adopted (accepted)
 * IPv6 connection needs nothing special.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* iovecs per tcpWritev call; a longer queue is flushed over several wake-ups
 * (or calls). */
#define WRITEV_MAX_IOV 64

/* tcpConnect(addr, port, localAddr) -> fd, or -errno. addr is an IPv4
 * address in host byte order or a 16-byte IPv6 address; localAddr, absent
 * (or IPv4 0) to leave the source to the kernel, else an address of addr's
 * family the socket is bound to (port 0) first (--outbound-addr). The connect
 * is non-blocking: the fd is returned while it is in progress, and completes
 * when the fd polls writable (sockError then says how). TCP_NODELAY is on:
 * the relay forwards segments as they come and the guest runs its own Nagle. */
static napi_value js_tcp_connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t port;
  if (argc < 2 || !arg_uint32(env, argv[1], "port", &port)) return NULL;
  if (port > 65535) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "tcpConnect: port must be <= 65535");
    return NULL;
  }
  sock_addr dst, local;
  if (!arg_ip(env, argv[0], "addr", (uint16_t)port, &dst)) return NULL;
  const int family = dst.u.sa.sa_family;
  bool bind_local = arg_present(env, argv, argc, 2);
  if (bind_local) {
    if (!arg_ip(env, argv[2], "localAddr", 0, &local)) return NULL;
    if (local.u.sa.sa_family != family) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "tcpConnect: localAddr must be of addr's family");
      return NULL;
    }
    bind_local = family == AF_INET6 || local.u.in4.sin_addr.s_addr != 0;
  }
  int fd = open_socket(family, SOCK_STREAM, 0);
  if (fd < 0) return make_int(env, fd);
  int one = 1;
  /* Cannot fail on a fresh TCP socket; if it did, the stream still works. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind_local) {
    /* Linux >= 4.2: pick the source port at connect(), per destination, not
     * at bind() among all ports of the address: with --outbound-addr, bind
     * before connect would otherwise cap all connections together at the
     * ephemeral range. An IPPROTO_IP option that AF_INET6 TCP sockets honour
     * too (__inet6_bind). Older kernels: ENOPROTOOPT, and bind picks as before. */
#ifdef IP_BIND_ADDRESS_NO_PORT
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    int e = bind_addr(fd, &local);
    if (e != 0) {
      close(fd);
      return make_int(env, -e);
    }
  }
  int r;
  do {
    r = connect(fd, &dst.u.sa, dst.len);
  } while (r < 0 && errno == EINTR);
  /* EINTR above cannot really happen on a non-blocking socket; EINPROGRESS is
   * the normal answer, 0 a possible one on loopback. */
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return make_int(env, -e);
  }
  return make_fd_result(env, fd);
}

/* SO_ERROR of fd: 0 or a positive errno (reading clears it), or -errno when
 * getsockopt itself fails. */
static int so_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return err;
}

/* tcpConnected(fd) -> 1 when the connect in progress on fd has completed (the
 * fd polls writable and SO_ERROR is 0), 0 while it is pending, or -errno when
 * it failed (SO_ERROR, which the read clears). A connect to the host's own
 * addresses has usually completed by the time connect() returns (the
 * loopback handshake runs in the same system call), and asking here saves the
 * round through the loop that waiting for UV_WRITABLE costs. */
static napi_value js_tcp_connected(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  struct pollfd pfd = {.fd = fd, .events = POLLOUT};
  int r = poll(&pfd, 1, 0);
  if (r < 0) return make_int(env, errno == EINTR ? 0 : -errno);
  if (r == 0) return make_int(env, 0);
  int err = so_error(fd);
  if (err != 0) return make_int(env, err < 0 ? err : -err);
  /* POLLHUP or POLLERR with no error pending: leave it to the poll's path. */
  return make_int(env, (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) == POLLOUT ? 1 : 0);
}

/* sockError(fd) -> SO_ERROR (0 or a positive errno, cleared by the read), or
 * -errno when getsockopt itself fails. */
static napi_value js_sock_error(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  return make_int(env, so_error(fd));
}

/* tcpRead(fd, buf, off, len) -> bytes read (> 0), 0 at end of stream, or
 * -errno (-EAGAIN when nothing is there). */
static napi_value js_tcp_read(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint8_t *p;
  uint32_t len;
  if (argc < 4 || !arg_int32(env, argv[0], "fd", &fd) || !arg_slice(env, argv + 1, "tcpRead", &p, &len)) return NULL;
  ssize_t r;
  do {
    r = recv(fd, p, len, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r > 0) addon_bytes_in += (uint64_t)r;
  return make_int(env, r < 0 ? -errno : (int64_t)r);
}

/* tcpWrite(fd, buf, off, len) -> bytes the kernel took (possibly fewer than
 * len), or -errno (-EAGAIN when none). MSG_NOSIGNAL: a peer that is gone
 * gives -EPIPE, never SIGPIPE. */
static napi_value js_tcp_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint8_t *p;
  uint32_t len;
  if (argc < 4 || !arg_int32(env, argv[0], "fd", &fd) || !arg_slice(env, argv + 1, "tcpWrite", &p, &len)) return NULL;
  ssize_t r;
  do {
    r = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : (int64_t)r);
}

/* tcpWritev(fd, chunks, start, count, headOff) -> bytes the kernel took, or
 * -errno. Sends chunks[start .. start+count) in one sendmsg, the first from
 * byte headOff on; at most WRITEV_MAX_IOV chunks per call (the rest waits for
 * the next call). The caller advances its queue by the returned count. */
static napi_value js_tcp_writev(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t start, count, head_off, nchunks;
  bool is_array = false;
  if (argc < 5 || !arg_int32(env, argv[0], "fd", &fd) || !arg_uint32(env, argv[2], "start", &start) ||
      !arg_uint32(env, argv[3], "count", &count) || !arg_uint32(env, argv[4], "headOff", &head_off))
    return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'chunks' must be an array of Uint8Array");
    return NULL;
  }
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nchunks));
  if (start > nchunks || count > nchunks - start) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "tcpWritev: chunks out of range");
    return NULL;
  }
  if (count > WRITEV_MAX_IOV) count = WRITEV_MAX_IOV;
  struct iovec iov[WRITEV_MAX_IOV];
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    uint8_t *data;
    size_t len;
    NAPI_CALL(env, napi_get_element(env, argv[1], start + i, &v));
    if (!arg_bytes(env, v, "chunks[i]", &data, &len)) return NULL;
    if (i == 0) {
      if ((size_t)head_off > len) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "tcpWritev: headOff past the first chunk");
        return NULL;
      }
      data += head_off;
      len -= head_off;
    }
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ssize_t r;
  do {
    r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -errno : (int64_t)r);
}

/* tcpShutdownWrite(fd) -> 0 or -errno: our FIN, after everything queued. */
static napi_value js_tcp_shutdown_write(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  return make_int(env, shutdown(fd, SHUT_WR) < 0 ? -errno : 0);
}

/* tcpResetClose(fd) -> 0 or -errno: close with SO_LINGER {1, 0}, which makes
 * the kernel send RST instead of FIN and drop what is unsent (as Node's
 * socket.resetAndDestroy). The fd is closed even when setsockopt fails.
 * Stop the fd's poll first. */
int close_socket(int fd, bool reset) {
  int e = 0;
  if (reset) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0) e = errno;
  }
  /* Never retried on EINTR: Linux has released the fd either way. */
  if (close(fd) < 0 && e == 0) e = errno;
  return e;
}

static napi_value js_tcp_reset_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  return make_int(env, -close_socket(fd, true));
}

/* fdClose(fd) -> 0 or -errno. Stop the fd's poll first. */
static napi_value js_fd_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  return make_int(env, close(fd) < 0 ? -errno : 0);
}

/* dupFd(fd) -> a new fd on the same socket (close-on-exec, non-blocking), or
 * -errno. O_NONBLOCK belongs to the open file description, so the original fd
 * turns non-blocking too (a net.Socket's already is). */
static napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) return make_int(env, -errno);
  int flags = fcntl(nfd, F_GETFL);
  if (flags < 0 || ((flags & O_NONBLOCK) == 0 && fcntl(nfd, F_SETFL, flags | O_NONBLOCK) < 0)) {
    int e = errno;
    close(nfd);
    return make_int(env, -e);
  }
  return make_fd_result(env, nfd);
}

napi_status stream_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "tcpConnect", js_tcp_connect)) != napi_ok) return s;
  if ((s = export_function(env, exports, "tcpConnected", js_tcp_connected)) != napi_ok) return s;
  if ((s = export_function(env, exports, "sockError", js_sock_error)) != napi_ok) return s;
  if ((s = export_function(env, exports, "tcpRead", js_tcp_read)) != napi_ok) return s;
  if ((s = export_function(env, exports, "tcpWrite", js_tcp_write)) != napi_ok) return s;
  if ((s = export_function(env, exports, "tcpWritev", js_tcp_writev)) != napi_ok) return s;
  if ((s = export_function(env, exports, "tcpShutdownWrite", js_tcp_shutdown_write)) != napi_ok) return s;
  if ((s = export_function(env, exports, "tcpResetClose", js_tcp_reset_close)) != napi_ok) return s;
  if ((s = export_function(env, exports, "fdClose", js_fd_close)) != napi_ok) return s;
  return export_function(env, exports, "dupFd", js_dup_fd);
}
