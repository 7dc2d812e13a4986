/*
 * attach.h: the TAP attach (a forked child joins the target's namespaces,
 * creates or attaches the TAP, optionally configures it, and passes the fd
 * back), in plain C without N-API. Compiled into both the addon (tap.c wraps
 * it as attach()) and the launcher (launcher.c, before Node starts); the
 * Theory of Operation is at the top of attach.c.
 */
#ifndef USERNET_ATTACH_H
#define USERNET_ATTACH_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

/* 10 = sizeof(struct virtio_net_hdr): with 64-byte aligned read slots the IP
 * header then starts at offset 24, 4-byte aligned (docs/architecture.md, Measured techniques). */
#define VNET_HDR_LEN 10

/* What the child needs, gathered before fork() so the child never touches
 * N-API or the heap. */
struct attach_req {
  char netns[PATH_MAX];
  char userns[PATH_MAX];
  bool has_userns;
  /* As given (printed in "sent tapfd=N for NAME", like slirp4netns) ... */
  char tapname[256];
  /* ... and as the kernel sees it: silently truncated to IFNAMSIZ-1. */
  char ifname[IFNAMSIZ];
  bool vnet_hdr;
  /* No "sent tapfd=N for NAME" line: run mode prints nothing of its own. */
  bool quiet;
  bool configure;
  uint32_t mtu;
  bool has_mac;
  uint8_t mac[6];
  uint32_t addr, netmask, gateway; /* host byte order */
  /* --configure's IPv6 part, when asked for. */
  bool has_ipv6;
  uint8_t addr6[16], gateway6[16];
  uint32_t prefix6;
  /* How long the parent waits for the child before it kills it; 0: the
   * default (ATTACH_WAIT_MS in attach.c, 30 s). */
  uint32_t wait_ms;
  /* Tests only: the child stalls before its first step, so that the bounded
   * wait can be seen to end it. */
  bool test_stall;
};

enum attach_outcome {
  ATTACH_OK,
  /* The child exited non-zero (its reason is already on stderr): slirp4netns
   * prints `message` ("child failed(N)") and exits with exit_status. */
  ATTACH_CHILD_FAILED,
  /* A failure in the calling process (socketpair, fork, waitpid, recvmsg), or
   * a child that did not finish in time (killed; err ETIMEDOUT): slirp4netns
   * prints `message` (perror's text) and "parent failed", exit 1. */
  ATTACH_PARENT_FAILED,
};

struct attach_result {
  enum attach_outcome outcome;
  /* ATTACH_OK: the TAP fd, O_CLOEXEC and O_NONBLOCK, and the IPv6 outcome
   * of --configure (0: configured, or not asked; else the errno). */
  int fd;
  int32_t ipv6_errno;
  /* Otherwise: */
  char message[256];
  int exit_status;
  /* ATTACH_PARENT_FAILED: the errno (0 when there was none). */
  int err;
};

/* Sets rq->ifname from rq->tapname (truncated to IFNAMSIZ-1, as the kernel
 * would). */
void attach_set_ifname(struct attach_req *rq);

/* Runs the whole attach: blocks until the child has exited, or until it was
 * killed for not finishing within rq->wait_ms. A child's failure is printed
 * on stderr ("STEP: TEXT", as slirp4netns's child prints it) before this
 * returns ATTACH_CHILD_FAILED. */
void attach_run(const struct attach_req *rq, struct attach_result *out);

/* The English text of an errno value as perror() prints it in the C
 * locale, NULL for unknown values. Not for a forked child: without glibc's
 * strerrordesc_np it is strerror(), which may allocate. */
const char *errno_text(int err);

#endif
